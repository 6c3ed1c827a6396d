"""Words for people (#15): plain depth names, the glossary, page headings, defaults that show
something, and a click on a tile choosing that filter (AppTest; the real click is in
tests/e2e/test_unit.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import vis_core
from dashboard.figures import channel_mosaic, rgb_mosaic
from dashboard.sidebar.layer_choice import clearest_channel, clicked_channel
from dashboard.state import CHANNEL, LAYER, PICKED, WANTED
from dashboard.words import terms
from tests.support.apptest import setting, start
from vis_core import ModelHandle
from vis_core.layers import ANSWER_STAGE, STAGES, depths

ROOT = Path(__file__).resolve().parents[1]
FEATURE_MAPS = "views/feature_maps.py"
ORDER = (*STAGES, ANSWER_STAGE)

pytestmark = pytest.mark.usefixtures("clear_caches")


def resnet18() -> ModelHandle:
    """ResNet-18's architecture with random weights (no download): its layer index is what matters."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    labels = tuple(str(i) for i in range(10))
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    return ModelHandle("resnet18-random", model, labels, (224, 224), 224, mean, std, torch.device("cpu"), "random")


# ----------------------------------------------------------------- depth names (engine)
@pytest.mark.parametrize("which", ["mobilenet_v2", "resnet18"])
def test_every_block_gets_a_position_and_a_stage_that_deepen_together(which, handle):
    model = handle if which == "mobilenet_v2" else resnet18()
    named = depths(model.layers)
    blocks = [info for info in model.blocks() if len(info.output_shape) in (1, 3)]
    assert [named[b.name].position for b in blocks] == list(range(1, len(blocks) + 1))
    assert {named[b.name].count for b in blocks} == {len(blocks)}
    stages = [ORDER.index(named[b.name].stage) for b in blocks]
    assert stages == sorted(stages)  # never shallower further in
    relative = [named[b.name].relative for b in blocks]
    assert relative == sorted(relative) and relative[0] == 0.0
    spatial = [b.name for b in blocks if b.is_spatial]
    assert named[spatial[0]].stage == "edges and colours" and named[spatial[-1]].stage == "objects"
    assert {named[name].stage for name in spatial} == set(STAGES)  # each stage is used
    for name, info in model.layers.items():  # a sub-layer reads as its block
        if info.block in named and len(info.output_shape) in (1, 3):
            assert named[name] == named[info.block]


def test_depth_names_read_as_the_issue_asks(handle):
    named = depths(handle.layers)
    assert named["features.10"].text == "block 11 of 21: parts of objects"
    assert named["features.1"].stage == "edges and colours"
    assert named["classifier.1"].stage == ANSWER_STAGE
    resnet = depths(resnet18().layers)
    assert [resnet[name].stage for name in ("conv1", "layer1.0", "layer2.0", "layer3.0", "layer4.0", "fc")] == [
        "edges and colours",
        "textures",
        "patterns",
        "parts of objects",
        "objects",
        ANSWER_STAGE,
    ]


# ----------------------------------------------------------------------------- glossary
def _terms_used_in_help() -> set[str]:
    """Every term a control's help names through ``terms.help("...")`` in the dashboard's code."""
    used = set()
    for path in (ROOT / "dashboard").rglob("*.py"):
        used |= set(re.findall(r"terms\.help\(\s*\"([^\"]+)\"", path.read_text()))
    return used


def test_the_glossary_explains_every_term_a_control_refers_to():
    used = _terms_used_in_help()
    assert len(used) >= 20  # the pages' technical controls do name their terms
    for name in used:
        entry = terms.term(name)  # raises KeyError for a term the glossary lacks
        assert len(entry.meaning) > 60
    for name in ("filter", "channel", "feature map", "activation", "ReLU", "layer", "block", "receptive field"):
        assert terms.term(name)
    for name in ("gradient", "saliency", "attribution", "Grad-CAM", "deconvnet", "guided backprop", "octave"):
        assert terms.term(name)
    for name in ("feature visualisation", "deep dream", "reconstruction", "SSIM", "rank correlation"):
        assert terms.term(name)
    for name in ("deletion and insertion", "sanity check", "logit", "probability"):
        assert terms.term(name)
    with pytest.raises(KeyError):
        terms.help("flux capacitor")
    text = terms.help("octave", "How many scales.")
    assert text.startswith("How many scales.") and terms.term("octave").meaning in text


def test_the_glossary_page_lists_every_term_and_finds_one():
    at = start("views/glossary.py")
    assert at.title[0].value == "Glossary"
    headings = [s.value for s in at.subheader]
    assert len(headings) == len(terms.TERMS) and headings == sorted(headings, key=str.lower)
    at.text_input(key="gl_find").set_value("octave").run()
    found = [s.value for s in at.subheader]
    assert "Octave" in found and len(found) < len(terms.TERMS)
    at.text_input(key="gl_find").set_value("zzzz").run()
    assert "No entry mentions that word" in at.info[0].value


# ----------------------------------------------------------------------------- headings
def _navigation() -> dict[str, str]:
    source = (ROOT / "dashboard" / "app.py").read_text()
    return dict(re.findall(r'PAGES_DIR / "(\w+\.py)", title="([^"]+)"', source))


@pytest.mark.parametrize(
    "page",
    ["overview.py", "feature_maps.py", "filters.py", "unit.py", "glossary.py", "feature_vis.py", "reconstruction.py"],
)
def test_each_page_heading_is_its_navigation_title(page):
    at = start(f"views/{page}")
    assert at.title[0].value == _navigation()[page]


# ----------------------------------------------------------------------------- defaults
def test_clearest_channel_is_the_one_whose_peak_stands_out():
    maps = np.zeros((3, 4, 4), dtype=np.float32)
    maps[0] = 5.0  # strong but flat: nothing stands out
    maps[1, 2, 2] = 3.0  # one clear spot
    maps[2] = np.linspace(-1, 1, 16).reshape(4, 4)
    assert clearest_channel(maps) == 1
    maps[1] = np.nan
    assert clearest_channel(maps) == 2
    assert clearest_channel(None) == 0 and clearest_channel(np.ones((1, 3, 3))) == 0
    assert clearest_channel(np.array([0.1, 4.0, 2.0]).reshape(3, 1, 1)) == 1  # a vector: its largest unit


def test_the_first_view_shows_a_filter_with_a_clear_response(handle, cat):
    at = start(FEATURE_MAPS)
    layer, channel = at.session_state[LAYER], at.sidebar.number_input(key=CHANNEL).value
    assert layer == "features.10"
    activation = vis_core.feature_maps(handle, cat).activations[layer]
    chosen = activation[channel]
    flat = activation.reshape(len(activation), -1)
    standing_out = flat.max(axis=1) - np.median(flat, axis=1)
    assert standing_out[channel] == standing_out.max()
    assert chosen.max() > 0 and chosen.std() > 0  # it fires somewhere, and not the same everywhere
    assert standing_out[channel] > 1.5 * np.median(standing_out)  # clearly clearer than a typical filter
    assert standing_out[channel] > standing_out[0]  # filter 0 (the old default) was the "green wash"


def test_signed_maps_are_centred_on_zero_and_said_to_be():
    at = start(FEATURE_MAPS, **{LAYER: "features.10", CHANNEL: 14})  # a linear bottleneck: no ReLU
    big = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][-1]
    stops = json.dumps(big["colorscale"])  # RdBu_r, fading to clear near zero over the photo
    assert "5,48,97" in json.dumps(big["colorscale"][0]) and "103,0,31" in json.dumps(big["colorscale"][-1]), stops
    assert big["zmid"] == 0 and big["zmin"] == -big["zmax"]
    assert "negative values" in at.info[0].value and "**Red**" in at.info[0].value
    at = start(FEATURE_MAPS, **{LAYER: "features.18", CHANNEL: 0})  # after a ReLU6: never negative
    big = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][-1]
    assert "zmid" not in big and not any("negative values" in info.value for info in at.info)


def test_ideal_images_paint_the_photos_top_guess_by_default():
    at = start("views/feature_vis.py", fv_mode="a class")
    assert setting(at.sidebar.selectbox, "fv_class").value == 285  # Egyptian cat, chelsea's top guess
    at = start("views/feature_vis.py", fv_mode="a class", sample_choice="coffee")
    assert setting(at.sidebar.selectbox, "fv_class").value == 967  # espresso


# ----------------------------------------------------------------------------- clicks
def test_every_tile_of_a_grid_carries_its_channel_for_a_click():
    activations = np.random.default_rng(0).normal(size=(12, 5, 5)).astype(np.float32)
    shown = [3, 7, 11, 0]
    figure = channel_mosaic(activations, shown, columns=2, signed=True)
    targets = figure.data[-1]
    assert targets.type == "scatter" and [c[0] for c in targets.customdata] == shown
    heat = figure.data[0]
    for (x, y), channel in zip(zip(targets.x, targets.y), shown):  # each target sits on its own tile
        assert heat.customdata[int(y)][int(x)][0] == channel
    assert heat.zmid == 0 and heat.zmin == -1 and heat.zmax == 1
    kernels = rgb_mosaic(np.random.default_rng(1).random((5, 3, 3, 3)), columns=3)
    assert [c[0] for c in kernels.data[-1].customdata] == [0, 1, 2, 3, 4]
    event = {"selection": {"points": [{"curve_number": 2, "point_index": 1, "customdata": [7]}]}}
    assert clicked_channel(event) == 7
    assert clicked_channel({"selection": {"points": []}}) is None
    assert clicked_channel({"selection": {"points": [{"customdata": [float("nan"), 1, 2, 0.5]}]}}) is None


def test_a_chosen_tile_becomes_the_sidebars_filter_before_its_widgets_are_drawn():
    """What a click leaves for the next run (layer_choice.choose): the sidebar applies it."""
    at = start(FEATURE_MAPS, **{WANTED: ("features.4", 7), PICKED: ("features.4", 7)})
    assert at.session_state[LAYER] == "features.4" and at.sidebar.number_input(key=CHANNEL).value == 7
    layer_box = next(box for box in at.sidebar.selectbox if box.label == "Layer")
    assert layer_box.value == "features.4"
    titles = json.dumps([json.loads(chart.proto.spec) for chart in at.get("plotly_chart")], ensure_ascii=False)
    assert "features.4 · filter 7" in titles
    links = [link.proto.label for link in at.get("page_link")]
    assert links.count("Everything about filter 7") == 2  # beside the map, and under the grid after a click
    at.sidebar.number_input(key=CHANNEL).set_value(9).run()  # a later choice in the sidebar wins
    assert at.sidebar.number_input(key=CHANNEL).value == 9 and at.session_state[LAYER] == "features.4"


def test_projection_and_atlas_buttons_choose_the_filter():
    at = start("views/projection.py", pr_top_k=4, **{LAYER: "features.14", CHANNEL: 0})
    assert at.title[0].value == "Back to pixels"
    tiles = [button for button in at.button if str(button.key).startswith("pr_tile_")]
    assert len(tiles) == 4
    chosen = int(str(tiles[-1].key).removeprefix("pr_tile_"))
    tiles[-1].click().run()
    assert at.sidebar.number_input(key=CHANNEL).value == chosen and at.session_state[LAYER] == "features.14"
