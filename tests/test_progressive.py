"""Quick first pictures that refine to the exact map (issue #12), and the cost model.

The agreement each refining method states (``Method.first_agreement``, shown in the dashboard
beside a first picture) is held here on the sample photos: the first picture's Pearson r with
the exact map of the same run.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

import vis_core
from dashboard.work import refine
from vis_core import costs
from vis_core.attribution import METHODS, attribute_stages
from vis_core.errors import ParameterError
from vis_core.optim import Stopped

REFINING = [name for name, method in METHODS.items() if method.refines]
PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_the_slow_methods_refine_and_the_quick_ones_do_not():
    assert set(REFINING) == {"scorecam", "occlusion", "integrated_gradients"}
    for name, method in METHODS.items():
        assert (method.speed == "long") <= method.refines, name  # every long method gives a first picture
        assert method.layer_choice == (method.layer_policy == "any")
    assert METHODS["cam"].layer_policy == "pooled" and not METHODS["cam"].layer_choice


@pytest.mark.parametrize("method", ["occlusion", "integrated_gradients"])
@pytest.mark.parametrize("photo", PHOTOS)
def test_first_picture_agrees_with_the_exact_map_as_stated(handle, photo, method):
    stages = list(attribute_stages(handle, vis_core.sample_image(photo), method))
    first, exact = stages[0], stages[-1]
    assert not first.exact and first.approximation and exact.exact and exact.approximation is None
    assert all(not stage.exact for stage in stages[:-1])
    assert pearson(first.model_map, exact.model_map) >= METHODS[method].first_agreement, photo


@pytest.mark.parametrize("photo", PHOTOS[:2])
def test_scorecam_first_picture_agrees_at_the_default_layer(handle, photo):
    stages = list(attribute_stages(handle, vis_core.sample_image(photo), "scorecam"))
    channels = handle.layer(handle.last_spatial_layer()).channels
    assert [s.approximation.split(" over the ")[1].split(" of ")[0] for s in stages[:-1]] == ["16", "64", "256", "1024"]
    assert str(channels) in stages[0].approximation
    assert pearson(stages[0].model_map, stages[-1].model_map) >= METHODS["scorecam"].first_agreement


@pytest.mark.parametrize(
    ("method", "options"),
    [("scorecam", {"layer": "features.14"}), ("occlusion", {"window": 56}), ("integrated_gradients", {"steps": 16})],
)
def test_the_last_stage_is_the_exact_map(handle, cat, method, options):
    stages = list(attribute_stages(handle, cat, method, **options))
    exact = vis_core.attribute(handle, cat, method, **options)
    assert len(stages) >= 2 and stages[-1].exact
    np.testing.assert_allclose(stages[-1].map, exact.map, rtol=1e-4, atol=1e-5)
    assert stages[-1].target == exact.target and stages[-1].steps == exact.steps


def test_quick_methods_yield_one_exact_map(handle, cat):
    (only,) = attribute_stages(handle, cat, "gradcam")
    assert only.exact and only.approximation is None
    np.testing.assert_allclose(only.map, vis_core.attribute(handle, cat, "gradcam").map, rtol=1e-5, atol=1e-6)


def test_a_stopped_scorecam_raises_the_engines_stop(handle, cat):
    with pytest.raises(Stopped):
        vis_core.attribute(handle, cat, "scorecam", should_stop=lambda: True)


def test_the_cost_model_counts_passes_and_is_measured(handle):
    times = costs.pass_seconds(handle)
    assert times.forward > 0 and times.forward_backward > 0
    assert costs.pass_seconds(handle) is times  # measured once per model
    last = handle.last_spatial_layer()
    assert METHODS["scorecam"].passes(handle, last, {}) == (1 + handle.layer(last).channels, 0)
    assert METHODS["occlusion"].passes(handle, None, {}) == (1 + 15 * 15, 0)  # 28-px patches every 14 px
    assert METHODS["integrated_gradients"].passes(handle, None, {"steps": 64}) == (2, 64)
    early = costs.estimate_attribution(handle, "scorecam", "features.4")
    late = costs.estimate_attribution(handle, "scorecam", last)
    assert late / early == pytest.approx((1 + handle.layer(last).channels) / (1 + handle.layer("features.4").channels))
    assert costs.estimate_attribution(handle, "gradcam") == pytest.approx(times.forward_backward)


def test_work_over_the_cap_is_refused_with_what_to_reduce(handle):
    assert costs.work_of_images(handle, [handle.input_size], steps=10, batch=2) == 20
    assert costs.work_of_images(handle, [(448, 448)], steps=1) == 4
    costs.check_work(costs.MAX_WORK, "A dream", "the steps")
    with pytest.raises(ParameterError, match=r"more than the 4,096 .* Reduce the steps or the size"):
        costs.check_work(costs.MAX_WORK + 1, "A dream", "the steps or the size")


def test_refinements_are_shared_and_stop_when_nobody_watches(handle, cat, monkeypatch):
    refine.clear()
    monkeypatch.setattr(refine, "WATCH_SECONDS", 1.0)
    work = refine.refinement(handle, "cat", cat, "scorecam", 281, None)
    assert refine.refinement(handle, "cat", cat, "scorecam", 281, None) is work  # a second viewer shares it
    assert work.wait_first(timeout=300)
    assert work.latest is not None and not work.latest.exact
    deadline = time.monotonic() + 120
    while work.thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)  # nobody asks again: it stops within a batch
    assert work.stopped and not work.finished
    again = refine.refinement(handle, "cat", cat, "scorecam", 281, None)
    assert again is not work  # an abandoned refinement starts over when asked for again
    refine.clear()
    assert not again.thread.is_alive()


def test_a_large_photo_is_dreamed_at_a_bounded_size_and_says_so(handle):
    from PIL import Image

    from vis_core.dream import MAX_SIDE, deep_dream

    photo = vis_core.sample_image("astronaut").resize((1600, 1000))
    dream = deep_dream(handle, photo, layer="features.4", octaves=1, steps=1)
    assert dream.image.shape == (480, MAX_SIDE, 3) == dream.original.shape
    assert dream.scaled_from == (1600, 1000)
    small = deep_dream(handle, Image.new("RGB", (300, 200), "grey"), layer="features.4", octaves=1, steps=1)
    assert small.image.shape == (200, 300, 3) and small.scaled_from is None


def test_requests_over_the_work_cap_are_refused_before_any_work(handle, cat):
    from vis_core.dream import deep_dream, dream_work
    from vis_core.featurevis import feature_visualization, render_work

    assert render_work(handle, steps=512, size=448, images=16) == 512 * 16 * 4
    with pytest.raises(ParameterError, match="Reduce the steps, the size or the number of images"):
        feature_visualization(handle, layer="features.10", channel=list(range(16)), steps=512, size=448)
    with pytest.raises(ParameterError, match="Reduce the steps per octave or the octaves"):
        deep_dream(handle, cat.resize((1600, 1000)), layer="features.10", octaves=8, octave_scale=1.1, steps=200)
    assert dream_work(handle, (1600, 1000), octaves=8, octave_scale=1.1, steps=200) > costs.MAX_WORK
    assert dream_work(handle, (4000, 3000), octaves=4, octave_scale=1.4, steps=10) < costs.MAX_WORK  # defaults run


@pytest.mark.usefixtures("clear_caches")
def test_the_pages_estimate_long_work_and_refuse_what_is_over_the_cap():
    from tests.support.apptest import start

    at = start("views/feature_vis.py")
    assert any(c.value.startswith("About ") and "on this machine" in c.value for c in at.caption)
    assert not at.button(key="fv_go").disabled
    at = start("views/feature_vis.py", fv_mode="gallery of filters", fv_steps=512, fv_size=448, fv_range=(0, 15))
    assert "Reduce the steps, the size or the number of filters" in at.warning[0].value
    assert at.button(key="fv_go").disabled
    at = start("views/deep_dream.py")
    assert any(c.value.startswith("About ") for c in at.caption)


@pytest.mark.usefixtures("clear_caches")
def test_the_activation_maps_page_shows_a_first_picture_and_says_what_it_is():
    from tests.support.apptest import start

    at = start("views/activation_maps.py", am_method="scorecam", am_compare=["gradcam"])
    titles = " ".join(json.dumps(json.loads(chart.proto.spec), ensure_ascii=False) for chart in at.get("plotly_chart"))
    assert "Score-CAM for 'Egyptian cat' at features.18" in titles
    captions = " ".join(caption.value for caption in at.caption)
    assert "First picture: Score-CAM over the 16 of 1280 channels with the most Grad-CAM evidence" in captions
    assert "r ≥ 0.90" in captions and "Sharpening: Score-CAM" in captions


def test_any_staged_work_is_shared_and_reports_its_progress():
    """refine.shared runs any stages (the evidence's faithfulness curves and sanity check use it):
    the quick result first, the exact one last, the progress the stages report."""
    from types import SimpleNamespace

    refine.clear()
    calls = []

    def stages(progress, should_stop):
        calls.append(1)
        yield SimpleNamespace(exact=False, value=1)
        progress(3, 4)
        yield SimpleNamespace(exact=True, value=2)

    work = refine.shared(("test", "key"), stages)
    assert refine.shared(("test", "key"), stages) is work  # a second viewer shares it
    work.thread.join(30)
    assert work.done and work.finished and work.latest.value == 2 and work.fraction == 0.75 and calls == [1]
    refine.clear()
