"""`python -m vis_core`: each command, its JSON summary, and exit code 2 on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import vis_core
from vis_core.cli import main


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_predict_json(capsys):
    code, out, err = run_cli(capsys, "predict", "--json", "--device", "cpu")
    assert code == 0 and err == ""
    summary = json.loads(out)
    assert out.count("\n") == 1
    assert summary["top"][0]["label"] == "Egyptian cat" and len(summary["top"]) == 5


def test_predict_text_with_image_path(capsys, tmp_path):
    from vis_core import sample_image

    path = tmp_path / "coffee.jpg"
    sample_image("coffee").save(path)
    code, out, _ = run_cli(capsys, "predict", "--image", str(path), "--top", "3")
    assert code == 0 and len(out.strip().splitlines()) == 3 and "%" in out


def test_layers(capsys):
    code, out, _ = run_cli(capsys, "layers", "--blocks", "--json")
    summary = json.loads(out)
    assert code == 0 and summary["count"] == len(summary["layers"])
    names = [row["name"] for row in summary["layers"]]
    assert names[:2] == ["features.0", "features.1"] and "features.10" in names
    assert next(r for r in summary["layers"] if r["name"] == "features.10")["shape"] == [64, 14, 14]


def test_featuremaps_grid_and_channel(capsys, tmp_path):
    grid = tmp_path / "grid.png"
    code, out, _ = run_cli(capsys, "featuremaps", "--layer", "features.10", "--out", str(grid), "--json")
    summary = json.loads(out)
    assert code == 0 and summary["shape"] == [64, 14, 14]
    picture = np.asarray(Image.open(grid))
    assert picture.shape[0] > 300 and picture.shape[2] == 3 and picture.std() > 10
    single = tmp_path / "one.png"
    code, _, _ = run_cli(capsys, "featuremaps", "--layer", "features.10", "--channel", "5", "--out", str(single))
    assert code == 0 and Image.open(single).size == (224, 224)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["featuremaps", "--layer", "nope", "--out", "x.png"], "Unknown layer"),
        (["featuremaps", "--layer", "features.10", "--channel", "64", "--out", "x.png"], "out of range"),
        (["featuremaps", "--layer", "features.10", "--channel", "-1", "--out", "x.png"], "expected 0 or more"),
        (["featuremaps", "--layer", "features.10", "--out", "x.jpg"], ".png"),
        (["predict", "--image", "/no/such/file.png"], "Cannot read"),
        (["predict", "--model", "no_such_net"], "Unknown model"),
        (["predict", "--device", "quantum"], "device"),
        (["predict", "--bogus"], "unrecognized"),
        (["nothing"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_input_exits_2_with_one_line(capsys, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error:") and fragment in err


def test_bad_image_file_exits_2(capsys, tmp_path):
    bad = tmp_path / "fake.png"
    bad.write_bytes(b"%PDF-1.4 not an image")
    code, _, err = run_cli(capsys, "predict", "--image", str(bad))
    assert code == 2 and "PDF" in err and err.count("\n") == 1


def test_weights_check(capsys):
    code, out, _ = run_cli(capsys, "weights", "--check", "--json")
    assert code == 0 and json.loads(out)["offline"] is True


def test_module_entry_point_and_help():
    result = subprocess.run([sys.executable, "-m", "vis_core", "featuremaps", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--layer" in result.stdout and "--channel" in result.stdout
    result = subprocess.run([sys.executable, "-m", "vis_core", "layers", "--wat"], capture_output=True, text=True)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_train_and_filters_of_the_run(capsys, tmp_path):
    out = tmp_path / "cli-run"
    code, stdout, _ = run_cli(
        capsys,
        "train",
        "--dataset",
        "shapes",
        "--arch",
        "tinyvgg",
        "--epochs",
        "1",
        "--seed",
        "1",
        "--out",
        str(out),
        "--json",
    )
    summary = json.loads(stdout)
    assert code == 0 and summary["snapshots"] == 2 and 0 <= summary["test_accuracy"] <= 1
    assert (out / "run.json").is_file() and (out / "snapshots" / "0001.pt").is_file()
    png = tmp_path / "k.png"
    code, stdout, _ = run_cli(capsys, "filters", "--run", str(out), "--layer", "conv1a", "--out", str(png), "--json")
    assert code == 0 and json.loads(stdout)["kind"] == "gray" and Image.open(png).size[0] > 100
    code, _, err = run_cli(capsys, "train", "--out", str(out), "--epochs", "1", "--dataset", "shapes")
    assert code == 2 and "exists" in err
    code, _, err = run_cli(capsys, "train", "--out", str(tmp_path / "x"), "--epochs", "0")
    assert code == 2 and "1 or more" in err


def test_filters_of_pretrained_model(capsys, tmp_path):
    png = tmp_path / "f.png"
    code, stdout, _ = run_cli(capsys, "filters", "--layer", "features.0.0", "--out", str(png), "--json")
    summary = json.loads(stdout)
    assert code == 0 and summary["kind"] == "rgb" and summary["shape"] == [32, 3, 3, 3]
    code, _, err = run_cli(capsys, "filters", "--layer", "features.0", "--out", str(png))
    assert code == 2 and "not a convolution" in err
    code, _, err = run_cli(capsys, "filters", "--layer", "features.0.0", "--channel", "32", "--out", str(png))
    assert code == 2 and "out of range" in err
    code, _, err = run_cli(capsys, "filters", "--run", str(tmp_path / "nope"), "--layer", "conv1", "--out", str(png))
    assert code == 2 and "no run folder" in err


def test_deconv(capsys, tmp_path):
    out = tmp_path / "d.png"
    code, stdout, _ = run_cli(
        capsys,
        "deconv",
        "--layer",
        "features.10",
        "--channel",
        "5",
        "--method",
        "guided",
        "--max",
        "--out",
        str(out),
        "--json",
    )
    summary = json.loads(stdout)
    assert code == 0 and summary["position"] == [4, 4] and len(summary["receptive_field"]) == 4
    field_top, field_left, field_bottom, field_right = summary["receptive_field"]
    top, left, bottom, right = summary["focus"]
    assert field_top <= top < bottom <= field_bottom and field_left <= left < right <= field_right
    assert np.asarray(Image.open(out)).std() > 1
    code, _, err = run_cli(capsys, "deconv", "--layer", "features.10", "--channel", "99", "--out", str(out))
    assert code == 2 and "out of range" in err
    code, _, err = run_cli(
        capsys, "deconv", "--layer", "features.10", "--channel", "1", "--method", "lrp", "--out", str(out)
    )
    assert code == 2 and "invalid choice" in err


def test_attribute_png_and_npy(capsys, tmp_path):
    png, npy = tmp_path / "a.png", tmp_path / "a.npy"
    code, stdout, _ = run_cli(
        capsys, "attribute", "--method", "gradcam", "--target", "tabby", "--out", str(png), "--npy", str(npy), "--json"
    )
    summary = json.loads(stdout)
    assert code == 0 and summary["target"] == 281 and summary["layer"] == "features.18"
    saved = np.load(npy)
    assert saved.shape == (300, 451) == tuple(summary["shape"]) and Image.open(png).size == (451, 300)
    code, _, err = run_cli(capsys, "attribute", "--method", "cam", "--target", "unicorn", "--out", str(png))
    assert code == 2 and "No class named" in err
    code, _, err = run_cli(capsys, "attribute", "--method", "gradcam", "--layer", "classifier.1", "--out", str(png))
    assert code == 2 and "spatial" in err


def test_metrics_json(capsys):
    code, stdout, _ = run_cli(
        capsys, "metrics", "--method", "gradcam", "--method", "saliency", "--steps", "8", "--json"
    )
    summary = json.loads(stdout)
    assert code == 0 and set(summary["faithfulness"]) == {"gradcam", "saliency", "random"}
    for scores in summary["faithfulness"].values():
        assert 0 <= scores["deletion_auc"] <= 1 and 0 <= scores["insertion_auc"] <= 1


def test_dream_featurevis_invert(capsys, tmp_path):
    out = tmp_path / "d.png"
    code, stdout, _ = run_cli(
        capsys,
        "dream",
        "--layer",
        "features.4",
        "--octaves",
        "2",
        "--steps",
        "2",
        "--seed",
        "3",
        "--out",
        str(out),
        "--json",
    )
    assert code == 0 and json.loads(stdout)["seed"] == 3 and Image.open(out).size == (451, 300)
    code, stdout, _ = run_cli(
        capsys,
        "featurevis",
        "--layer",
        "features.7",
        "--channels",
        "0-3",
        "--steps",
        "4",
        "--size",
        "48",
        "--out",
        str(out),
        "--json",
    )
    assert code == 0 and json.loads(stdout)["channels"] == [0, 1, 2, 3]
    code, stdout, _ = run_cli(capsys, "invert", "--layer", "features.2", "--steps", "5", "--out", str(out), "--json")
    assert code == 0 and Image.open(out).size == (224, 224) and json.loads(stdout)["pixel_error"] > 0
    code, _, err = run_cli(
        capsys, "featurevis", "--layer", "features.7", "--channel", "1", "--size", "4096", "--out", str(out)
    )
    assert code == 2 and "size" in err
    code, _, err = run_cli(capsys, "featurevis", "--layer", "features.7", "--out", str(out))
    assert code == 2 and "--channel" in err


def test_a_run_trained_from_the_cli_is_in_the_dashboards_runs_folder(capsys, tmp_path, monkeypatch):
    """One place decides the runs folder: a run named on the command line is a model in the sidebar."""
    from dashboard.data import cache

    monkeypatch.setenv("VIS_CORE_RUNS", str(tmp_path))
    code, stdout, _ = run_cli(capsys, "train", "--epochs", "1", "--arch", "tinyvgg", "--out", "cli-run", "--json")
    assert code == 0 and json.loads(stdout)["run"] == str(tmp_path / "cli-run")
    assert vis_core.runs.runs_dir() == tmp_path and cache.offered("run:cli-run")
    assert [run.name for run in vis_core.list_runs()[0]] == ["cli-run"]
    code, _, _ = run_cli(capsys, "filters", "--run", "cli-run", "--layer", "conv1a", "--out", str(tmp_path / "k.png"))
    assert code == 0


# ------------------------------------------------- arguments refused before anything is allocated (#24)
HUGE_SEED = "1000000000000000000000000000000"
ATLAS_MODEL = "tests.factories:tiny_atlas"


@pytest.fixture
def no_model(monkeypatch):
    """Any model loaded fails the test: a refusal must come before the model (and its memory)."""
    import vis_core.loading

    def loaded(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were refused")

    monkeypatch.setattr(vis_core.loading, "load_model", loaded)
    monkeypatch.setattr(vis_core.loading, "load_factory", loaded)


@pytest.mark.parametrize(
    "args",
    [
        ["featurevis", "--layer", "features.7", "--channel", "1", "--out", "x.png"],
        ["dream", "--layer", "features.4", "--out", "x.png"],
        ["invert", "--layer", "features.2", "--out", "x.png"],
        ["atlas", "--model", ATLAS_MODEL, "--layer", "0", "--out", "atlas"],
        ["train", "--epochs", "1"],
    ],
    ids=lambda args: args[0],
)
def test_a_seed_past_64_bits_exits_2_before_the_model_loads(capsys, tmp_path, monkeypatch, no_model, args):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *args, "--seed", HUGE_SEED)
    assert code == 2 and out == "" and err.count("\n") == 1 and "seed" in err and "Traceback" not in err


@pytest.mark.parametrize("channels", ["0-1000000000", "0-20000000", "0-64"])
def test_a_gallery_past_the_batch_cap_exits_2_before_the_list_is_made(capsys, tmp_path, no_model, channels):
    code, out, err = run_cli(capsys, "featurevis", "--layer", "features.7", "--channels", channels, "--out", "x.png")
    assert code == 2 and out == "" and err.count("\n") == 1 and "at most 64 channels" in err


def test_a_channel_range_is_checked_without_making_it():
    import argparse
    import tracemalloc

    from vis_core.cli.framework import channel_range

    tracemalloc.start()
    try:
        with pytest.raises(argparse.ArgumentTypeError, match="at most 64 channels"):
            channel_range("0-1000000000")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000  # a list of 10^9 ints would be gigabytes
    assert channel_range("3-5") == [3, 4, 5]


def test_the_engine_refuses_a_huge_seed_or_gallery_before_it_starts():
    tiny = vis_core.load_factory(ATLAS_MODEL, device="cpu")
    with pytest.raises(vis_core.ParameterError, match="seed"):
        vis_core.feature_visualization(tiny, layer="2", channel=0, steps=1, size=32, seed=10**30)
    with pytest.raises(vis_core.ParameterError, match="at most 64"):
        vis_core.feature_visualization(tiny, layer="2", channel=list(range(10**5)), steps=1, size=32)
    photo = vis_core.sample_image("chelsea")
    with pytest.raises(vis_core.ParameterError, match="seed"):
        vis_core.deep_dream(tiny, photo, layer="2", steps=1, octaves=1, seed=10**30)
    with pytest.raises(vis_core.ParameterError, match="seed"):
        vis_core.reconstruct(tiny, photo, layer="2", steps=1, seed=-1)


def test_atlas_images_with_a_symlink_loop_exits_2_with_one_line(capsys, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    vis_core.sample_image("chelsea").save(folder / "cat.png")
    (folder / "a").symlink_to(folder / "b")
    (folder / "b").symlink_to(folder / "a")
    args = ["atlas", "--model", ATLAS_MODEL, "--device", "cpu", "--layer", "0", "--images", str(folder)]
    code, out, err = run_cli(capsys, *args, "--out", str(tmp_path / "atlas"), "--steps", "2", "--size", "32")
    assert code == 2 and out == "" and err.count("\n") == 1 and "loop" in err


def test_atlas_images_of_empty_files_exits_2_with_one_line_and_no_progress(capsys, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(10_000):
        (folder / f"{index:05d}.png").touch()
    args = ["atlas", "--model", ATLAS_MODEL, "--device", "cpu", "--layer", "0", "--images", str(folder)]
    code, out, err = run_cli(capsys, *args, "--out", str(tmp_path / "atlas"), "--steps", "2", "--size", "32")
    assert code == 2 and out == "" and err.count("\n") == 1 and "empty" in err, err
    assert not (tmp_path / "atlas").exists()
