"""A damaged atlas entry on the pages (#24): the filter's entry is a warning naming it, the page
draws, and the other filters' entries still show. MobileNetV2's atlas of ``features.10`` (the
sidebar's default layer), built small, with filter 0's render replaced by a GIF."""

from __future__ import annotations

import sqlite3

import pytest
from streamlit.testing.v1 import AppTest

import vis_core
from dashboard.state import CHANNEL
from tests.support import shown
from tests.support.apptest import APP, TIMEOUT, start

LAYER = "features.10"
FEATURE_MAPS = "views/feature_maps.py"
TINY = dict(steps=4, size=32, top_k=3)

pytestmark = pytest.mark.usefixtures("clear_caches")


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    """A folder of atlases holding MobileNetV2's, whose filter 0 of features.10 has a GIF for its render."""
    import io

    from PIL import Image

    root = tmp_path_factory.mktemp("atlases")
    handle = vis_core.load_model()
    folder = vis_core.atlas_path(handle, root=root)
    vis_core.build_atlas(handle, layers=[LAYER], images="sample", out=folder, **TINY)
    gif = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(gif, format="GIF")
    with sqlite3.connect(folder / "atlas.sqlite") as db:
        db.execute(
            "UPDATE pictures SET png = ? WHERE layer = ? AND channel = 0 AND kind = 'render'", (gif.getvalue(), LAYER)
        )
    db.close()
    return root


@pytest.fixture
def with_damaged(damaged, monkeypatch):
    monkeypatch.setenv("VIS_CORE_ATLASES", str(damaged))
    return damaged


def captions(at: AppTest) -> str:
    return " ".join(shown(c.value) for c in at.caption)


def test_feature_maps_on_a_damaged_filter_warn_and_draw(with_damaged):
    at = start(FEATURE_MAPS, **{CHANNEL: 0})
    warnings = " ".join(shown(w.value) for w in at.warning)
    assert "layer features.10 channel 0 is damaged" in warnings and "not a PNG" in warnings
    assert "from the atlas" not in captions(at)
    at = start(FEATURE_MAPS, **{CHANNEL: 3})  # the other filters' entries still show
    assert "What filter 3 looks for (from the atlas)" in captions(at) and not at.warning


def test_the_entry_helper_names_the_damaged_unit_and_reads_the_others(with_damaged):
    from dashboard.data import atlases

    atlas = vis_core.open_atlas(vis_core.atlas_path(vis_core.load_model()))
    unit, problem = atlases.entry(atlas, LAYER, 0)
    assert unit is None and "layer features.10 channel 0" in problem
    unit, problem = atlases.entry(atlas, LAYER, 1)
    assert problem is None and unit.render.shape == (32, 32, 3)
    assert atlases.entry(atlas, LAYER, 64) == (None, None) and atlases.entry(None, LAYER, 0) == (None, None)


def test_the_atlas_page_on_a_damaged_filter_warns_and_draws(with_damaged):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[CHANNEL] = 0
    at.switch_page("views/atlas.py")
    at.run()
    assert not at.exception
    assert any("channel 0 is damaged" in shown(w.value) for w in at.warning)
    assert "damaged" in captions(at)  # its tile says so; the others show their pictures
    assert "not built yet" not in captions(at)


@pytest.mark.parametrize("page", ["views/unit.py", "views/tour.py"])
def test_one_filter_and_the_tour_on_a_damaged_filter_draw(with_damaged, page):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[CHANNEL] = 0
    at.switch_page(page)
    at.run()
    assert not at.exception
    if page == "views/unit.py":
        assert any("channel 0 is damaged" in shown(w.value) for w in at.warning)
        assert "its feature visualisation, from the atlas" not in captions(at)


def test_the_atlas_pages_notices_leave_out_the_servers_folders(tmp_path, monkeypatch):
    """#24 (8): a damaged atlas folder is named to the viewer without the server's paths."""
    from dashboard.data.atlases import public

    assert public("Cannot open the atlas database in '/srv/my app/atlases/m' (boom).") == (
        "Cannot open the atlas database in 'm' (boom)."
    )
    assert public("The atlas at /srv/app/atlases/m/atlas.sqlite is locked") == "The atlas at atlas.sqlite is locked"
    assert public("disk I/O error on features.10 1/2") == "disk I/O error on features.10 1/2"  # not paths
    monkeypatch.setenv("VIS_CORE_ATLASES", str(tmp_path))
    folder = vis_core.atlas_path(vis_core.load_model())
    folder.mkdir(parents=True)
    (folder / "atlas.sqlite").write_bytes(b"this is not a database" * 100)
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.switch_page("views/atlas.py")
    at.run()
    assert not at.exception
    notices = " ".join(shown(w.value) for w in at.warning)
    assert "atlas" in notices and str(tmp_path) not in notices and "/" not in notices.replace("I/O", "")
