"""The Atlas page (#13) and the atlas entry beside a map, in AppTest, on small atlases the engine built.

The atlases are real (``vis_core.build_atlas`` on MobileNetV2 with a few steps at a small size),
written into temporary folders the dashboard finds through ``VIS_CORE_ATLASES``. One is built
once for the module (``features.10``, the sidebar's default layer, 64 filters: two pages); the
build tests start from an empty folder and press the page's own button.
"""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

import vis_core
from dashboard.state import ATLAS_JOB, ATLAS_LAYER, ATLAS_UNIT, CHANNEL, LAYER
from tests.support import shown
from tests.support.apptest import setting, start

ATLAS = "views/atlas.py"
FEATURE_MAPS = "views/feature_maps.py"
PROJECTION = "views/projection.py"
LAYER_BUILT = "features.10"  # the sidebar's default layer: 64 filters of 14×14
#: A tiny configuration: seconds to build, and still every part of an entry.
TINY = dict(steps=4, size=32, top_k=3)

pytestmark = pytest.mark.usefixtures("clear_caches")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A folder of atlases holding MobileNetV2's, with every filter of ``features.10``."""
    root = tmp_path_factory.mktemp("atlases")
    handle = vis_core.load_model()
    vis_core.build_atlas(
        handle, layers=[LAYER_BUILT], images="sample", out=vis_core.atlas_path(handle, root=root), **TINY
    )
    return root


@pytest.fixture
def with_atlas(built, monkeypatch):
    monkeypatch.setenv("VIS_CORE_ATLASES", str(built))
    return built


@pytest.fixture
def without_atlas(tmp_path, monkeypatch):
    monkeypatch.setenv("VIS_CORE_ATLASES", str(tmp_path))
    return tmp_path


def tiles(at: AppTest) -> list[int]:
    """The filters of the grid, in the order shown (each tile's button is its number)."""
    return [int(button.label.split(" · ")[0]) for button in at.button if str(button.key).startswith("at_tile_")]


def captions(at: AppTest) -> str:
    return " ".join(shown(c.value) for c in at.caption)


def images(at: AppTest) -> int:
    """Pictures in the main area (an ``st.image`` of a list counts each picture)."""
    return sum(len(element.proto.imgs) for element in at.main.image)


def image_captions(at: AppTest) -> str:
    return " ".join(shown(picture.caption) for element in at.main.image for picture in element.proto.imgs)


def test_the_grid_and_one_filter_large(with_atlas):
    at = start(ATLAS, **{CHANNEL: 0})
    assert at.title[0].value == "Atlas" and "What does each filter of this layer look for?" in at.markdown[0].value
    assert setting(at.selectbox, ATLAS_LAYER).value == LAYER_BUILT  # the sidebar's layer
    assert "features.10 · 64 filters · in the atlas" in setting(at.selectbox, ATLAS_LAYER).options
    assert tiles(at) == list(range(32))  # page 1 of 2
    assert not any(b.key == "at_build" for b in at.button)  # nothing to build
    assert at.subheader[1].value == "Filter 0 of features.10"
    assert "What it looks for" in image_captions(at)
    assert images(at) == 32 + 1 + TINY["top_k"]  # the tiles, the render large, its examples
    labels = [m.label for m in at.metric]
    assert "Fires on" in labels and "Rank on this photo (by mean)" in labels
    fires = next(m.value for m in at.metric if m.label == "Fires on")
    assert fires.endswith(f"of {len(vis_core.sample_names())} photos")
    spec = json.dumps([json.loads(c.proto.spec) for c in at.get("plotly_chart")])
    assert "Where filter 0 fires on chelsea" in spec
    unit = vis_core.open_atlas(vis_core.atlas_path(vis_core.load_model())).unit(LAYER_BUILT, 0)
    best = unit.examples[0]
    assert f"{best.activation:.2f}" in image_captions(at)  # each example names its photo and activation

    setting(at.number_input, "at_page").set_value(2).run()
    assert tiles(at) == list(range(32, 64))
    at.button(key="at_tile_40").click().run()  # a tile's button chooses it
    assert not at.exception
    assert setting(at.number_input, ATLAS_UNIT).value == 40
    assert at.subheader[1].value == "Filter 40 of features.10"
    assert setting(at.number_input, "at_page").value == 2 and 40 in tiles(at)
    setting(at.number_input, ATLAS_UNIT).set_value(5).run()  # the grid's page follows the filter
    assert setting(at.number_input, "at_page").value == 1 and 5 in tiles(at)


def test_ordered_by_how_strongly_each_fires_on_the_photo(with_atlas):
    handle = vis_core.load_model()
    summary = vis_core.feature_maps(handle, vis_core.sample_image("chelsea")).channel_summary(LAYER_BUILT)
    at = start(ATLAS, at_order="mean activation on this photo")
    assert tiles(at) == summary.strongest(32, by="mean")
    assert "strongest mean activation on chelsea" in captions(at)
    at = start(ATLAS, at_order="peak activation on this photo", **{ATLAS_UNIT: 7})
    order = summary.strongest(64, by="max")
    first = order.index(7) // 32 * 32  # the page opens where the chosen filter is
    assert tiles(at) == order[first : first + 32]
    assert at.subheader[1].value == "Filter 7 of features.10"


def test_the_page_follows_the_sidebar_and_its_filter(with_atlas):
    at = start(ATLAS, **{LAYER: LAYER_BUILT, CHANNEL: 5})
    assert setting(at.number_input, ATLAS_UNIT).value == 5
    at = start(ATLAS, **{LAYER: "features.2"})  # not in the atlas: offered to build
    assert setting(at.selectbox, ATLAS_LAYER).value == "features.2"
    assert any(b.label == "Build the atlas of features.2" for b in at.button)
    assert "this model's atlas settings: 4 steps at 32 px" in captions(at)  # one atlas, one set of settings
    assert not tiles(at)


def test_a_model_without_an_atlas_builds_one_from_the_page(without_atlas):
    at = start(ATLAS, at_steps=TINY["steps"], at_size=TINY["size"], at_top_k=2, **{ATLAS_LAYER: "features.1"})
    assert "features.1 has no atlas yet" in " ".join(m.value for m in at.markdown)
    assert "on this machine (" in captions(at) and "), in the background" in captions(at)
    next(b for b in at.button if b.label == "Build the atlas of features.1").click().run()
    assert not at.exception
    job = at.session_state[ATLAS_JOB]
    said = [shown(s.value) for s in at.success]  # on a fast machine the build may end within that run
    assert job.wait(120) and job.error is None, job.error
    at.run()
    said += [shown(s.value) for s in at.success]
    assert any("The atlas of features.1 is built: 16 filters" in text for text in said), said
    assert tiles(at) == list(range(16))
    assert images(at) == 16 + 1 + 2
    # the layer menu tells the news, and its value stays an id (#23: it said "no atlas yet" and the
    # link carried "features.1-16-filters-no-atlas-yet")
    menu = next(box for box in at.selectbox if str(box.key).startswith(ATLAS_LAYER))
    assert menu.value == "features.1" and at.session_state[ATLAS_LAYER] == "features.1"
    assert "features.1 · 16 filters · in the atlas" in menu.options
    assert at.query_params["atlas_layer"] == "features.1"
    at.run()  # and again, once the label it was drawn with has changed
    assert at.session_state[ATLAS_LAYER] == "features.1" and at.query_params["atlas_layer"] == "features.1"
    assert "features.1 has no atlas yet" not in " ".join(m.value for m in at.markdown)
    atlas = vis_core.open_atlas(vis_core.atlas_path(vis_core.load_model()))
    assert atlas.channels("features.1") == list(range(16)) and atlas.settings["top_k"] == 2


def test_a_build_can_be_stopped_and_continued(without_atlas):
    at = start(ATLAS, at_steps=64, at_size=64, **{ATLAS_LAYER: "features.14"})  # 160 filters: time to stop
    at.button(key="at_build").click().run()
    job = at.session_state[ATLAS_JOB]
    at.button(key="at_stop").click().run()
    said = [shown(w.value) for w in at.warning]  # the build may have stopped within this run already
    assert job.wait(120)
    at.run()
    said += [shown(w.value) for w in at.warning]
    assert any("The build of features.14 was stopped" in text for text in said), said + [e.value for e in at.error]
    assert any(b.key == "at_build" for b in at.button)  # and it can be continued


def test_feature_maps_and_projection_show_the_entry_when_there_is_one(with_atlas):
    at = start(FEATURE_MAPS, **{CHANNEL: 3})
    assert "What filter 3 looks for (from the atlas)" in captions(at)
    assert images(at) == 1 + 3
    at = start(PROJECTION, pr_top_k=4, **{CHANNEL: 3})
    assert "What filter 3 looks for (from the atlas)" in captions(at)
    at = start(FEATURE_MAPS, **{LAYER: "features.2"})  # a layer the atlas does not hold
    assert "from the atlas" not in captions(at) and not at.exception


def test_and_nothing_when_there_is_none(without_atlas):
    at = start(FEATURE_MAPS, **{CHANNEL: 3})
    assert "from the atlas" not in captions(at) and images(at) == 0
    assert not at.error and not at.warning
    assert not any(without_atlas.iterdir())  # looking for an atlas writes nothing


def test_a_build_over_what_one_click_may_start_is_refused_saying_what_to_reduce(without_atlas):
    """#24: features.18's 1,280 filters at 2,048 steps and 448 px were 10,485,760 passes and Build
    started them; now the page says what it asks for and what to reduce, and Build is off."""
    from vis_core import costs

    at = start(ATLAS, at_steps=2048, at_size=448, **{ATLAS_LAYER: "features.18"})
    assert not at.exception
    warning = " ".join(shown(w.value) for w in at.warning)
    assert "10,485,760 passes" in warning and f"{costs.MAX_JOB_WORK:,}" in warning
    assert "Reduce the steps or the picture size" in warning
    assert "python -m vis_core atlas --layer features.18" in warning
    assert at.button(key="at_build").disabled
    at = start(ATLAS, **{ATLAS_LAYER: "features.10"})  # the page's defaults fit: the estimate, before Build
    assert not at.button(key="at_build").disabled and not at.warning
    assert any("About" in shown(c.value) and "passes of the network" in shown(c.value) for c in at.caption)


def test_the_disk_estimate_bounds_what_a_build_writes_and_the_budget_refuses_past_it(without_atlas, tmp_path):
    """#24: every folder a viewer can make the server write has a per-item and a total budget,
    checked against an estimate shown first. The estimate bounds a real build from above."""
    from vis_core.atlas import budget
    from vis_core.disk_budget import folder_bytes

    handle = vis_core.load_model()
    out = tmp_path / "atlas"
    settings = dict(size=32, renders=1, top_k=3, images=len(vis_core.sample_names()))
    ahead = budget.estimate(handle, "features.1", 16, out=out, **settings)
    vis_core.build_atlas(handle, layers=["features.1"], images="sample", out=out, steps=2, size=32, top_k=3)
    written = folder_bytes(out)
    assert written <= ahead.bytes <= 4 * written, (written, ahead.bytes)

    at = start(ATLAS, at_steps=4, at_size=32, **{ATLAS_LAYER: "features.1"})
    caption = " ".join(shown(c.value) for c in at.caption)
    assert "it writes under 1 MB" in caption and not at.button(key="at_build").disabled
    budget.MAX_ATLASES_BYTES, before = 1000, budget.MAX_ATLASES_BYTES
    try:
        at = start(ATLAS, at_steps=4, at_size=32, **{ATLAS_LAYER: "features.1"})
    finally:
        budget.MAX_ATLASES_BYTES = before
    warning = " ".join(shown(w.value) for w in at.warning)
    assert "past the limit for all atlases" in warning and at.button(key="at_build").disabled
