"""Damaged or crafted atlases (#24, THREATS.md "Stored records read back"): every damaged entry is
an ``AtlasError`` naming its unit, checked before anything is decoded, and every other unit keeps
reading; files outside the atlas folder are never opened; a locked database is reported at once;
a failed build leaves nothing that blocks the next one.

One small real atlas (``tests.factories:tiny_atlas``, layer ``0``: 6 units, 32 px renders) is
built once; each test damages a copy of it."""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

import vis_core
from vis_core.atlas import AtlasError
from vis_core.atlas.store import DATABASE
from vis_core.cli import main

MODEL = "tests.factories:tiny_atlas"
FAST = {"steps": 4, "size": 32, "top_k": 3}
EXAMPLE = {"source": "x", "activation": 1.0, "box": [0, 0, 1, 1], "position": [0, 0]}
DAMAGED = ("0", 2)  # the unit each test damages
GOOD = ("0", 3)  # a unit that must still read


@pytest.fixture(scope="module")
def tiny():
    return vis_core.load_factory(MODEL, device="cpu")


@pytest.fixture(scope="module")
def built(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("built") / "atlas"
    vis_core.build_atlas(tiny, layers=["0"], images="sample", out=out, **FAST)
    return out


@pytest.fixture
def atlas_copy(built, tmp_path) -> Path:
    """A private copy of the built atlas's folder (its database checkpointed: one file)."""
    folder = tmp_path / "copy"
    folder.mkdir()
    shutil.copyfile(built / DATABASE, folder / DATABASE)
    return folder


def write(folder: Path, sql: str, parameters: tuple = ()) -> None:
    with sqlite3.connect(folder / DATABASE) as db:
        db.execute(sql, parameters)
    db.close()


def set_picture(folder: Path, kind: str, data: bytes, unit: tuple[str, int] = DAMAGED) -> None:
    write(folder, "UPDATE pictures SET png = ? WHERE layer = ? AND channel = ? AND kind = ?", (data, *unit, kind))


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def huge_png(side: int = 12000) -> bytes:
    """A valid RGB PNG of ``side`` x ``side`` black pixels, about 140 KB of bytes (never decoded whole here)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    rows = b"\x00" * (1 + 3 * side)
    data = b"".join(packer.compress(rows * 500) for _ in range(side // 500)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def gif() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, format="GIF")
    return buffer.getvalue()


def assert_other_units_read(folder: Path) -> None:
    with vis_core.open_atlas(folder) as atlas:
        assert atlas.layers == ["0"] and atlas.channels("0") == list(range(6))
        unit = atlas.unit(*GOOD)
        assert unit.render.shape == (32, 32, 3) and len(unit.examples) == 3
        assert all(example.patch.ndim == 3 for example in unit.examples) and unit.stats["images"] == 5


def refused(folder: Path, reading=lambda unit: unit.render) -> str:
    """The message of reading the damaged unit (from ``unit()`` or the first decode)."""
    with vis_core.open_atlas(folder) as atlas, pytest.raises(AtlasError) as error:
        reading(atlas.unit(*DAMAGED))
    message = str(error.value)
    assert "layer 0" in message and "channel 2" in message, message
    assert (error.value.layer, error.value.channel) == DAMAGED
    return message


# ---------------------------------------------------------------------------- pictures
@pytest.mark.parametrize(
    ("blob", "reason"),
    [
        (b"this is not a picture", "not a PNG"),
        (gif(), "not a PNG"),
        (png(np.zeros((20000, 1), dtype=np.uint16)), "1x20000"),
        (png(np.zeros((32, 32, 3), dtype=np.uint8))[:60], "damaged"),
        (png(np.zeros((32, 32), dtype=np.uint8)), "mode L"),
    ],
    ids=["bytes", "gif", "16-bit-1x20000", "truncated", "grey"],
)
def test_a_damaged_render_names_its_unit_and_the_rest_reads(atlas_copy, blob, reason):
    set_picture(atlas_copy, "render", blob)
    assert reason in refused(atlas_copy)
    assert_other_units_read(atlas_copy)


def test_a_damaged_patch_names_its_unit(atlas_copy):
    set_picture(atlas_copy, "patch", gif())
    assert "not a PNG" in refused(atlas_copy, lambda unit: [example.patch for example in unit.examples])
    assert_other_units_read(atlas_copy)


def test_a_render_that_declares_12000_pixels_a_side_is_refused_before_decoding(atlas_copy, monkeypatch):
    blob = huge_png()
    assert len(blob) < 600_000
    set_picture(atlas_copy, "render", blob)
    decoded = []
    original = ImageFile.ImageFile.load
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: decoded.append(self.size) or original(self))
    message = refused(atlas_copy)
    assert "12000x12000" in message and "32x32" in message
    assert (12000, 12000) not in decoded  # refused from the header, never decoded
    assert_other_units_read(atlas_copy)


# ------------------------------------------------------------------------------ JSON rows
@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("stats", "{not json", "statistics are not JSON"),
        ("stats", "[1, 2]", "statistics"),
        ("stats", json.dumps({"mean": 0.1}), "statistics"),
        ("stats", json.dumps({"mean": "x", "max": 1, "zero_share": 0, "fires_on": 1, "images": 5}), "mean"),
        ("examples", "{not json", "examples are not JSON"),
        ("examples", json.dumps({"source": "x"}), "examples"),
        ("examples", json.dumps([{"activation": 1.0, "box": [0, 0, 1, 1], "position": [0, 0]}] * 3), "source"),
        ("examples", json.dumps([{"source": "x", "activation": 1, "box": [0, 0], "position": [0, 0]}] * 3), "box"),
        ("examples", json.dumps([]), "3 patches"),
        ("examples", json.dumps([{**EXAMPLE, "source": "\ud800"}] * 3), "text"),
    ],
)
def test_a_damaged_row_names_its_unit_and_the_rest_reads(atlas_copy, column, value, reason):
    write(atlas_copy, f"UPDATE units SET {column} = ? WHERE layer = ? AND channel = ?", (value, *DAMAGED))
    assert reason in refused(atlas_copy, lambda unit: unit)
    assert_other_units_read(atlas_copy)


def test_a_unit_without_its_render_is_damaged(atlas_copy):
    write(atlas_copy, "DELETE FROM pictures WHERE layer = ? AND channel = ? AND kind = 'render'", DAMAGED)
    assert "no render" in refused(atlas_copy, lambda unit: unit)
    assert_other_units_read(atlas_copy)


def test_odd_requests_are_simply_not_there(atlas_copy):
    with vis_core.open_atlas(atlas_copy) as atlas:
        assert atlas.unit("0", 10**30) is None and atlas.unit("0", -1) is None and atlas.unit("nope", 0) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("model", "{}"),
        ("model", "not json"),
        ("settings", "{}"),
        ("settings", json.dumps({"steps": 4, "size": True, "top_k": 3, "renders": 1, "seed": 0})),
        ("collection", "[]"),
        ("format", "true"),
    ],
)
def test_a_damaged_meta_row_is_an_atlas_error(atlas_copy, key, value):
    write(atlas_copy, "UPDATE meta SET value = ? WHERE key = ?", (value, key))
    with pytest.raises(AtlasError, match=rf"damaged.*{key}"):
        vis_core.open_atlas(atlas_copy)


def test_a_damaged_meta_row_is_an_atlas_error_for_a_build_too(tiny, atlas_copy):
    write(atlas_copy, "UPDATE meta SET value = '{}' WHERE key = 'model'")
    with pytest.raises(AtlasError, match="damaged"):
        vis_core.build_atlas(tiny, layers=["0"], images="sample", out=atlas_copy, **FAST)


# ------------------------------------------------------------------------------- symlinks
def test_a_database_linked_from_outside_the_folder_is_refused(built, tmp_path):
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / DATABASE).symlink_to(built / DATABASE)  # a valid atlas, elsewhere
    with pytest.raises(AtlasError, match="symbolic link"):
        vis_core.open_atlas(linked)
    with pytest.raises(AtlasError, match="symbolic link"):
        vis_core.open_atlas(linked / DATABASE)


def test_a_database_linked_to_a_system_file_is_not_opened(tmp_path, monkeypatch):
    linked = tmp_path / "passwd"
    linked.mkdir()
    (linked / DATABASE).symlink_to("/etc/passwd")
    opened = []
    monkeypatch.setattr(sqlite3, "connect", lambda *a, **k: opened.append(a))
    with pytest.raises(AtlasError, match="symbolic link"):
        vis_core.open_atlas(linked)
    assert not opened


def test_a_build_does_not_write_through_a_linked_database(tiny, built, tmp_path):
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / DATABASE).symlink_to(built / DATABASE)
    with pytest.raises(AtlasError, match="symbolic link"):
        vis_core.build_atlas(tiny, layers=["0"], images="sample", out=linked, **FAST)


def test_the_dashboard_does_not_follow_a_model_folder_linked_out_of_the_atlases_folder(
    tiny, built, tmp_path, monkeypatch
):
    from dashboard.data import atlases

    root = tmp_path / "atlases"
    root.mkdir()
    monkeypatch.setenv("VIS_CORE_ATLASES", str(root))
    vis_core.atlas_path(tiny).symlink_to(built, target_is_directory=True)
    atlas, why = atlases.lookup(tiny)
    assert atlas is None and "outside" in why


# ---------------------------------------------------------------------------------- locks
def test_a_locked_database_is_reported_within_two_seconds(atlas_copy):
    with vis_core.open_atlas(atlas_copy):
        pass  # (readable before the lock)
    holder = sqlite3.connect(atlas_copy / DATABASE, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        with pytest.raises(AtlasError, match="locked"):
            vis_core.open_atlas(atlas_copy)
        assert time.monotonic() - started < 3
    finally:
        holder.close()
    assert_other_units_read(atlas_copy)


# ----------------------------------------------------------------------- failed builds
@pytest.fixture
def unusable(tmp_path) -> Path:
    folder = tmp_path / "unusable"
    folder.mkdir()
    for index in range(3):
        (folder / f"{index}.png").write_text("not a picture")
    return folder


def test_a_failed_build_leaves_no_folder_and_does_not_block_the_next(tiny, tmp_path, unusable):
    out = tmp_path / "new-atlas"
    with pytest.raises(AtlasError, match="None of the 3 files"):
        vis_core.build_atlas(tiny, layers=["0"], images=unusable, out=out, **FAST)
    assert not out.exists()  # as it was
    summary = vis_core.build_atlas(tiny, layers=["0"], images="sample", out=out, **{**FAST, "steps": 5})
    assert summary.units == 6


def test_a_failed_build_into_an_existing_folder_leaves_it_as_it_was(tiny, tmp_path, unusable):
    out = tmp_path / "existing"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(AtlasError, match="None of the 3 files"):
        vis_core.build_atlas(tiny, layers=["0"], images=unusable, out=out, **FAST)
    assert sorted(path.name for path in out.iterdir()) == ["notes.txt"]


def test_a_failed_cli_build_does_not_block_the_next(capsys, tmp_path, unusable):
    out = tmp_path / "cli-atlas"
    base = ["atlas", "--model", MODEL, "--device", "cpu", "--layer", "0", "--out", str(out), "--size", "32"]
    assert main([*base, "--images", str(unusable), "--steps", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "None of the 3 files" in err
    assert main([*base, "--steps", "5", "--top-k", "2"]) == 0
    capsys.readouterr()


def test_a_stopped_build_keeps_its_progress(tiny, tmp_path):
    from vis_core.optim import Stopped

    out = tmp_path / "stopped"
    with pytest.raises(Stopped):
        vis_core.build_atlas(tiny, layers=["0"], images="sample", out=out, **FAST, should_stop=lambda: True)
    assert (out / DATABASE).is_file()  # kept for a resume
