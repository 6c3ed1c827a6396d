"""The Tour (``dashboard/views/tour.py``, ``dashboard/tour.py``): every step draws the engine's own
numbers, Back/Next move and stop at the ends, "Explore this" opens the full page on the same view,
and the background preparation makes the slow results and stops when cleared.

The slow results are waited for before the steps that show them are drawn (``Preparation.wait``),
so no test depends on how fast this machine is.
"""

from __future__ import annotations

import base64
import json
import threading

import numpy as np
import pytest

import vis_core
from dashboard import figures
from dashboard.state import CHANNEL, FAITHFULNESS_ON, FILTERS_LAYER, LAYER, SELECTION, TOUR_STEP
from dashboard.views import deep_dream, tour, unit
from dashboard.views.declare import View
from dashboard.work import story
from tests.support import shown
from tests.support.apptest import start
from vis_core.dream import dream_size
from vis_core.filters import filters

pytestmark = pytest.mark.usefixtures("clear_caches")  # which also stops the tour's preparation
PREPARED = 900  # s: the longest a test waits for the slow results on a busy 2-core machine
TOUR = "views/tour.py"


def specs(at) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def values(array) -> np.ndarray:
    """A figure's array as Plotly's JSON holds it (typed, base64) or as a plain list."""
    if isinstance(array, dict) and "bdata" in array:
        flat = np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
        return flat.reshape([int(n) for n in str(array.get("shape", flat.size)).split(",")])
    return np.asarray(array, dtype=float)


def heatmap(spec: dict) -> np.ndarray:
    return values(next(trace["z"] for trace in spec["data"] if trace["type"] == "heatmap"))


def images(at) -> list:
    return [picture for element in at.main.image for picture in element.proto.imgs]


def texts(at) -> str:
    return " ".join(shown(element.value) for element in [*at.markdown, *at.info, *at.caption, *at.success])


def strongest(array: np.ndarray) -> int:
    """The channel with the largest activation anywhere, computed here independently of the page."""
    return int(np.argmax(array.reshape(array.shape[0], -1).max(axis=1)))


def the_preparation() -> story.Preparation:
    (preparation,) = story._SHELF._items.values()
    return preparation


def next_step(at):
    at.button(key="tour_next").click().run()
    assert not at.exception, at.exception
    return at


def test_every_step_draws_the_engines_numbers(handle, cat):
    at = start(TOUR)
    preparation = the_preparation()
    assert preparation.tasks == list(story.TASKS)  # no atlas: the filter's picture is painted too
    maps = vis_core.feature_maps(handle, cat)

    # 1: the model's view and its five guesses
    assert at.title[0].value == "What the model sees"
    (guesses,) = specs(at)
    assert "Egyptian cat" in json.dumps(guesses) and "224×224" in texts(at) and "72%" in texts(at)
    assert len(images(at)) == 1

    # 2: the first convolution's 32 kernels, as colour tiles (8 x 4 of 3x3 with 1-pixel gaps)
    next_step(at)
    assert at.title[0].value == "The first layer's filters"
    (kernels,) = specs(at)
    drawn = values(kernels["data"][0]["z"])
    expected = values(figures.rgb_mosaic(filters(handle, "features.0.0").rgb("filter"), columns=8).data[0].z)
    assert drawn.shape == (4 * 4 + 1, 8 * 4 + 1, 3) and np.array_equal(drawn, expected)

    # 3: the strongest map of an early, a middle and a deep block: the real activations
    next_step(at)
    depth = specs(at)
    assert [spec["layout"]["title"]["text"] for spec in depth] == [
        "Block 3 of 21: edges and colours",
        "Block 11 of 21: parts of objects",
        "Block 19 of 21: objects",
    ]
    for spec, layer in zip(depth, ("features.2", "features.10", "features.18")):
        activations = maps.activations[layer]
        assert np.allclose(heatmap(spec), activations[strongest(activations)])
    assert "features.10 · filter 27" in texts(at)

    # 4: one filter: where it fires (its map) and what it looks for (painted in the background)
    assert preparation.wait(story.RENDER, PREPARED), preparation.errors
    next_step(at)
    assert at.title[0].value == "One filter up close"
    (where,) = specs(at)
    assert np.allclose(heatmap(where), maps.activations["features.10"][27])
    assert [picture.caption for picture in images(at)] == ["What it looks for"]
    render = preparation.results[story.RENDER]
    side = unit.QUICK_SIZE  # One filter's quick painting ("Paint it"), the same picture
    assert (render.layer, render.channels, render.image.shape) == ("features.10", (27,), (side, side, 3))

    # 5: Grad-CAM for the top class, the same map as the engine's
    next_step(at)
    (cam,) = specs(at)
    expected = vis_core.attribute(handle, cat, "gradcam", target=285).cells  # the layer's grid, smoothed in the browser
    assert np.allclose(heatmap(cam), expected, atol=1e-5)
    assert "'Egyptian cat'" in cam["layout"]["title"]["text"]

    # 6: deletion and insertion curves beside a random map, and one plain verdict
    assert preparation.wait(story.TRUST, PREPARED), preparation.errors
    next_step(at)
    report = preparation.results[story.TRUST]
    assert report.target == 285 and [curve.method for curve in report.curves] == ["gradcam"]
    (curves,) = specs(at)
    plotted = [values(trace["y"]) for trace in curves["data"]]
    assert any(np.allclose(line, report.curves[0].deletion) for line in plotted)
    assert any(np.allclose(line, report.random.deletion) for line in plotted)
    assert story.trust_verdict(report)[1] in texts(at)

    # 7: the dream, beside the photo
    assert preparation.wait(story.DREAM, PREPARED), preparation.errors
    next_step(at)
    assert at.title[0].value == "A dream"
    dream = preparation.results[story.DREAM]
    width, height = dream_size(cat.size)  # the Deep dream page's dream of the photo, at the tour's settings
    assert dream.layer == "features.10" and dream.image.shape == (height, width, 3)
    assert (dream.octaves, dream.steps) == (tour.DREAM_VALUES["dd_octaves"], tour.DREAM_VALUES["dd_steps"])
    assert [picture.caption for picture in images(at)] == ["The photo", "The dream (3 scales × 5 steps)"]
    assert not at.error and not at.warning


def test_back_and_next_move_and_stop_at_the_ends():
    at = start(TOUR)
    assert at.button(key="tour_back").disabled and not at.button(key="tour_next").disabled
    next_step(at)
    next_step(at)
    assert at.session_state[TOUR_STEP] == 2 and at.title[0].value == "From simple to abstract"
    at.button(key="tour_back").click().run()
    assert at.session_state[TOUR_STEP] == 1 and at.title[0].value == "The first layer's filters"
    last = len(story.STEPS) - 1
    at = start(TOUR, **{TOUR_STEP: last})
    assert at.button(key="tour_next").disabled and not at.button(key="tour_back").disabled  # (keys too)
    assert at.title[0].value == "A dream"
    at = start(TOUR, **{TOUR_STEP: 99})  # a step that is not there: the first
    assert at.session_state[TOUR_STEP] == 0 and at.title[0].value == "What the model sees"


def test_a_step_not_ready_says_so_and_draws_when_ready(monkeypatch):
    """The filter's picture is not ready: a progress line instead of it; once ready, the picture."""
    release = threading.Event()

    def slow_render(handle, image, recipe, progress, should_stop):
        progress(1, 4)
        release.wait(60)
        return vis_core.feature_visualization(
            handle, layer=recipe["layer"], channel=recipe["channel"], steps=2, size=32
        )

    monkeypatch.setitem(story._RUNNERS, story.RENDER, slow_render)
    at = start(TOUR, **{TOUR_STEP: 3})
    assert "Preparing the picture of what this filter looks for (25%)" in texts(at)
    assert not images(at) and len(specs(at)) == 1  # the map is drawn, the picture is not
    release.set()
    assert the_preparation().wait(story.RENDER, 60)
    at.run()
    assert [picture.caption for picture in images(at)] == ["What it looks for"] and "Preparing" not in texts(at)


@pytest.mark.parametrize(
    ("step", "page_title", "expected"),
    [
        (1, "Filters", {LAYER: "features.0", FILTERS_LAYER: "features.0.0"}),
        (2, "Feature maps", {LAYER: "features.10", CHANNEL: 27}),
        (3, "One filter", {LAYER: "features.10", CHANNEL: 27}),
        (5, "Activation maps", {"am_method": "gradcam", "am_compare": ["gradcam"], FAITHFULNESS_ON: True}),
        (6, "Deep dream", {LAYER: "features.10", "dd_octaves": 3, "dd_steps": 5}),
    ],
)
def test_explore_opens_the_full_page_on_the_same_view(monkeypatch, step, page_title, expected):
    monkeypatch.setattr(story, "TASKS", ())  # nothing slow to prepare: only the switch is tested
    at = start(TOUR, **{TOUR_STEP: step})
    assert at.button(key="tour_explore").label.endswith(story.STEPS[step].page_title)
    at.button(key="tour_explore").click().run()
    assert not at.exception, at.exception
    assert at.title[0].value != story.STEPS[step].title  # another page
    for key, value in expected.items():
        assert at.session_state[key] == value, key
    selection = at.session_state[SELECTION]
    if LAYER in expected:
        assert selection.layer == expected[LAYER]
    if CHANNEL in expected:
        assert selection.channel == expected[CHANNEL]


def recipes(plan: story.Plan) -> story.Recipes:
    """The tour's recipes for the sample Chelsea, as the Tour page derives them."""
    from dashboard.sidebar.image_source import ImageEntry

    handle = vis_core.load_model()
    entry = ImageEntry("sample:chelsea", "chelsea", vis_core.sample_image(vis_core.sample_names()[0]))
    view = View("tour", handle, entry, "features.10", 0, {TOUR_STEP: 0})
    return tour.recipes(view, plan)


def test_the_slow_pictures_are_what_the_full_pages_declare(handle, cat):
    """#23: the tour's preparation comes from the pages' declarations, restating nothing."""
    from dashboard.views.declare import resolve

    maps, prediction = vis_core.feature_maps(handle, cat), vis_core.predict(handle, cat)
    plan = story.plan(handle, maps, prediction)
    made = recipes(plan)
    assert made[story.RENDER] == unit.painting_args("features.10", 27)  # One filter's "Paint it"
    assert made[story.TRUST]["methods"] == ("gradcam",) and made[story.TRUST]["target"] == 285
    assert made[story.TRUST]["layer"] == "features.18"  # the page's CAM layer for this model
    values, _ = resolve(deep_dream.PAGE, handle, None, "features.10", 0, tour.DREAM_VALUES)
    dream = View("deep_dream", handle, None, "features.10", 0, values)
    assert made[story.DREAM] == deep_dream.dream_args(dream)  # the Deep dream page's arguments
    assert made[story.DREAM]["octaves"] == 3 and made[story.DREAM]["steps"] == 5


def test_the_preparation_makes_the_slow_results_in_order(handle, cat):
    maps, prediction = vis_core.feature_maps(handle, cat), vis_core.predict(handle, cat)
    plan = story.plan(handle, maps, prediction)
    assert plan.unit == ("features.10", 27) and plan.top_class == 285 and plan.first_conv == "features.0.0"
    done: list[str] = []
    runners = dict(story._RUNNERS)
    for task in story.TASKS:  # record the order, compute for real
        story._RUNNERS[task] = lambda *args, task=task: done.append(task) or runners[task](*args)
    try:
        preparation = story.prepare(handle, "sample:chelsea", cat, plan, [story.DREAM, story.TRUST], recipes(plan))
        assert preparation.wait(story.TRUST, PREPARED) and preparation.wait(story.DREAM, PREPARED)
    finally:
        story._RUNNERS.update(runners)
    assert done == [story.TRUST, story.DREAM] and not preparation.errors  # the steps' order
    assert isinstance(preparation.results[story.TRUST], vis_core.FaithfulnessReport)
    again = story.prepare(handle, "sample:chelsea", cat, plan, [story.DREAM], recipes(plan))
    assert again is preparation and preparation.done and preparation.thread is None  # shared, nothing redone


def test_the_preparation_stops_when_cleared_or_abandoned(monkeypatch, handle, cat):
    started, stopped = threading.Event(), threading.Event()

    def endless(handle, image, recipe, progress, should_stop):
        started.set()
        while not should_stop():
            started.wait(0.05)
        stopped.set()
        raise vis_core.VisCoreError("stopped") from None

    monkeypatch.setattr(story, "_RUNNERS", {task: endless for task in story.TASKS})
    plan = story.Plan(None, (), ("features.10", 0), 0, "features.18", "features.10")
    none = {task: {} for task in story.TASKS}
    preparation = story.prepare(handle, "a", cat, plan, list(story.TASKS), none)
    assert started.wait(30)
    story.clear()
    assert stopped.is_set() and preparation.thread is None and not story._SHELF._items

    monkeypatch.setattr(story, "WATCH_SECONDS", 0.3)  # nobody asks any more: it stops by itself
    started.clear(), stopped.clear()
    preparation = story.prepare(handle, "b", cat, plan, [story.DREAM], none)
    assert started.wait(30) and stopped.wait(30)
    thread = preparation.thread
    if thread is not None:
        thread.join(30)
    assert preparation.thread is None


def test_the_trust_verdict_in_words():
    def report(deletion: float, insertion: float) -> vis_core.FaithfulnessReport:
        def curve(method, d, i):
            x = np.linspace(0, 1, 3)
            return vis_core.Faithfulness(method, 0, x, np.full(3, d), np.full(3, i), d, i)

        return vis_core.FaithfulnessReport((curve("gradcam", deletion, insertion),), curve("random", 0.5, 0.5))

    assert story.trust_verdict(report(0.2, 0.8))[0] == "yes"
    assert story.trust_verdict(report(0.8, 0.8))[0] == "partly"
    assert "brings the model's confidence back faster" in story.trust_verdict(report(0.8, 0.8))[1]
    assert "takes the model's confidence away faster" in story.trust_verdict(report(0.2, 0.2))[1]
    assert story.trust_verdict(report(0.8, 0.2))[0] == "no"


def test_the_plan_on_small_models(tiny):
    image = vis_core.sample_image("coffee")
    plan = story.plan(tiny, vis_core.feature_maps(tiny, image), vis_core.predict(tiny, image))
    assert plan.first_conv in tiny.layers and plan.cam_layer == tiny.last_spatial_layer()
    for layer, channel in plan.depth:
        assert tiny.layers[layer].is_spatial and 0 <= channel < tiny.layers[layer].channels
    assert plan.unit in plan.depth and plan.dream_layer == plan.unit[0]


def test_explore_from_the_trust_step_shows_the_same_check_at_once(handle, cat):
    """The tour's step 6 is Where it looked's own faithfulness check (shared): once the tour made
    it, "Explore this" opens the page with those curves drawn, nothing computed again."""
    from dashboard.work import refine

    at = start(TOUR, **{TOUR_STEP: 5})
    preparation = the_preparation()
    assert preparation.wait(story.TRUST, PREPARED), preparation.errors
    report = preparation.results[story.TRUST]
    kept = dict(refine._SHELF._items)
    at.button(key="tour_explore").click().run()
    assert not at.exception and at.title[0].value == "Where it looked"
    (check,) = [job for key, job in refine._SHELF._items.items() if key[0] == "faithfulness"]
    assert check is next(job for key, job in kept.items() if key[0] == "faithfulness")  # the same work
    assert check.done and check.latest is report
    curves = next(spec for spec in specs(at) if "Deletion (to grey)" in json.dumps(spec))
    plotted = [values(trace["y"]) for trace in curves["data"]]
    assert any(np.allclose(line, report.curves[0].deletion) for line in plotted)
