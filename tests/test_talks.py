"""Links that carry a page's own settings, talks (JSON files checked whole), presenter mode and
the warm-up that makes a presented slide cache-only."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

import vis_core
from dashboard.share import settings, talks
from dashboard.state import (
    CHANNEL,
    LAYER,
    SELECTION,
    TALK,
    TALK_INDEX,
    TALK_NEW_NOTE,
    TALK_NEW_TITLE,
    TALK_PENDING,
    TALK_PRESENTING,
    TALK_WHOLE,
)
from tests.support import shown
from tests.support.apptest import APP, TIMEOUT, start

pytestmark = pytest.mark.usefixtures("clear_caches")


def start_from_link(page: str, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def chart_titles(at: AppTest) -> str:
    return " ".join(str(chart.proto.spec) for chart in at.get("plotly_chart"))


# ------------------------------------------------------------------ settings
def test_settings_are_checked_like_clicks(handle):
    good = {
        "method": "scorecam",
        "class": "285",
        "opacity": "0.3",
        "colors": "viridis",
        "absolute": "1",
        "cam_layer": "features.17",
        "compare": "saliency,gradcam++",
    }
    values, problems = settings.parse("activation_maps", good, handle, "features.10")
    assert problems == []
    assert values == {
        "am_method": "scorecam",
        "am_target": 285,
        "am_opacity": 0.3,
        "am_colorscale": "Viridis",
        "am_absolute": True,
        "am_layer": "features.17",
        "am_compare": ["saliency", "gradcam++"],
    }
    bad = {
        "method": "eval(1)",
        "class": "1000",  # MobileNetV2 has 1000 classes: 0..999
        "opacity": "0.33",  # off the slider's 0.05 grid
        "colors": "<b>red</b>",
        "absolute": "yes",
        "cam_layer": "classifier.1",  # not a spatial block
        "compare": "gradcam,gradcam",
    }
    values, problems = settings.parse("activation_maps", bad, handle, "features.10")
    assert values == {}
    assert len(problems) == len(bad)
    for name, text in bad.items():
        assert any(problem.startswith(f"{name} {text!r}") for problem in problems), (name, problems)


@pytest.mark.parametrize(
    ("name", "text"), [("top", "0"), ("top", "65"), ("top", "²"), ("opacity", "1.05"), ("opacity", "-0"), ("show", "")]
)
def test_numbers_outside_a_widgets_range_are_refused(handle, name, text):
    values, problems = settings.parse("feature_maps", {name: text}, handle, "features.10")
    assert values == {} and len(problems) == 1


def test_every_page_starts_its_settings_where_its_declaration_says_and_they_survive_a_link():
    """Every setting a page declares is resolved when it is shown, a fixed start is the value it
    starts with, and what the page holds goes through a link and back unchanged."""
    for page, declared in settings.PAGES.items():
        at = start(f"views/{page}.py")
        page_settings = declared.settings
        drawn = [s for s in page_settings if s.key in at.session_state and at.session_state[s.key] is not None]
        if page != "training_lab":  # the lab has no run to choose until one is trained
            assert len(drawn) == len(page_settings), page
        for setting in drawn:
            if setting.fixed:
                assert at.session_state[setting.key] == setting.default, (page, setting.key)
        session = {s.key: at.session_state[s.key] for s in drawn}
        selection = at.session_state[SELECTION]
        text = settings.capture(page, session)
        values, problems = settings.parse(page, text, selection.handle, selection.layer)
        assert problems == [] and values == session, page


def test_a_link_with_page_settings_restores_the_page_and_the_address_keeps_them():
    at = start_from_link(
        "views/activation_maps.py", image="coffee", method="saliency", compare="saliency", **{"class": "967"}
    )
    assert not at.toast, [t.value for t in at.toast]
    assert at.session_state["am_method"] == "saliency" and at.session_state["am_target"] == 967
    assert at.session_state["am_compare"] == ["saliency"]
    assert "Saliency (gradient) for" in chart_titles(at) and "espresso" in chart_titles(at)
    link = dict(at.query_params)
    assert link["method"] == "saliency" and link["compare"] == "saliency"
    assert "opacity" not in link  # where the page starts: left out, links stay short
    assert "class" not in link  # espresso is the coffee's top guess: where the class starts for this photo
    again = start_from_link("views/activation_maps.py", **link)  # a reload restores the whole view
    for key in ("am_method", "am_target", "am_compare", "am_layer", "am_opacity"):
        assert again.session_state[key] == at.session_state[key], key


def test_a_bad_page_setting_is_named_and_the_page_starts_as_usual():
    at = start_from_link("views/feature_maps.py", show="[x](https://evil.example)", opacity="7", top="5")
    toasts = [shown(toast.value) for toast in at.toast]
    assert len(toasts) == 2, toasts
    assert any("[x](https://evil.example)" in toast for toast in toasts)
    assert any("opacity '7'" in toast for toast in toasts)
    assert all("](" not in toast.value.replace("\\]\\(", "") for toast in at.toast)  # shown as text
    assert at.session_state["fm_show"] == "All (paged)" and at.session_state["fm_opacity"] == 0.6


# --------------------------------------------------------------------- talk files
def three_slides() -> talks.Talk:
    return talks.Talk(
        [
            talks.Slide(
                "overview",
                {"model": "mobilenet_v2", "image": "coffee", "layer": "features.10", "filter": "3"},
                "What it sees",
            ),
            talks.Slide(
                "feature_maps",
                {
                    "model": "mobilenet_v2",
                    "image": "chelsea",
                    "layer": "features.5",
                    "filter": "2",
                    "show": "top-n-by-mean",
                },
                "Edges first",
                "Early filters find edges and colours.",
            ),
            talks.Slide(
                "activation_maps",
                {
                    "model": "mobilenet_v2",
                    "image": "astronaut",
                    "layer": "features.10",
                    "filter": "0",
                    "method": "gradcam",
                    "compare": "gradcam,saliency",
                },
                "Where it looked",
            ),
        ]
    )


def test_a_talk_goes_through_its_file_unchanged():
    talk = three_slides()
    again = talks.Talk.from_json(talk.to_json().encode())
    assert [(s.page, s.params, s.title, s.note) for s in again.slides] == [
        (s.page, s.params, s.title, s.note) for s in talk.slides
    ]
    assert talks.check(again) == []


def _file(**changes) -> bytes:
    document = json.loads(three_slides().to_json())
    for where, value in changes.items():
        if where == "top":
            document = value
        elif where in ("format", "version", "slides"):
            document[where] = value
        else:
            document["slides"][1][where] = value
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"\x89PNG\r\n", "not JSON"),
        (b"[1, 2]", "not a talk file"),
        (_file(version=2), "version '2'"),
        (_file(version=True), "version 'True'"),
        (_file(title="\ud800"), "Slide 2: title is not valid text"),
        (_file(note="fine \udfff"), "Slide 2: note is not valid text"),
        (_file(layer="features.\ud800"), "Slide 2: layer is not valid text"),
        (_file(settings={"show": "\ud800"}), "Slide 2: setting 'show'"),
        (_file(settings={"\ud800": "1"}), "Slide 2: setting"),
        (_file(slides=[]), "no list of slides"),
        (b" " * (talks.MAX_BYTES + 1), "at most"),
        (_file(slides=[{}] * (talks.MAX_SLIDES + 1)), "at most"),
        (_file(page="../../etc/passwd"), "Slide 2: page '../../etc/passwd'"),
        (_file(filter="3"), "Slide 2: filter"),
        (_file(filter=True), "Slide 2: filter"),
        (_file(title="x" * 500), "Slide 2: title is longer"),
        (_file(script="alert(1)"), "Slide 2: unknown field 'script'"),
        (_file(settings={"show": 3}), "Slide 2: setting 'show'"),
        (_file(settings="show=1"), "Slide 2: settings"),
        (_file(model=None), "Slide 2: model"),
        (b'{"format": "inside-a-cnn talk", "version": 1, "slides": [NaN]}', "not JSON"),
    ],
)
def test_a_bad_talk_file_is_refused_saying_why(data, named):
    with pytest.raises(talks.TalkError) as refused:
        talks.Talk.from_json(data)
    assert named in str(refused.value)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"model": "no_such_net"}, "Slide 2: model 'no_such_net'"),
        ({"image": "/etc/passwd"}, "Slide 2: photo '/etc/passwd'"),
        ({"layer": "features.99"}, "Slide 2: layer 'features.99'"),
        ({"filter": 10**6}, "Slide 2: filter '1000000'"),
        ({"settings": {"show": "everything"}}, "Slide 2: show 'everything'"),
        ({"settings": {"method": "gradcam"}}, "Slide 2: feature_maps has no setting 'method'"),
    ],
)
def test_a_talk_whose_values_this_server_does_not_offer_is_refused(changes, named):
    talk = talks.Talk.from_json(_file(**changes))
    problems = talks.check(talk)
    assert any(problem.startswith(named) for problem in problems), problems


# ------------------------------------------------------------------ in the app
def test_add_this_view_keeps_the_whole_view():
    at = start("views/feature_maps.py", fm_show="Top-N by max", fm_overlay=False)
    at.text_input(key=TALK_NEW_TITLE).input("The strongest filters")
    at.text_area(key=TALK_NEW_NOTE).input("Look at the eyes.")
    at.button(key="talk_add").click().run()
    assert not at.exception, at.exception
    (slide,) = at.session_state[TALK].slides
    assert slide.page == "feature_maps" and slide.title == "The strongest filters" and slide.note == "Look at the eyes."
    assert slide.params["show"] == "top-n-by-max" and slide.params["overlay"] == "0"
    assert slide.params["image"] == "chelsea" and slide.params["layer"] == "features.10"
    assert at.session_state[TALK_NEW_TITLE] == ""  # ready for the next view


def engine_calls(monkeypatch) -> list[str]:
    """Every engine function the caches call, counted."""
    import dashboard.data.cache
    import vis_core.projection

    calls: list[str] = []

    def counted(owner, name):
        original = getattr(owner, name)

        def wrapper(*args, **kwargs):
            calls.append(name)
            return original(*args, **kwargs)

        monkeypatch.setattr(owner, name, wrapper)

    for name in ("feature_maps", "predict", "attribute", "attribute_stages", "project"):
        counted(vis_core, name)
    counted(vis_core.ModelHandle, "model_view")
    counted(dashboard.data.cache, "filters")
    counted(vis_core.projection, "project_strongest")
    return calls


def test_presenting_a_warmed_talk_computes_nothing_and_moves_through_the_slides(monkeypatch):
    at = start("views/talk.py", **{TALK: three_slides()})
    at.button(key="talk_present").click().run()  # computes the first slide, then shows it
    assert not at.exception, at.exception
    assert talks.ahead(three_slides()).wait(300)  # the others were prepared in the background
    assert at.session_state[TALK_PRESENTING] is True and at.session_state[TALK_INDEX] == 0
    calls = engine_calls(monkeypatch)
    seen = []
    for step in ("talk_next", "talk_next", "talk_back"):
        seen.append((at.title[0].value, at.session_state[SELECTION].image.key))
        at.button(key=step).click().run()
        assert not at.exception, at.exception
    seen.append((at.title[0].value, at.session_state[SELECTION].image.key))
    assert [image for _, image in seen] == [
        "sample:coffee",
        "sample:chelsea (cat)",
        "sample:astronaut",
        "sample:chelsea (cat)",
    ]
    assert at.session_state["fm_show"] == "Top-N by mean"  # the slide's own setting
    assert calls == []  # every slide came from the caches
    assert any("stSidebar" in str(element.proto) for element in at.get("html"))  # the sidebar is hidden
    # and the shared choices are not even drawn (only the page's own settings, which it reads):
    assert not [box for box in at.sidebar.selectbox if box.label in ("Model", "Layer")]
    assert not at.sidebar.number_input
    at.button(key="talk_exit").click().run()
    assert not at.exception, at.exception
    assert at.session_state[TALK_PRESENTING] is False
    # back in the dashboard on the slide shown, its view now in the sidebar's widgets
    assert at.session_state[LAYER] == "features.5" and at.session_state[CHANNEL] == 2
    assert at.session_state[SELECTION].image.key == "sample:chelsea (cat)"
    assert any(box.value == "features.5" for box in at.sidebar.selectbox)


def test_a_presented_slide_is_its_pages_first_screen_and_whole_page_draws_the_rest():
    presented = {TALK: three_slides(), TALK_PRESENTING: True, TALK_INDEX: 2, TALK_PENDING: 2}
    at = start("views/activation_maps.py", **presented)  # as Next shows the third slide
    headers = [header.value for header in at.header]
    assert "Compare methods" not in headers and "Can we trust these maps?" not in headers
    assert [chart.key for chart in at.get("plotly_chart")] == ["am_main"]  # the chosen method's map, alone
    assert any("Whole page" in caption.value for caption in at.caption)
    at.button(key="talk_whole").click().run()
    assert not at.exception, at.exception
    headers = [header.value for header in at.header]
    assert "Compare methods" in headers and "Can we trust these maps?" in headers
    # the map and the slide's two compared methods
    assert [chart.key for chart in at.get("plotly_chart")] == ["am_main", "am_compare_gradcam", "am_compare_saliency"]
    at.button(key="talk_back").click().run()  # another slide opens on its first screen again
    assert not at.exception, at.exception
    assert at.session_state[TALK_INDEX] == 1 and at.session_state[TALK_WHOLE] is False

    at = start("views/feature_maps.py", **{**presented, TALK_INDEX: 1, TALK_PENDING: 1})
    assert not [header for header in at.subheader if header.value.startswith("All filters")]
    assert [chart.key for chart in at.get("plotly_chart")] == ["fm_channel"]  # no mosaic, no profile


def test_outside_presenter_mode_the_fold_draws_the_whole_page():
    at = start("views/feature_maps.py", **{TALK: three_slides(), TALK_INDEX: 1})
    assert [chart.key for chart in at.get("plotly_chart")] == ["fm_channel", "fm_mosaic", "fm_profile"]
    assert [header for header in at.subheader if header.value.startswith("All filters")]
    assert not any("Whole page" in caption.value for caption in at.caption)


def test_a_one_filter_slide_is_painted_ahead_and_drawn_from_the_caches(monkeypatch):
    import vis_core.atlas.samples

    view = {"model": "mobilenet_v2", "image": "chelsea", "layer": "features.10", "filter": "27"}
    talk = talks.Talk([talks.Slide("unit", view, "One unit"), talks.Slide("overview", view, "The photo")])
    at = start("views/talk.py", **{TALK: talk})
    at.button(key="talk_present").click().run()  # computes every slide ahead
    assert not at.exception, at.exception
    calls = engine_calls(monkeypatch)
    for owner, name in ((vis_core, "feature_visualization"), (vis_core.atlas.samples, "sample_pass")):
        original = getattr(owner, name)
        monkeypatch.setattr(owner, name, lambda *a, _f=original, _n=name, **k: calls.append(_n) or _f(*a, **k))
    at.switch_page("views/unit.py").run()  # where Present's switch_page goes
    assert not at.exception, at.exception
    assert calls == []  # the map, the projection, the patches and the painting came from the caches
    captions = [picture.caption for element in at.main.image for picture in element.proto.imgs]
    assert "its feature visualisation" in captions
    assert not [button for button in at.button if button.key == "un_paint_go"]  # no button to press


def test_a_deep_dream_slide_is_dreamed_ahead_with_its_settings(monkeypatch, handle):
    view = {"model": "mobilenet_v2", "image": "coffee", "layer": "features.4", "filter": "3"}
    own = {"octaves": "2", "steps": "3", "amplify": "the-sidebar-s-filter"}
    talk = talks.Talk([talks.Slide("deep_dream", {**view, **own}, "A dream"), talks.Slide("overview", view, "")])
    at = start("views/talk.py", **{TALK: talk})
    at.button(key="talk_present").click().run()  # dreams the slide ahead
    assert not at.exception, at.exception
    calls = []
    monkeypatch.setattr(vis_core, "deep_dream", lambda *a, **k: calls.append(k) or pytest.fail("dreamed again"))
    at.switch_page("views/deep_dream.py").run()  # where Present's switch_page goes
    assert not at.exception, at.exception
    assert calls == []
    (caption,) = [picture.caption for element in at.main.image for picture in element.proto.imgs]
    assert caption.startswith("filter 3 of features.4: 2 octaves × 3 steps, seed 0")  # the slide's settings
    assert not [text for text in at.caption if "on this machine" in text.value]  # no wait to announce


def test_an_ideal_images_slide_is_painted_ahead_with_its_settings(monkeypatch):
    view = {"model": "mobilenet_v2", "image": "chelsea", "layer": "features.4", "filter": "3"}
    own = {"mode": "a-class", "steps": "16", "size": "64"}  # the class: where its widget starts, the top guess
    talk = talks.Talk([talks.Slide("feature_vis", {**view, **own}, "Ideal"), talks.Slide("overview", view, "")])
    at = start("views/talk.py", **{TALK: talk})
    at.button(key="talk_present").click().run()  # paints the slide ahead
    assert not at.exception, at.exception
    monkeypatch.setattr(vis_core, "feature_visualization", lambda *a, **k: pytest.fail("painted again"))
    at.switch_page("views/feature_vis.py").run()  # where Present's switch_page goes
    assert not at.exception, at.exception
    (caption,) = [picture.caption for element in at.main.image for picture in element.proto.imgs]
    assert caption == "class 'Egyptian cat'"  # chelsea's top guess, as the page's class box starts
    assert any("(16 steps, seed 0" in text.value for text in at.caption)


def test_a_rebuild_the_photo_slide_shows_its_strip_made_ahead(monkeypatch):
    view = {"model": "mobilenet_v2", "image": "coffee", "layer": "features.4", "filter": "0"}
    own = {"steps": "20", "strip": "features.2,features.7"}
    talk = talks.Talk([talks.Slide("reconstruction", {**view, **own}, "Rebuilt"), talks.Slide("overview", view, "")])
    at = start("views/talk.py", **{TALK: talk})
    at.button(key="talk_present").click().run()  # rebuilds the slide's strip ahead
    assert not at.exception, at.exception
    monkeypatch.setattr(vis_core, "reconstruct", lambda *a, **k: pytest.fail("rebuilt again"))
    at.switch_page("views/reconstruction.py").run()  # where Present's switch_page goes
    assert not at.exception, at.exception
    captions = [picture.caption for element in at.main.image for picture in element.proto.imgs]
    assert [caption.split(":")[0] for caption in captions[1:]] == ["from features.2", "from features.7"]


def heavy_talk(slides: int) -> talks.Talk:
    """Rebuild slides of 600 steps from six layers: 3,600 passes each, under one request's cap."""
    layers = "features.1,features.2,features.4,features.7,features.11,features.14"
    params = {"model": "mobilenet_v2", "image": "coffee", "layer": "features.10", "filter": "0"}
    return talks.Talk(
        [talks.Slide("reconstruction", {**params, "steps": "600", "strip": layers}) for _ in range(slides)]
    )


def test_present_sums_its_slides_work_and_refuses_a_talk_over_its_budget(monkeypatch):
    """#24: each slide under one request's cap, fifty of them far over what one Present may ask."""
    from vis_core import costs

    budget = talks.budget(heavy_talk(50))
    assert budget.passes == (3600.0,) * 50 and budget.total == 180_000 and not budget.allowed
    assert budget.heaviest() == [1, 2, 3]
    assert talks.budget(heavy_talk(4)).allowed and talks.budget(heavy_talk(5)).total > costs.MAX_JOB_WORK
    warmed: list = []
    monkeypatch.setattr(settings, "warm", lambda *args, **kwargs: warmed.append(args))
    at = start("views/talk.py", **{TALK: heavy_talk(50)})
    assert not at.exception
    assert at.button(key="talk_present").disabled
    warning = " ".join(shown(w.value) for w in at.warning)
    assert "180,000 passes" in warning and f"{costs.MAX_JOB_WORK:,}" in warning and "slides 1, 2, 3" in warning
    assert warmed == [] and TALK_PRESENTING not in at.session_state  # nothing was computed


def test_a_talk_within_its_budget_says_how_long_present_will_take():
    at = start("views/talk.py", **{TALK: three_slides()})
    assert not at.button(key="talk_present").disabled
    caption = " ".join(shown(c.value) for c in at.caption)
    assert "Present shows the first slide once it is made and prepares the other 2 in the background" in caption
    assert "about" in caption and "passes of the network" in caption


def test_present_shows_the_first_slide_at_once_and_prepares_the_others_in_order(monkeypatch):
    """#24/#25: Present waits for the first slide only; the others are made in the background, in
    slide order, and a slide not ready yet says so (its page then makes it itself)."""
    import threading

    release, order = threading.Event(), []
    warm = settings.warm

    def slow_after_the_first(view, **kwargs):
        order.append((view.page, threading.current_thread().name))
        if view.page != "overview":
            assert release.wait(120)
        return warm(view, **kwargs)

    monkeypatch.setattr(settings, "warm", slow_after_the_first)
    at = start("views/talk.py", **{TALK: three_slides()})
    at.button(key="talk_present").click().run()
    assert not at.exception and at.session_state[TALK_PRESENTING] is True
    assert at.title[0].value == "Photo and guesses"  # the first slide, while the others wait
    found = talks.ahead(three_slides())
    assert not found.done and found.ready == {0}
    assert "Preparing the next slides in the background: 1 of 3 ready" in " ".join(shown(c.value) for c in at.caption)
    at.button(key="talk_next").click().run()  # not ready yet: the page makes it, and says so
    assert not at.exception
    assert any("Slide 2 is still being prepared" in shown(i.value) for i in at.info)
    release.set()
    assert found.wait(300) and found.ready == {0, 1, 2}
    assert [page for page, _ in order] == ["overview", "feature_maps", "activation_maps"]  # in slide order
    assert order[0][1] != order[1][1] == order[2][1] == "talk-ahead"  # the first in the click, the rest behind
