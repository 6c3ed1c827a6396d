"""AppTest runs of every page: the pages render, follow the sidebar, and report errors.

Streamlit's AppTest drops sidebar elements from its element tree on reruns of an app that
uses ``st.navigation`` (the real app is unaffected, as the browser tests show), so each
scenario starts a fresh AppTest with the sidebar state set before its first run, and
interactions that run callbacks are checked through the main area and session state.
"""

from __future__ import annotations

import json
import urllib.error

import pytest
import torch
from streamlit.testing.v1 import AppTest

import vis_core.evolution
import vis_core.runs
import vis_core.training
from dashboard.state import (
    CHANNEL,
    FILTERS_LAYER,
    IMAGE,
    IMAGE_SOURCE,
    LAB_JOB,
    LAB_RUN,
    LAYER,
    MODEL_CHOICE,
    MODEL_NAME,
    SAMPLE,
    SELECTION,
    SHOW_SUBLAYERS,
)
from tests.support import shown
from tests.support.apptest import APP, TIMEOUT, setting, start

FEATURE_MAPS = "views/feature_maps.py"


pytestmark = pytest.mark.usefixtures("clear_caches")


OVERVIEW = "views/overview.py"  # the landing page is the tour


def charts(at: AppTest) -> list:
    return list(at.get("plotly_chart"))


def chart_titles(at: AppTest) -> str:
    return " ".join(json.dumps(json.loads(chart.proto.spec), ensure_ascii=False) for chart in charts(at))


def test_overview_page():
    at = start(OVERVIEW)
    assert at.title[0].value == "Photo and guesses"
    assert "feature maps" in at.markdown[0].value
    assert len(charts(at)) == 1 and "Egyptian cat" in chart_titles(at)
    assert [m.label for m in at.metric] == ["Parameters", "Input", "Blocks", "Modules", "Runs on"]
    assert at.metric[1].value == "224×224" and at.metric[0].value == "3.5 M"
    table = at.dataframe[0].value
    assert {"name", "type", "output shape", "parameters"} <= set(table.columns)
    assert "features.10" in set(table["name"]) and len(table) > 150
    assert table.set_index("name").loc["features.10", "output shape"] == "64×14×14"
    assert not at.error
    setting(at.toggle, "overview_blocks_only").set_value(True).run()
    assert len(at.dataframe[0].value) == 21


def test_sidebar_defaults_and_layer_labels():
    at = start()
    assert at.sidebar.selectbox(key=MODEL_CHOICE).value == "mobilenet_v2"
    layer = next(box for box in at.sidebar.selectbox if box.label == "Layer")
    assert layer.value == "features.10"
    assert "features.10 · parts of objects" in layer.options  # the block's depth in plain words
    assert any(c.value == "Block 11 of 21: parts of objects · 64×14×14 · InvertedResidual" for c in at.sidebar.caption)
    assert all(".conv." not in option for option in layer.options)  # blocks only by default
    assert at.sidebar.number_input(key=CHANNEL).value == 14  # the filter whose peak stands out most on chelsea
    assert at.sidebar.selectbox(key=SAMPLE).value == "chelsea (cat)"


def test_feature_maps_page_default():
    at = start(FEATURE_MAPS)
    assert at.title[0].value == "Feature maps"
    assert len(charts(at)) == 3  # the chosen channel, the grid of channels, the profile across blocks
    assert "features.10 · filter 14" in chart_titles(at)
    assert [m.label for m in at.metric][:2] == ["Mean activation", "Strongest response"]
    assert "Channels 0–63 of 64" in " ".join(c.value for c in at.caption)


def test_feature_maps_follow_layer_and_channel():
    at = start(FEATURE_MAPS, **{LAYER: "features.2", CHANNEL: 7})
    assert "features.2 · filter 7" in chart_titles(at)
    assert at.subheader[0].value == "All filters of features.2"
    assert "56×56" in " ".join(c.value for c in at.caption)


def test_a_silent_filter_is_explained():
    at = start(FEATURE_MAPS, **{LAYER: "features.18", CHANNEL: 9})  # all zeros for chelsea
    assert "gives the same value (0) everywhere" in at.info[0].value and "ReLU switched it off" in at.info[0].value
    at = start(FEATURE_MAPS, **{LAYER: "features.18", CHANNEL: 0})
    assert not at.info


def test_feature_maps_paging_for_large_maps():
    at = start(FEATURE_MAPS, **{LAYER: "features.0"})  # 32 maps of 112×112: paged
    captions = " ".join(c.value for c in at.caption)
    assert "Channels 0–15 of 32" in captions
    setting(at.number_input, "fm_page").set_value(2).run()
    assert "Channels 16–31 of 32" in " ".join(c.value for c in at.caption)


def test_top_n_mode():
    at = start(FEATURE_MAPS, fm_show="Top-N by max", **{LAYER: "features.14"})
    assert setting(at.slider, "fm_top_n").value == 16
    assert "16 filters with the highest max activation" in " ".join(c.value for c in at.caption)


def test_channel_is_clamped_to_the_layer():
    at = start(FEATURE_MAPS, **{LAYER: "features.1", CHANNEL: 1000})  # 16 channels
    assert at.sidebar.number_input(key=CHANNEL).value == 0
    assert "features.1 · filter 0" in chart_titles(at)


def test_sub_layers_and_vector_layers():
    at = start(FEATURE_MAPS, **{SHOW_SUBLAYERS: True, LAYER: "features.10.conv.0.1", CHANNEL: 0})
    assert "features.10.conv.0.1 · filter 0" in chart_titles(at)
    layer_box = next(box for box in at.sidebar.selectbox if box.label == "Layer")
    assert any(".conv." in option for option in layer_box.options)
    at = start(FEATURE_MAPS, **{LAYER: "classifier.1", CHANNEL: 285})
    assert "vector of 1000" in at.subheader[0].value
    assert "Egyptian cat" in chart_titles(at)


def start_from_link(page: str | None = None, **params) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update(params)
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def test_a_link_opens_its_view_and_the_address_follows_the_selection():
    at = start_from_link(FEATURE_MAPS, image="coffee", layer="features.5.conv.1", filter="7")
    assert at.session_state[SELECTION].image.key == "sample:coffee"
    assert "features.5.conv.1 · filter 7" in chart_titles(at)
    assert at.session_state[SHOW_SUBLAYERS] is True  # a sub-layer in a link lists sub-layers
    assert not at.toast
    assert dict(at.query_params) == {
        "model": "mobilenet_v2",
        "layer": "features.5.conv.1",
        "filter": "7",
        "image": "coffee",
    }


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"model": "no_such_net"}, "no_such_net"),
        ({"image": "../../etc/passwd"}, "../../etc/passwd"),
        ({"layer": "features.99"}, "features.99"),
        ({"layer": "features.1", "filter": "16"}, "'16'"),  # features.1 has 16 filters: 0..15
        ({"filter": "-3"}, "'-3'"),
    ],
)
def test_a_bad_link_names_what_it_ignored_and_shows_the_defaults(params, named):
    at = start_from_link(FEATURE_MAPS, **params)
    assert any(named in shown(toast.value) for toast in at.toast), [t.value for t in at.toast]
    selection = at.session_state[SELECTION]
    assert selection.handle.name == "mobilenet_v2" and selection.image.key == "sample:chelsea (cat)"
    assert selection.channel == (0 if params.get("layer") == "features.1" else 14)  # the clearest filter on chelsea
    assert selection.layer == ("features.1" if params.get("layer") == "features.1" else "features.10")


def test_sample_change_updates_prediction():
    at = start(OVERVIEW)
    assert "Egyptian cat" in chart_titles(at)
    at.sidebar.selectbox(key=SAMPLE).set_value("coffee").run()  # runs the on_change callback
    assert not at.exception
    assert "espresso" in chart_titles(at) or "cup" in chart_titles(at)


def test_unavailable_model_shows_error_and_keeps_previous(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    at = start(FEATURE_MAPS, **{MODEL_CHOICE: "resnet18"})
    errors = [shown(e.value) for e in at.error]
    assert errors and "mobilenet_v2" in errors[0] and "not on this machine" in errors[0] and "URLError" not in errors[0]
    assert at.session_state[MODEL_CHOICE] == "mobilenet_v2"
    assert len(charts(at)) == 3  # the page still works with the previous model


FILTERS = "views/filters.py"
LAB = "views/training_lab.py"


def test_filters_page_kinds():
    at = start(FILTERS)  # sidebar layer features.10: its three convolutions are offered
    assert at.title[0].value == "Filters"
    assert setting(at.selectbox, FILTERS_LAYER).options == [
        "features.10.conv.0.0 · 384×14×14",
        "features.10.conv.1.0 · 384×14×14",
        "features.10.conv.2 · 64×14×14 · the sidebar's filters",
    ]
    # one numbering: the page starts at the convolution whose filters are the sidebar's 0-63
    assert at.session_state[FILTERS_LAYER] == "features.10.conv.2"
    at = start(FILTERS, **{FILTERS_LAYER: "features.10.conv.0.0"})
    assert "filters × input channels" in chart_titles(at)  # the 1x1 expansion is a matrix
    at = start(FILTERS, **{LAYER: "features.0", CHANNEL: 5})
    assert [json.loads(c.proto.spec)["data"][0]["type"] for c in charts(at)] == ["image", "heatmap", "histogram", "bar"]
    assert any("Filter 5, channel by channel" in h.value for h in at.subheader)
    setting(at.sidebar.radio, "fl_norm").set_value("whole layer").run()
    assert not at.exception
    at = start(FILTERS, **{FILTERS_LAYER: "features.10.conv.1.0"})
    assert "depthwise" in at.info[0].value and len(charts(at)) == 3


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VIS_CORE_RUNS", str(tmp_path))
    return tmp_path


def _train_from_page(at: AppTest, name: str, epochs: int) -> AppTest:
    at.text_input(key="lab_name").set_value(name)
    setting(at.slider, "lab_epochs").set_value(epochs)
    next(b for b in at.button if b.label == "Train").click().run()
    assert not at.exception, at.exception
    return at


def test_training_lab_trains_and_shows_the_run(runs_dir):
    at = start(LAB)
    assert at.title[0].value == "Training lab" and "No runs yet" in at.info[0].value
    _train_from_page(at, "apptest-run", 2)
    job = at.session_state[LAB_JOB]
    assert job.wait(120) and job.error is None
    at.run()
    assert not at.exception
    assert any("apptest-run finished" in shown(s.value) for s in at.success)
    assert setting(at.selectbox, LAB_RUN).value == "apptest-run"
    assert [m.label for m in at.metric][:3] == ["Test accuracy", "Epochs", "Snapshots"]
    assert at.metric[2].value == "3"
    spec = chart_titles(at)
    assert "untrained" in spec and "test accuracy" in spec and "How far each filter moved" in spec
    animation = next(json.loads(c.proto.spec) for c in charts(at) if json.loads(c.proto.spec).get("frames"))
    assert len(animation["frames"]) == 3
    assert (runs_dir / "apptest-run" / "snapshots" / "0002.pt").is_file()


def test_training_lab_stop_keeps_progress(runs_dir):
    at = _train_from_page(start(LAB), "stopped-run", 20)
    job = at.session_state[LAB_JOB]
    at.button(key="lab_stop").click().run()
    assert job.wait(120)
    at.run()
    assert any("was stopped" in shown(s.value) for s in at.success), [s.value for s in at.success]
    run = vis_core.runs.load_run(runs_dir / "stopped-run")
    assert run.stopped and run.snapshots[-1].epoch < 20


def test_a_run_is_a_model_like_any_other(runs_dir):
    vis_core.training.train("digits", "notebook", epochs=1, seed=0, out=runs_dir / "lab-model")
    at = start(FEATURE_MAPS, **{MODEL_CHOICE: "run:lab-model", CHANNEL: 0})
    assert at.session_state[MODEL_NAME] == "run:lab-model"
    assert at.sidebar.radio(key=IMAGE_SOURCE).value == "Test image"
    assert at.session_state[IMAGE].label.startswith("test image 0")
    assert "conv2 · filter 0" in chart_titles(at)
    overview = start(OVERVIEW, **{MODEL_CHOICE: "run:lab-model"})
    assert overview.metric[1].value == "28×28" and "Top-5" in chart_titles(overview)
    filters_page = start(FILTERS, **{MODEL_CHOICE: "run:lab-model", LAYER: "conv1"})
    assert "greyscale image" in filters_page.info[0].value


PROJECTION = "views/projection.py"
ACTIVATION_MAPS = "views/activation_maps.py"


def test_projection_page():
    at = start(PROJECTION, **{CHANNEL: 5})
    assert at.title[0].value == "Back to pixels"
    spec = chart_titles(at)
    for title in ("The image", "What it sees", "Deconvnet", "Guided backprop", "Gradient"):
        assert title in spec
    assert "fires most at position" in " ".join(c.value for c in at.caption)
    assert len(at.main.image) == 16  # 8 strongest filters: image patch and projection each
    assert "projected back with guided backprop, both cropped to where 98%" in " ".join(c.value for c in at.caption)
    at = start(PROJECTION, pr_scope="whole map", pr_top_k=4, **{LAYER: "features.4", CHANNEL: 0})
    assert "What it sees" not in chart_titles(at) and "whole map of filter 0 of features.4" in " ".join(
        c.value for c in at.caption
    )
    at = start(PROJECTION, **{LAYER: "classifier.1"})
    assert "no spatial map" in at.info[0].value


def test_activation_maps_page():
    at = start(ACTIVATION_MAPS)
    assert at.title[0].value == "Where it looked"
    assert any("activation / attribution maps" in m.value for m in at.main.markdown)
    assert setting(at.sidebar.selectbox, "am_method").value == "gradcam"
    assert setting(at.sidebar.selectbox, "am_layer").value == "features.18"
    spec = chart_titles(at)
    assert "Grad-CAM for 'Egyptian cat' at features.18" in spec
    for label in ("Layer-CAM", "Saliency (gradient)", "Guided backprop"):
        assert label in spec
    setting(at.button, "am_faith_on").click().run()
    assert not at.exception and "Deletion (to grey): lower is better" in chart_titles(at)
    at = start(ACTIVATION_MAPS, am_method="integrated_gradients", am_target=281, am_compare=["cam", "occlusion"])
    assert "Integrated gradients for 'tabby'" in chart_titles(at)
    assert not at.warning  # CAM works at the pooled layer of MobileNetV2
    at = start(ACTIVATION_MAPS, am_method="cam", **{MODEL_CHOICE: "run:missing"})
    assert not at.exception


def test_activation_maps_sanity_check():
    at = start(ACTIVATION_MAPS, am_compare=["gradcam"])
    setting(at.button, "am_sanity_on").click().run()
    assert not at.exception
    assert "solid: rank correlation" in chart_titles(at) and "Guided backprop" in chart_titles(at)


def test_deep_dream_page_dreams_and_offers_the_png():
    at = start("views/deep_dream.py", dd_octaves=2, dd_steps=2, **{LAYER: "features.4"})
    assert at.title[0].value == "Deep dream" and "press Dream" in " ".join(c.value for c in at.caption)
    at.button(key="dd_go").click().run()
    assert not at.exception and len(at.main.image) == 1
    assert "2 octaves × 2 steps" in at.main.image[0].proto.imgs[0].caption
    assert at.get("download_button")[0].proto.label.startswith("Download the dream")
    setting(at.slider, "dd_blend").set_value(0.5).run()
    assert not at.exception


def test_feature_visualisation_page_modes():
    at = start("views/feature_vis.py", fv_steps=16, fv_size=64, **{CHANNEL: 5})
    at.button(key="fv_go").click().run()
    assert not at.exception and at.main.image[0].proto.imgs[0].caption == "features.10 filter 5"
    assert "Stop" not in [button.label for button in at.button]  # nothing left to stop once it is done
    assert "The filter's average response rose from" in " ".join(c.value for c in at.caption)
    at = start("views/feature_vis.py", fv_steps=16, fv_size=64, fv_mode="gallery of filters", fv_range=(2, 5))
    at.button(key="fv_go").click().run()
    assert [image.proto.imgs[0].caption for image in at.main.image] == [f"features.10 filter {i}" for i in range(2, 6)]


def test_reconstruction_page_strip():
    at = start("views/reconstruction.py", rc_steps=20, rc_layers=["features.2", "features.14"])
    at.button(key="rc_strip").click().run()
    assert not at.exception
    captions = [image.proto.imgs[0].caption for image in at.main.image]
    assert captions[0].startswith("the photo") and captions[1].startswith("from features.2")
    assert captions[2].startswith("from features.14")


def test_trusted_model_from_make_run(monkeypatch):
    """`make run MODEL=package.module:function` puts the person's own code first in the sidebar."""
    monkeypatch.setenv("VIS_CORE_MODEL", "tests.factories:tiny_digits")
    at = start(OVERVIEW)
    assert at.session_state[MODEL_NAME] == "tests.factories:tiny_digits"
    assert at.sidebar.selectbox(key=MODEL_CHOICE).options[0] == "tests.factories:tiny_digits  (your code)"
    assert "each of the 3 things it knows" in at.markdown[0].value
    assert at.metric[1].value == "32×32"


def test_warm_up_fills_the_caches_the_pages_read(monkeypatch):
    from dashboard.__main__ import warm_up

    warm_up()  # what `python -m dashboard` runs while the server starts

    def cache_miss(*args, **kwargs):
        raise AssertionError("the warm-up should have filled this cache")

    monkeypatch.setattr(vis_core, "load_model", cache_miss)
    monkeypatch.setattr(vis_core, "feature_maps", cache_miss)
    at = start(FEATURE_MAPS)  # the first viewer's page run finds the model and the maps ready
    assert "features.10 · filter 14" in chart_titles(at)


def test_an_engine_error_on_any_page_is_a_message(monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise vis_core.ResourceError("The CUDA ran out of memory for this request. Try a smaller image size.")

    monkeypatch.setattr(vis_core, "feature_maps", out_of_memory)
    at = start(FEATURE_MAPS)  # start() asserts no exception reached Streamlit
    assert "ran out of memory for this request" in shown(at.error[0].value)
    assert at.sidebar.selectbox(key=MODEL_CHOICE).value == "mobilenet_v2"  # the sidebar is still there


def test_a_run_stopped_before_its_first_step_shows_in_the_lab(runs_dir):
    """Only the untrained snapshot was kept (Stop pressed while the data loaded): the lab explains it."""
    run = vis_core.training.train("digits", "tinyvgg", epochs=3, out=runs_dir / "early-stop", should_stop=lambda: True)
    assert run.stopped and len(run.snapshots) == 1
    assert vis_core.evolution.weight_change(vis_core.evolution.filter_history(run)[1]).shape == (0, 16)
    at = start(LAB)
    assert "stopped before its first training step" in " ".join(info.value for info in at.info)
    assert len(charts(at)) >= 2  # the curves and the filters still draw
