"""The One filter page (#15): where a filter fires, its projection, what it looks for and its
strongest photo patches, together; from the atlas when the model has one, else computed."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

import vis_core
from dashboard.state import CHANNEL, LAYER, SELECTION, UNIT_RENDER
from tests.support import shown
from tests.support.apptest import start

UNIT = "views/unit.py"
LAYER_SHOWN, FILTER = "features.10", 14

pytestmark = pytest.mark.usefixtures("clear_caches")


def plotly_array(value) -> np.ndarray:
    """A figure's array as Plotly's JSON writes it: a list, or a typed array (``dtype``, ``bdata``, ``shape``)."""
    if isinstance(value, dict):
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return array.reshape([int(n) for n in str(shape).split(",")]) if shape else array
    return np.asarray(value, dtype=np.float32)


def captions(at) -> list[str]:
    return [shown(picture.caption) for element in at.main.image for picture in element.proto.imgs]


def patch_captions(at) -> list[tuple[str, float]]:
    """The patches' captions, ``photo · activation``, parsed."""
    found = []
    for text in captions(at):
        name, _, value = text.rpartition(" · ")
        if name and value.replace(".", "", 1).replace("-", "", 1).isdigit():
            found.append((name, float(value)))
    return found


def test_the_four_things_about_a_filter_without_an_atlas(handle, cat):
    at = start(UNIT, **{LAYER: LAYER_SHOWN, CHANNEL: FILTER})
    assert at.title[0].value == "One filter" and at.subheader[0].value == f"Filter {FILTER} of {LAYER_SHOWN}"
    # where it fires: the map drawn is the filter's feature map on this photo
    heat = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][-1]
    expected = vis_core.feature_maps(handle, cat).activations[LAYER_SHOWN][FILTER]
    np.testing.assert_allclose(plotly_array(heat["z"]), expected, rtol=1e-5, atol=1e-6)
    # its projection to pixels
    assert {"the photo there", "projected back"} <= set(captions(at))
    assert any("strongest position" in c.value for c in at.caption)
    # what it looks for: no atlas, so a quick painting with its time, on request
    assert at.button(key="un_paint_go").label == "Paint it"
    assert any(c.value.startswith("About ") and "on this machine" in c.value for c in at.caption)
    # its strongest patches of the sample photos: best first, each the filter's peak on that photo
    patches = patch_captions(at)
    assert len(patches) == len(vis_core.sample_names())
    values = [value for _, value in patches]
    assert values == sorted(values, reverse=True)
    for name, value in patches:
        photo = next(sample for sample in vis_core.sample_names() if sample.split(" ")[0] == name)
        peak = vis_core.feature_maps(handle, vis_core.sample_image(photo)).activations[LAYER_SHOWN][FILTER].max()
        assert value == pytest.approx(float(peak), abs=0.006)  # captions round to two decimals
    assert "from the bundled sample photos" in " ".join(c.value for c in at.caption)


def test_the_patches_are_the_atlas_collection_code_over_the_sample_photos(handle):
    from vis_core.atlas import samples

    patcher, state = samples.sample_pass(handle, LAYER_SHOWN)
    patches = samples.sample_patches(patcher, state, LAYER_SHOWN, FILTER)
    activations = [patch.activation for patch in patches]
    assert activations == sorted(activations, reverse=True) and len({p.source for p in patches}) == len(patches)
    for patch in patches:
        photo = next(sample for sample in vis_core.sample_names() if sample.split(" ")[0] == patch.source)
        response = vis_core.feature_maps(handle, vis_core.sample_image(photo)).activations[LAYER_SHOWN][FILTER]
        assert patch.activation == pytest.approx(float(response.max()), rel=1e-4, abs=1e-4)
        assert response[patch.position] == pytest.approx(patch.activation, rel=1e-4, abs=1e-4)  # where it peaks
        assert patch.patch.dtype == np.uint8 and patch.patch.shape[2] == 3 and min(patch.patch.shape[:2]) > 8


def test_the_quick_painting_is_kept_for_its_filter(monkeypatch):
    from dashboard.work import live

    class Painted:
        def __init__(self) -> None:
            self.images = [np.full((8, 8, 3), 0.5, dtype=np.float32)]

    at = start(UNIT, **{LAYER: LAYER_SHOWN, CHANNEL: FILTER})
    made_with = {"model": at.session_state[SELECTION].handle.key, "layer": LAYER_SHOWN, "channel": FILTER}
    at = start(UNIT, **{LAYER: LAYER_SHOWN, CHANNEL: FILTER, UNIT_RENDER: live.Outcome(Painted(), made_with)})
    assert "its feature visualisation" in captions(at)
    assert not [button for button in at.button if button.key == "un_paint_go"]
    at.sidebar.number_input(key=CHANNEL).set_value(FILTER + 1).run()  # another filter: paint it anew
    assert "its feature visualisation" not in captions(at) and at.button(key="un_paint_go")


def test_with_an_atlas_the_page_shows_its_entry(handle, tmp_path, monkeypatch):
    root = tmp_path / "atlases"
    vis_core.build_atlas(
        handle,
        layers=[LAYER_SHOWN],
        images="sample",
        out=vis_core.atlas_path(handle, root=root),
        steps=4,
        size=32,
        top_k=3,
    )
    monkeypatch.setenv("VIS_CORE_ATLASES", str(root))
    at = start(UNIT, **{LAYER: LAYER_SHOWN, CHANNEL: FILTER})
    assert "its feature visualisation, from the atlas" in captions(at)
    assert not [button for button in at.button if button.key == "un_paint_go"]
    unit = vis_core.open_atlas(vis_core.atlas_path(handle, root=root)).unit(LAYER_SHOWN, FILTER)
    patches = patch_captions(at)
    assert [(name, round(value, 2)) for name, value in patches] == [
        (example.source, round(example.activation, 2)) for example in unit.examples
    ]
    assert "from the atlas's photos" in " ".join(c.value for c in at.caption)


def test_a_layer_without_maps_is_explained():
    at = start(UNIT, **{LAYER: "classifier.1"})
    assert "no spatial map" in at.info[0].value
