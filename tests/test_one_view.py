"""One view, declared once (#23): the state a viewer sees cannot drift from the sidebar's selection.

The defects a lecturer met, each as a test that failed before the pages were declared once
(``dashboard.views.declare``), then a Hypothesis state machine that drives the whole app in AppTest
through random sequences of what a viewer does, checking after every step that nothing shown
belongs to another photo, model or layer, and that the page's link reopens the same view.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from PIL import Image
from streamlit.testing.v1 import AppTest

import vis_core
from dashboard.share import settings as page_settings
from dashboard.sidebar.image_source import ImageEntry
from dashboard.state import (
    ACTIVATION_LAYER,
    ATLAS_UNIT,
    CHANNEL,
    FILTERS_LAYER,
    IMAGE,
    LAYER,
    SAMPLE,
    SELECTION,
    TALK,
    TALK_PRESENTING,
)
from tests.support.apptest import APP, TIMEOUT, start

pytestmark = pytest.mark.usefixtures("clear_caches")

WHERE_IT_LOOKED = "views/activation_maps.py"
FILTERS = "views/filters.py"


def top_five(at: AppTest) -> list[int]:
    from dashboard.data import cache

    chosen = at.session_state[SELECTION]
    prediction = cache.prediction(chosen.handle.key, chosen.image.key, chosen.handle, chosen.image.image)
    return [int(i) for i in prediction.indices]


def main_titles(at: AppTest) -> str:
    import json

    return " ".join(
        json.loads(chart.proto.spec).get("layout", {}).get("title", {}).get("text", "")
        for chart in at.get("plotly_chart")
    )


def photo(at: AppTest, name: str) -> AppTest:
    at.sidebar.selectbox(key=SAMPLE).set_value(name).run()
    assert not at.exception, at.exception
    return at


def test_where_it_looked_follows_two_photo_changes():
    """Chelsea -> coffee -> rocket: no crash (a label reached ``ClassIndex.text``), and the class
    explained is each new photo's top guess, not the first photo's."""
    at = start(WHERE_IT_LOOKED)
    assert at.session_state["am_target"] == top_five(at)[0] == 285  # Egyptian cat
    for name in ("coffee", "rocket", "astronaut"):
        photo(at, name)
        top = top_five(at)
        assert at.session_state["am_target"] == top[0], name
        label = at.session_state[SELECTION].handle.labels[top[0]]
        assert f"for '{label}'" in main_titles(at), (name, main_titles(at))
        assert "class" not in at.query_params  # the photo's top guess: where the class starts


def test_a_class_chosen_by_name_stays_across_photos():
    at = start(WHERE_IT_LOOKED)
    menu = next(box for box in at.sidebar.selectbox if str(box.key).startswith("am_target"))
    menu.set_value(1).run()  # goldfish, chosen by name
    assert at.session_state["am_target"] == 1
    photo(at, "coffee")
    assert at.session_state["am_target"] == 1 and "for 'goldfish'" in main_titles(at)


def test_a_camera_picture_is_explained_as_itself():
    """A picture whose own top guess is not the previous photo's class (the camera case)."""
    at = start(WHERE_IT_LOOKED)
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8))
    at.session_state[IMAGE] = ImageEntry("upload:noise", "camera picture", noise)  # what the upload callback sets
    at.run()
    assert not at.exception
    assert at.session_state["am_target"] == top_five(at)[0] != 285


def test_filters_page_speaks_the_sidebars_numbering():
    """features.10 has 64 filters in the sidebar; its expansion inside has 384 of its own."""
    at = start(FILTERS, **{LAYER: "features.10", CHANNEL: 5})
    assert at.session_state[FILTERS_LAYER] == "features.10.conv.2"  # the convolution making filters 0-63
    assert "of its own" not in " ".join(c.value for c in at.caption)
    at = start(FILTERS, **{LAYER: "features.10", CHANNEL: 5, FILTERS_LAYER: "features.10.conv.0.0"})
    said = " ".join(c.value for c in at.caption)
    assert "384 filters of its own" in said and "none is marked" in said


def test_every_page_reopens_from_its_link():
    """A page's link, opened in a fresh session, shows the same selection and settings."""
    for page in page_settings.PAGES:
        at = start(f"views/{page}.py", **{LAYER: "features.4", CHANNEL: 3})
        again = AppTest.from_file(APP, default_timeout=TIMEOUT)
        again.query_params.update(dict(at.query_params.items()))
        again.switch_page(f"views/{page}.py")
        again.run()
        assert not again.exception, (page, again.exception)
        assert same_view(at, again, page), page


def view_of(at: AppTest, page: str) -> tuple:
    chosen = at.session_state[SELECTION]
    session = {key: at.session_state[key] for key in at.session_state if not key.startswith("$$")}
    return (
        chosen.handle.key,
        chosen.image.key,
        chosen.layer,
        chosen.channel,
        tuple(sorted(page_settings.capture(page, session).items())),
    )


def same_view(at: AppTest, again: AppTest, page: str) -> bool:
    return view_of(at, page) == view_of(again, page)


# --------------------------------------------------------------------------- the state machine
PAGES = list(page_settings.PAGES)
#: The models a viewer switches between: the default, a lab run, and own weights (set in
#: :func:`models`, once for the module).
MODELS: list[str] = []
OWN: dict = {}


@pytest.fixture(autouse=True)
def selectbox_as_drawn(monkeypatch):
    """AppTest formats a menu's value with ``str``, not the app's ``format_func``, to find the
    option it sends back; where the app's labels differ from its values (the Model menu's
    "(your weights)"), it then fails. The option the app drew as chosen is in the element."""
    from streamlit.testing.v1.element_tree import Selectbox

    original = Selectbox.index.fget

    def index(self):
        try:
            return original(self)
        except ValueError:
            return self.proto.default[0] if self.proto.default else 0

    monkeypatch.setattr(Selectbox, "index", property(index))


@pytest.fixture(scope="module", autouse=True)
def models(tmp_path_factory):
    """A small lab run (two epochs of the notebook's CNN on the digits) in this module's runs
    folder, and an own model: ResNet-18's architecture with a state_dict of 7 classes."""
    import torch
    import torchvision

    from dashboard.data.cache import RUN_PREFIX
    from dashboard.sidebar.own_weights import OWN_PREFIX
    from vis_core import datasets, training

    runs = tmp_path_factory.mktemp("runs")
    environment = pytest.MonkeyPatch()
    environment.setenv("VIS_CORE_RUNS", str(runs))
    training.train("digits", "notebook", epochs=1, seed=0, out=runs / "digits-1", data=datasets.load_dataset("digits"))
    weights = tmp_path_factory.mktemp("weights") / "seven.pt"
    torch.save(torchvision.models.resnet18(weights=None, num_classes=7).state_dict(), weights)
    own = f"{OWN_PREFIX}resnet18 (seven.pt)"
    OWN[own] = vis_core.load_model("resnet18", weights=weights, input_size=96)
    MODELS[:] = [vis_core.DEFAULT_MODEL, RUN_PREFIX + "digits-1", own]
    yield
    environment.undo()
    MODELS.clear()
    OWN.clear()


SAMPLES = vis_core.sample_names()[:4]
#: A class name with its share, as menus and captions show it: "Egyptian cat (71%)".
PERCENT = re.compile(r"([A-Za-z][^()\n]*?) \((\d+)%\)")


def prediction_of(at: AppTest):
    from dashboard.data import cache

    chosen = at.session_state[SELECTION]
    return cache.prediction(chosen.handle.key, chosen.image.key, chosen.handle, chosen.image.image)


class Viewer(RuleBasedStateMachine):
    """A viewer clicking through the dashboard: photos (samples and camera pictures), layers,
    filters, pages, the page's settings, tiles, "Add this view", Present / Next / Back / Exit,
    and the page's link opened in a fresh session."""

    @initialize(page=st.sampled_from(PAGES))
    def open(self, page: str) -> None:
        self.page = page
        self.at = start(f"views/{page}.py")
        self.chosen_class = False

    # ------------------------------------------------------------------ rules
    @precondition(lambda self: not self.presenting)
    @rule(which=st.integers(0, 2))
    def change_model(self, which: int) -> None:
        """The Model menu: the default model, a lab run, or this session's own weights."""
        from dashboard.state import OWN_MODELS, PENDING_MODEL

        name = MODELS[which]
        if name in OWN:
            self.at.session_state[OWN_MODELS] = dict(OWN)  # what "Load my model" keeps for the session
        self.at.session_state[PENDING_MODEL] = name  # as a page's "use this model" does (AppTest cannot pick
        self.at.run()  # a menu option by a label that differs from its value)
        self.chosen_class = False  # another model's classes: the class explained starts again

    @precondition(lambda self: not self.presenting)
    @rule(name=st.sampled_from(SAMPLES))
    def change_photo(self, name: str) -> None:
        box = next((b for b in self.at.sidebar.selectbox if b.key == SAMPLE), None)
        if box is None:  # another image source: back to the samples
            self.at.sidebar.radio(key="image_source").set_value("Sample photo").run()
            box = self.at.sidebar.selectbox(key=SAMPLE)
        box.set_value(name).run()

    @precondition(lambda self: not self.presenting)
    @rule(seed=st.integers(0, 3))
    def camera_picture(self, seed: int) -> None:
        rng = np.random.default_rng(seed)
        picture = Image.fromarray(rng.integers(0, 255, (200, 260, 3), dtype=np.uint8))
        self.at.session_state[IMAGE] = ImageEntry(f"upload:{seed}", f"camera picture {seed}", picture)
        self.at.run()  # what the camera widget's callback sets

    @precondition(lambda self: not self.presenting)
    @rule(fraction=st.floats(0, 1))
    def change_layer(self, fraction: float) -> None:
        handle = self.at.session_state[SELECTION].handle
        from dashboard.sidebar import layer_choice

        options = [info.name for info in handle.layers.values() if info.is_block and layer_choice.has_maps(info)]
        box = next(b for b in self.at.sidebar.selectbox if b.label == "Layer")
        box.set_value(options[int(fraction * (len(options) - 1))]).run()

    @precondition(lambda self: not self.presenting)
    @rule(fraction=st.floats(0, 1))
    def change_filter(self, fraction: float) -> None:
        chosen = self.at.session_state[SELECTION]
        channels = chosen.handle.layers[chosen.layer].channels
        self.at.sidebar.number_input(key=CHANNEL).set_value(int(fraction * (channels - 1))).run()

    @precondition(lambda self: not self.presenting)
    @rule(page=st.sampled_from(PAGES))
    def switch_page(self, page: str) -> None:
        self.page = page
        self.at.switch_page(f"views/{page}.py").run()

    @rule(pick=st.integers(0, 50), fraction=st.floats(0, 1))
    def change_a_setting(self, pick: int, fraction: float) -> None:
        """A widget of the page's settings drawn now, set to one of the values it offers."""
        from dashboard.views.declare import ClassIndex, Context, Flag, Many, Number, Span

        page = page_settings.page(self.page)
        drawn = {
            str(w.key).split("@")[0]: w
            for kind in (
                "selectbox",
                "radio",
                "multiselect",
                "toggle",
                "select_slider",
                "slider",
                "number_input",
                "button",
            )
            for w in self.at.get(kind)
            if w.key and "@" in str(w.key)
        }
        keys = [s.key for s in page.settings if s.key in drawn]
        if not keys:
            return
        key = keys[pick % len(keys)]
        setting, widget = page.setting(key), drawn[key]
        chosen = self.at.session_state[SELECTION]
        before = {s.key: self.at.session_state[s.key] for s in page.settings[: page.settings.index(setting)]}
        context = Context(chosen.handle, chosen.image, chosen.layer, chosen.channel, before)
        kind = setting.kind
        if setting.widget == "button":  # a check's button: it turns its flag on
            widget.click().run()
            return
        if isinstance(kind, Span):
            first = int(fraction * kind.top(context))
            value = (first, min(kind.top(context), first + 7))
        elif isinstance(kind, Flag):
            value = not widget.value
        elif isinstance(kind, Number):
            top = kind.top(context)
            steps = int(round((top - kind.low) / kind.step))
            value = kind.low + int(fraction * steps) * kind.step
            value = int(value) if kind.integer else round(float(value), 10)
        else:
            offer = kind.offer(context)
            if isinstance(kind, Many):
                value = offer[: 1 + int(fraction * 3)]
            else:
                value = offer[int(fraction * (len(offer) - 1))] if offer else None
                if isinstance(kind, ClassIndex):
                    self.chosen_class = True
        if value is not None:
            widget.set_value(value).run()

    @rule(pick=st.integers(0, 30))
    def click_a_tile(self, pick: int) -> None:
        tiles = [b for b in self.at.button if str(b.key).startswith(("pr_tile_", "at_tile_"))]
        if tiles:
            tiles[pick % len(tiles)].click().run()

    @precondition(lambda self: not self.presenting)
    @rule()
    def add_this_view(self) -> None:
        if any(b.key == "talk_add" for b in self.at.button):
            self.at.button(key="talk_add").click().run()

    @precondition(lambda self: self.talk_has_slides and not self.presenting)
    @rule()
    def present(self) -> None:
        self.at.switch_page("views/talk.py").run()
        button = next((b for b in self.at.button if b.key == "talk_present"), None)
        if button is not None:
            button.click().run()
            self.at.run()  # the talk is made ahead, then its first slide shown
            self.page = self.slide.page

    @precondition(lambda self: self.presenting)
    @rule(forward=st.booleans())
    def next_or_back(self, forward: bool) -> None:
        button = next((b for b in self.at.button if b.key == ("talk_next" if forward else "talk_back")), None)
        if button is not None and not button.disabled:
            button.click().run()
            self.page = self.slide.page

    @precondition(lambda self: self.presenting)
    @rule()
    def exit_presenting(self) -> None:
        self.at.button(key="talk_exit").click().run()

    @precondition(lambda self: not self.presenting)
    @rule()
    def open_the_link(self) -> None:
        """The page's link in a fresh session shows the same view (uploads and own weights are not
        in links: nobody else has them)."""
        from dashboard.sidebar.own_weights import OWN_PREFIX
        from dashboard.state import MODEL_NAME

        own = str(self.at.session_state[MODEL_NAME]).startswith(OWN_PREFIX)
        if own or not self.at.session_state[SELECTION].image.key.startswith("sample:"):
            return
        again = AppTest.from_file(APP, default_timeout=TIMEOUT)
        again.query_params.update(dict(self.at.query_params.items()))
        again.switch_page(f"views/{self.page}.py")
        again.run()
        assert not again.exception, again.exception
        assert view_of(again, self.page) == view_of(self.at, self.page)

    # ------------------------------------------------------------- invariants
    @invariant()
    def no_exception(self) -> None:
        assert not self.at.exception, self.at.exception

    @invariant()
    def every_class_shown_is_this_photos(self) -> None:
        """A class named with a share on the page is one of this photo's top five, at its share;
        the class explained is the photo's top guess unless one was chosen by name."""
        prediction = prediction_of(self.at)
        shares = {label: f"{p:.0%}" for label, p in zip(prediction.labels, prediction.probabilities, strict=True)}
        texts = [c.value for c in self.at.caption] + [m.value for m in self.at.markdown]
        texts += [str(box.proto.options) for box in self.at.get("selectbox") if str(box.key).startswith("am_target")]
        for text in texts:
            for match in PERCENT.finditer(str(text)):
                name = match.group(1).strip().strip("*")
                if name in shares:
                    assert shares[name] == f"{match.group(2)}%", (text, shares)
        if self.page == "activation_maps" and not self.presenting and not self.chosen_class:
            assert self.at.session_state["am_target"] == int(prediction.indices[0])
        if self.page == "activation_maps" and "am_target" in self.at.session_state:
            label = self.at.session_state[SELECTION].handle.labels[self.at.session_state["am_target"]]
            titles = main_titles(self.at)
            if "for '" in titles:
                assert f"for '{label}'" in titles, (label, titles)

    @invariant()
    def every_filter_shown_is_offered(self) -> None:
        chosen = self.at.session_state[SELECTION]
        assert 0 <= chosen.channel < chosen.handle.layers[chosen.layer].channels
        session = self.at.session_state
        if self.page == "atlas" and ATLAS_UNIT in session:
            assert 0 <= session[ATLAS_UNIT] < chosen.handle.layers[session["at_layer"]].channels
        if self.page == "activation_maps":
            assert session[ACTIVATION_LAYER] in chosen.handle.layers

    @invariant()
    def a_presented_slide_shows_its_view(self) -> None:
        if not self.presenting:
            return
        chosen, slide = self.at.session_state[SELECTION], self.slide
        assert chosen.layer == slide.params["layer"] and str(chosen.channel) == slide.params["filter"]
        assert chosen.image.key == "sample:" + next(
            name for name in vis_core.sample_names() if slide.params["image"] in (name, slug(name))
        )

    # --------------------------------------------------------------- helpers
    @property
    def presenting(self) -> bool:
        session = self.at.session_state
        return TALK_PRESENTING in session and bool(session[TALK_PRESENTING])

    @property
    def talk_has_slides(self) -> bool:
        return TALK in self.at.session_state and bool(self.at.session_state[TALK].slides)

    @property
    def slide(self):
        return self.at.session_state[TALK].slides[self.at.session_state["talk_index"]]


def slug(name: str) -> str:
    from dashboard.sidebar.image_source import slug as image_slug

    return image_slug(name)


TestViewer = Viewer.TestCase
TestViewer.settings = settings(
    max_examples=int(os.environ.get("VIEWER_EXAMPLES", 4)),
    stateful_step_count=int(os.environ.get("VIEWER_STEPS", 10)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=os.environ.get("VIEWER_RANDOM") is None,
)


def test_exit_from_presenting_drops_the_presenters_type_first():
    """The presenter's style is the first element of the main area, so the run after Exit replaces
    it before anything else is drawn (it stayed until the page had drawn that far)."""
    from dashboard.share import talks

    view = {"model": "mobilenet_v2", "image": "coffee", "layer": "features.10", "filter": "3"}
    talk = talks.Talk([talks.Slide("overview", view, "The photo")])
    at = start("views/talk.py", **{TALK: talk})
    at.button(key="talk_present").click().run()
    assert at.session_state[TALK_PRESENTING] is True
    first = at.main.children[0]
    assert first.type == "html" and "font-size: 19px" in first.proto.body
    at.button(key="talk_exit").click().run()
    assert at.session_state[TALK_PRESENTING] is False
    assert not any("font-size: 19px" in element.proto.body for element in at.get("html"))
    assert at.main.children[0].type != "html"
