"""The atlas (#13): build, resume after SIGKILL, refuse a mismatch, read while building, the CLI,
and the same atlas from the local and the Ray executor. A tiny seeded model
(``tests.factories:tiny_atlas``, 6 + 40 units) and a tiny collection keep each test to seconds."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import vis_core
from vis_core.atlas import AtlasError, CollectionError
from vis_core.atlas.examples import layer_fields, receptive_fields
from vis_core.atlas.renders import chunk_seed, chunks
from vis_core.cli import main
from vis_core.optim import Stopped
from vis_core.projection import receptive_field

ROOT = Path(__file__).resolve().parents[1]
MODEL = "tests.factories:tiny_atlas"
FAST = {"steps": 8, "size": 32, "top_k": 3}
LAYERS = ["0", "2"]
TOTAL = 46  # 6 + 40 channels
GOOD = 37  # images in the folder collection: three batches of 16
BAD_FILES = ("notes.txt", "broken.png", "page.jpg")
RESUME = {"steps": 40, "size": 32, "top_k": 3}  # a 32-unit chunk takes long enough to be killed inside


@pytest.fixture(scope="module")
def tiny():
    return vis_core.load_factory(MODEL, device="cpu")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """37 small pictures in nested folders, and three files the image loader refuses."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(0)
    for index in range(GOOD):
        target = folder / ("sub" if index % 3 else "") / f"{index:02d}.png"
        target.parent.mkdir(exist_ok=True)
        size = (40 + index % 7 * 4, 36 + index % 5 * 6)
        pixels = (rng.random((size[1], size[0], 3)) * np.linspace(0.2, 1, size[0])[None, :, None] * 255).astype("uint8")
        Image.fromarray(pixels).save(target)
    (folder / "notes.txt").write_text("not an image")
    (folder / "sub" / "broken.png").write_bytes((folder / "00.png").read_bytes()[:60])
    (folder / "page.jpg").write_text("<html><body>hello</body></html>")
    return folder


@pytest.fixture(scope="module")
def reference(tiny, photos, tmp_path_factory) -> dict:
    """An uninterrupted build of both layers over the folder collection, with :data:`RESUME`."""
    out = tmp_path_factory.mktemp("reference")
    vis_core.build_atlas(tiny, layers=LAYERS, images=photos, out=out, **RESUME)
    return snapshot(out)


def snapshot(path: Path) -> dict:
    """Every unit of an atlas as comparable plain data."""
    atlas = vis_core.open_atlas(path)
    units = {}
    for layer in atlas.layers:
        for channel in atlas.channels(layer):
            unit = atlas.unit(layer, channel)
            units[layer, channel] = (
                [render.tobytes() for render in unit.renders],
                [(e.source, e.activation, e.box, e.position, e.patch.tobytes()) for e in unit.examples],
                unit.stats,
            )
    atlas.close()
    return units


def test_build_and_read(tiny, tmp_path):
    calls = []
    summary = vis_core.build_atlas(
        tiny, layers=LAYERS, images="sample", out=tmp_path, **FAST, progress=lambda *a: calls.append(a)
    )
    assert (summary.units, summary.skipped, summary.executor, summary.bad_images) == (TOTAL, 0, "local", 0)
    assert calls[-1][:2] == (TOTAL, TOTAL) and any("Collection pass" in call[2] for call in calls)
    atlas = vis_core.open_atlas(tmp_path)
    assert atlas.layers == LAYERS and atlas.channels("2") == list(range(40)) and atlas.matches(tiny)
    assert atlas.settings == {**FAST, "renders": 1, "seed": 0}
    assert atlas.collection == {"kind": "sample", "source": "sample", "images": 5, "bad_images": 0}
    unit = atlas.unit("2", 7)
    assert unit.render.shape == (32, 32, 3) and unit.render.dtype == np.float32 and unit.render.min() >= 0
    assert unit.render.max() <= 1 and unit.render.std() > 0 and len(unit.renders) == 1
    activations = [example.activation for example in unit.examples]
    assert len(unit.examples) == 3 and activations == sorted(activations, reverse=True)
    assert len({example.source for example in unit.examples}) == 3  # at most one example per image
    assert set(unit.stats) == {"mean", "max", "zero_share", "fires_on", "images"} and unit.stats["images"] == 5
    assert unit.stats["max"] == pytest.approx(activations[0]) and 0 <= unit.stats["zero_share"] <= 1
    best = unit.examples[0]
    assert best.patch.shape == (5, 5, 3) and best.source in [n.split(" ")[0] for n in vis_core.sample_names()]
    left, top, right, bottom = best.box
    width, height = vis_core.sample_image(best.source).size
    assert 0 <= left < right <= width and 0 <= top < bottom <= height
    assert atlas.unit("2", 40) is None and atlas.unit("nope", 0) is None
    again = vis_core.build_atlas(tiny, layers=LAYERS, images="sample", out=tmp_path, **FAST)
    assert (again.units, again.skipped) == (0, TOTAL)


def test_renders_are_chunked_and_seeded_per_chunk():
    assert chunks(40) == [tuple(range(32)), tuple(range(32, 40))]
    assert chunks(10, renders=4) == [(0, 1, 2, 3, 4, 5, 6, 7), (8, 9)]
    # #24: a batch never holds more pixels than 32 pictures at 224 (memory grows with the pixels)
    assert chunks(40, size=128) == chunks(40) and chunks(40, size=16) == chunks(40)
    assert chunks(20, size=448) == [tuple(range(8)), tuple(range(8, 16)), (16, 17, 18, 19)]
    assert chunks(3, renders=8, size=448) == [(0,), (1,), (2,)]  # one unit's 8 renders at 448: 8 pictures
    assert chunk_seed(0, "2", 1) == chunk_seed(0, "2", 1) != chunk_seed(0, "2", 0) != chunk_seed(1, "2", 0)


def test_diverse_renders(tiny, tmp_path):
    vis_core.build_atlas(tiny, layers=["0"], images="sample", out=tmp_path, **FAST, renders=3)
    unit = vis_core.open_atlas(tmp_path).unit("0", 2)
    assert len(unit.renders) == 3 and unit.render is not None
    assert not np.array_equal(unit.renders[0], unit.renders[1])


def test_bad_files_are_counted_and_skipped(tiny, tmp_path, photos):
    summary = vis_core.build_atlas(tiny, layers=["0"], images=photos, out=tmp_path, **FAST)
    assert summary.bad_images == len(BAD_FILES) and summary.units == 6
    atlas = vis_core.open_atlas(tmp_path)
    assert atlas.collection == {"kind": "folder", "source": str(photos), "images": GOOD, "bad_images": 3}
    sources = {example.source for channel in atlas.channels("0") for example in atlas.unit("0", channel).examples}
    assert sources and all(Path(source).suffix == ".png" and Path(source).is_file() for source in sources)
    assert not any(Path(source).name in BAD_FILES for source in sources)


def test_store_refuses_another_model_settings_or_collection(tiny, tmp_path, photos):
    vis_core.build_atlas(tiny, layers=["0"], images="sample", out=tmp_path, **FAST)
    other = vis_core.load_factory(MODEL, device="cpu")
    with torch.no_grad():
        next(other.model.parameters()).add_(1.0)
    other.__dict__.pop("state_hash", None)
    with pytest.raises(AtlasError, match="another model"):
        vis_core.build_atlas(other, layers=["0"], images="sample", out=tmp_path, **FAST)
    assert not vis_core.open_atlas(tmp_path).matches(other)
    with pytest.raises(AtlasError, match=r"other settings: steps 8 \(asked 9\)"):
        vis_core.build_atlas(tiny, layers=["0"], images="sample", out=tmp_path, **{**FAST, "steps": 9})
    with pytest.raises(AtlasError, match="another image collection"):
        vis_core.build_atlas(tiny, layers=["0"], images=photos, out=tmp_path, **FAST)
    added = vis_core.build_atlas(tiny, layers=["2"], images="sample", out=tmp_path, **FAST)  # same settings: fine
    assert (added.units, added.skipped) == (40, 0) and vis_core.open_atlas(tmp_path).layers == ["0", "2"]


def test_bad_parameters(tiny, tmp_path):
    with pytest.raises(vis_core.ParameterError, match="no spatial map"):
        vis_core.build_atlas(tiny, layers=["6"], images="sample", out=tmp_path)
    with pytest.raises(vis_core.ParameterError, match="Unknown layer"):
        vis_core.build_atlas(tiny, layers=["nope"], images="sample", out=tmp_path)
    with pytest.raises(vis_core.ParameterError, match="not a folder"):
        vis_core.build_atlas(tiny, layers=["0"], images=tmp_path / "missing", out=tmp_path)
    with pytest.raises(vis_core.ParameterError, match="executor"):
        vis_core.build_atlas(tiny, layers=["0"], images="sample", out=tmp_path, executor="dask")
    with pytest.raises(AtlasError, match="No atlas"):
        vis_core.open_atlas(tmp_path / "nothing")


def test_imagenette_offline_is_a_clear_error(tiny, tmp_path, monkeypatch):
    import urllib.error

    import torchvision

    def offline(root, download=False, **options):
        if download:
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        raise RuntimeError("Dataset not found. You can use download=True to download it")

    monkeypatch.setenv("VIS_CORE_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(torchvision.datasets, "Imagenette", offline)
    with pytest.raises(CollectionError, match=r"Imagenette could not be downloaded .*Offline, use --images sample"):
        vis_core.build_atlas(tiny, layers=["0"], images="imagenette", out=tmp_path / "atlas", **FAST)


def test_stop_during_the_pass_then_resume_equals_one_build(tiny, tmp_path, photos, reference):
    stopped = tmp_path / "stopped"
    messages: list[str] = []
    with pytest.raises(Stopped):
        vis_core.build_atlas(
            tiny,
            layers=LAYERS,
            images=photos,
            out=stopped,
            **RESUME,
            progress=lambda done, total, message: messages.append(message),
            should_stop=lambda: any("batch 2 of 3" in message for message in messages),
        )
    with sqlite3.connect(stopped / "atlas.sqlite") as db:
        assert db.execute("SELECT layer, next_batch, done FROM passes ORDER BY layer").fetchall() == [
            ("0", 2, 0),
            ("2", 2, 0),
        ]
    resumed = vis_core.build_atlas(tiny, layers=LAYERS, images=photos, out=stopped, **RESUME)
    assert (resumed.units, resumed.skipped, resumed.bad_images) == (TOTAL, 0, 3)
    assert snapshot(stopped) == reference


def _build_command(out: Path, images: Path) -> list[str]:
    command = [sys.executable, "-m", "vis_core", "atlas", "--model", MODEL, "--device", "cpu", "--layer", "0"]
    command += ["--layer", "2", "--images", str(images), "--out", str(out), "--steps", str(RESUME["steps"])]
    return [*command, "--size", str(RESUME["size"]), "--top-k", str(RESUME["top_k"])]


def test_sigkill_mid_build_then_resume_equals_one_build_and_redoes_nothing(tiny, tmp_path, photos, reference):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(_build_command(out, photos), cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    written = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and process.poll() is None:
            if (out / "atlas.sqlite").exists():
                try:
                    with sqlite3.connect(f"file:{out / 'atlas.sqlite'}?mode=ro", uri=True) as db:
                        written = db.execute("SELECT COUNT(*) FROM units").fetchone()[0]
                except sqlite3.OperationalError:  # created, its tables not yet
                    written = 0
                if written:
                    break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert 0 < written < TOTAL, "the build should have been killed part-way"
    with sqlite3.connect(out / "atlas.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        kept = db.execute("SELECT COUNT(*) FROM units").fetchone()[0]
    resumed = vis_core.build_atlas(tiny, layers=LAYERS, images=photos, out=out, **RESUME)
    assert resumed.skipped == kept and resumed.units == TOTAL - kept  # nothing finished was redone
    assert snapshot(out) == reference


def test_open_atlas_while_a_build_runs_sees_only_complete_units(tiny, tmp_path):
    out = tmp_path / "live"
    seen: list[int] = []
    checked: set[tuple[str, int]] = set()
    problems: list[str] = []
    finished = threading.Event()

    def read() -> None:
        while not finished.wait(0.02):
            try:
                atlas = vis_core.open_atlas(out)
            except AtlasError:  # not created yet
                continue
            with atlas:
                listed = [(layer, channel) for layer in atlas.layers for channel in atlas.channels(layer)]
                for layer, channel in set(listed) - checked:
                    unit = atlas.unit(layer, channel)
                    if unit is None or len(unit.examples) != 3 or unit.render.shape != (32, 32, 3):
                        problems.append(f"{layer}:{channel}")
                    checked.add((layer, channel))
                seen.append(len(listed))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        vis_core.build_atlas(tiny, layers=LAYERS, images="sample", out=out, **{**FAST, "steps": 60})
    finally:
        finished.set()
        reader.join()
    assert not problems and len(set(seen)) >= 2  # saw the atlas grow, and every unit it listed was whole


def test_batched_receptive_fields_equal_single_ones(tiny):
    positions = [(0, 0), (3, 5), (15, 15), (7, 0), (0, 9)]
    single = [receptive_field(tiny, "2", y, x) for y, x in positions]
    assert receptive_fields(tiny, "2", positions) == single
    rows, cols = layer_fields(tiny, "2")  # every position's, from the diagonal's
    assert [(rows[y, 0], cols[x, 0], rows[y, 1], cols[x, 1]) for y, x in positions] == single


def test_cli_progress_json_and_bad_layer(capsys, tmp_path):
    out = tmp_path / "cli"
    args = ["atlas", "--model", MODEL, "--device", "cpu", "--layer", "0", "--out", str(out), "--steps", "4"]
    code = main([*args, "--size", "32", "--top-k", "2", "--json"])
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads(captured.out)
    assert captured.out.count("\n") == 1
    assert (summary["units"], summary["skipped"], summary["executor"], summary["layers"]) == (6, 0, "local", ["0"])
    assert summary["seconds"] > 0
    lines = captured.err.strip().splitlines()
    assert lines[-1].startswith("[") and "6/6 units" in lines[-1] and "/s" in lines[-1] and "left" in lines[-1]
    code = main(["atlas", "--model", MODEL, "--device", "cpu", "--layer", "nope", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and captured.err.count("\n") == 1 and "Unknown layer" in captured.err
    code = main(["atlas", "--model", MODEL, "--out", str(out)])
    assert code == 2 and "--layer" in capsys.readouterr().err


def test_atlas_path_and_folder(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("VIS_CORE_ATLASES", str(tmp_path))
    assert vis_core.atlases_dir() == tmp_path
    path = vis_core.atlas_path(tiny)
    assert path.parent == tmp_path and all(c.isalnum() or c in "_.-" for c in path.name)
    assert vis_core.atlas_path(tiny, root=tmp_path / "x").parent == tmp_path / "x"


def test_handle_pickles_for_workers(tiny):
    copy = pickle.loads(pickle.dumps(tiny.for_long_work()))
    inputs = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(copy.model(inputs), tiny.model(inputs))
    assert copy.state_hash == tiny.state_hash and copy.for_long_work() is not copy
    with copy.guard():
        pass


def test_import_vis_core_does_not_import_ray():
    code = "import sys, vis_core; vis_core.atlas_path; assert 'ray' not in sys.modules, 'ray imported'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow  # a local Ray of 2 CPUs starts in ~10 s; still part of the default run
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Ray Data's own, when its context is pickled
def test_ray_executor_gives_the_same_atlas(tiny, tmp_path, photos, reference):
    pytest.importorskip("ray")
    summary = vis_core.build_atlas(tiny, layers=LAYERS, images=photos, out=tmp_path, executor="ray", **RESUME)
    assert (summary.executor, summary.units, summary.bad_images) == ("ray", TOTAL, 3)
    assert snapshot(tmp_path) == reference  # the local build's: same examples, same renders


def test_ascent_runs_on_a_batchnorm_folded_copy_that_computes_the_same(handle, cat):
    """The render copy folds each BatchNorm into its convolution (a quarter of a CPU step was the
    BatchNorm's backward): every block and BatchNorm output equals the model's to float rounding,
    a convolution a render reads keeps its own output, and the shared model is untouched."""
    from vis_core import surgery
    from vis_core.optim import rendering_twin as folded_twin

    before = vis_core.state_dict_hash(handle.model)
    folded = folded_twin(handle, ["features.10"])
    assert folded is folded_twin(handle, ["features.10"]) is folded_twin(handle)
    assert folded.model is not handle.for_long_work().model
    assert folded.is_long_work and folded.key == handle.key
    identities = [name for name, module in folded.model.named_modules() if isinstance(module, torch.nn.Identity)]
    assert len(identities) == 52  # every conv + BatchNorm pair of MobileNetV2
    assert not any(getattr(module, "inplace", False) for module in folded.model.modules())
    original = vis_core.feature_maps(handle, cat).activations
    same = vis_core.feature_maps(folded, cat).activations
    convs = {name for name, module in handle.model.named_modules() if isinstance(module, torch.nn.Conv2d)}
    for name in set(original) - convs:
        scale = np.abs(original[name]).max() + 1e-6
        assert np.abs(original[name] - same[name]).max() <= 1e-4 * scale, name
    kept = folded_twin(handle, ["features.10.conv.2"])  # a convolution read directly keeps its own output
    np.testing.assert_allclose(
        vis_core.feature_maps(kept, cat, ["features.10.conv.2"]).activations["features.10.conv.2"],
        original["features.10.conv.2"],
        rtol=1e-4,
        atol=1e-4,
    )
    assert vis_core.state_dict_hash(handle.model) == before
    assert kept is not folded and isinstance(kept.model.get_submodule("features.10.conv.3"), torch.nn.BatchNorm2d)
    assert surgery.fold_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3), torch.nn.Conv2d(3, 3, 1))) == []
