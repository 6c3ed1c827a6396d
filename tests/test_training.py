"""Training lab engine: datasets, deterministic training, snapshots, runs, evolution."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

import vis_core
from vis_core import datasets, evolution, training
from vis_core import runs as lab_runs


@pytest.fixture(scope="module")
def digits() -> datasets.Dataset:
    return datasets.load_dataset("digits", seed=0)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, digits) -> lab_runs.Run:
    out = tmp_path_factory.mktemp("runs") / "digits-2"
    return training.train("digits", "notebook", epochs=2, seed=0, out=out, data=digits, snapshot_every=10)


def test_digits_dataset(digits):
    assert digits.train_x.shape[1:] == (1, 28, 28) and len(digits.train_x) + len(digits.test_x) == 1797
    assert float(digits.train_x.min()) >= 0.0 and float(digits.train_x.max()) <= 1.0
    test_share = np.bincount(digits.test_y.numpy()) / np.bincount(np.concatenate([digits.train_y, digits.test_y]))
    assert np.allclose(test_share, 0.2, atol=0.02)  # stratified
    again = datasets.load_dataset("digits", seed=0)
    assert torch.equal(again.test_y, digits.test_y)
    assert not torch.equal(datasets.load_dataset("digits", seed=1).test_y, digits.test_y)


def test_shapes_dataset_is_seeded_and_balanced():
    a, b = datasets.make_shapes(seed=5, per_class=20), datasets.make_shapes(seed=5, per_class=20)
    assert torch.equal(a.train_x, b.train_x) and a.classes == datasets.SHAPE_CLASSES
    counts = np.bincount(np.concatenate([a.train_y, a.test_y]))
    assert counts.tolist() == [20] * len(datasets.SHAPE_CLASSES)
    assert not torch.equal(datasets.make_shapes(seed=6, per_class=20).train_x, a.train_x)


def test_download_failure_is_clear(monkeypatch, tmp_path):
    import torchvision

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading\nno network")

    monkeypatch.setenv("VIS_CORE_DATA", str(tmp_path))
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(datasets.DatasetError, match="digits") as info:
        datasets.load_dataset("mnist")
    assert "\n" not in str(info.value)
    with pytest.raises(datasets.DatasetError, match="Unknown dataset"):
        datasets.load_dataset("imagenet")


def test_training_improves_and_writes_a_run(small_run):
    assert small_run.snapshots[0].label == "untrained" and small_run.snapshots[0].metrics["train_loss"] is None
    epochs = [s.epoch for s in small_run.snapshots]
    assert epochs[0] == 0 and epochs[-1] == 2.0 and epochs == sorted(epochs)
    assert any(0 < e < 1 for e in epochs)  # a step snapshot (every 10 steps)
    accuracy = [s.metrics["test_accuracy"] for s in small_run.snapshots]
    assert accuracy[0] < 0.3 and accuracy[-1] > 0.85
    settings = json.loads((small_run.path / "run.json").read_text())
    assert settings["dataset"] == "digits" and settings["seed"] == 0 and not settings["stopped"]
    assert "stratified" in settings["dataset_description"] and len(settings["mean"]) == 1


def test_snapshot_reloaded_predicts_exactly_as_saved(small_run, digits):
    mean, std = digits.normalization()
    x = (digits.test_x - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    for snapshot in small_run.snapshots:
        accuracy, loss = training.evaluate(lab_runs.load_run(small_run.path).model(snapshot.index), x, digits.test_y)
        assert accuracy == snapshot.metrics["test_accuracy"]
        assert loss == snapshot.metrics["test_loss"]


def test_same_seed_gives_bitwise_identical_snapshots(tmp_path):
    data = datasets.make_shapes(seed=2, per_class=30)
    a = training.train("shapes", "tinyvgg", epochs=2, seed=7, out=tmp_path / "a", data=data)
    b = training.train("shapes", "tinyvgg", epochs=2, seed=7, out=tmp_path / "b", data=data)
    c = training.train("shapes", "tinyvgg", epochs=1, seed=8, out=tmp_path / "c", data=data)
    for snapshot in a.snapshots:
        left, right = a.state_dict(snapshot.index), b.state_dict(snapshot.index)
        assert left.keys() == right.keys()
        assert all(torch.equal(left[key], right[key]) for key in left)
    assert not torch.equal(a.state_dict(0)["conv1a.weight"], c.state_dict(0)["conv1a.weight"])


def test_training_leaves_global_rng_alone(tmp_path):
    data = datasets.make_shapes(seed=0, per_class=10)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    training.train("shapes", "notebook", epochs=1, seed=0, out=tmp_path / "r", data=data)
    assert torch.equal(torch.rand(3), expected)


def test_stop_keeps_what_was_trained(tmp_path, digits):
    steps = []

    def on_step(step, total, progress):
        steps.append(step)

    run = training.train(
        "digits",
        "notebook",
        epochs=5,
        seed=0,
        out=tmp_path / "s",
        data=digits,
        on_step=on_step,
        should_stop=lambda: len(steps) >= 30,
    )
    assert run.stopped and len(steps) == 30
    last = run.snapshots[-1]
    assert last.step == 30 and 1 < last.epoch < 2  # 23 steps per epoch on digits
    assert lab_runs.load_run(run.path).stopped


def test_parameters_are_checked(tmp_path):
    with pytest.raises(vis_core.ParameterError, match="epochs"):
        training.train(epochs=0, out=tmp_path / "x")
    with pytest.raises(vis_core.ParameterError, match="architecture"):
        training.train(arch="resnet", out=tmp_path / "x")
    with pytest.raises(vis_core.ParameterError, match="not allowed"):
        lab_runs.check_run_name("../evil")
    existing = tmp_path / "busy"
    existing.mkdir()
    (existing / "file").write_text("x")
    with pytest.raises(vis_core.ParameterError, match="exists"):
        training.train(epochs=1, out=existing, data=datasets.make_shapes(per_class=5))


def test_corrupt_and_missing_runs(tmp_path, small_run):
    root = tmp_path / "runs"
    shutil.copytree(small_run.path, root / "good")
    for name in ("no-json", "bad-json", "no-weights", "bad-weights", "no-snapshots"):
        shutil.copytree(small_run.path, root / name)
    (root / "no-json" / "run.json").unlink()
    (root / "bad-json" / "run.json").write_text("{not json")
    (root / "no-weights" / "snapshots" / "0001.pt").unlink()
    (root / "bad-weights" / "snapshots" / "0002.pt").write_bytes(b"garbage")
    shutil.rmtree(root / "no-snapshots" / "snapshots")
    (root / "stray-file.txt").write_text("not a run")

    runs, problems = lab_runs.list_runs(root)
    assert [r.name for r in runs] == ["bad-weights", "good"] or {r.name for r in runs} == {"good", "bad-weights"}
    assert set(problems) == {"no-json", "bad-json", "no-weights", "no-snapshots"}
    assert "run.json is missing" in problems["no-json"] and "corrupt" in problems["bad-json"]
    with pytest.raises(lab_runs.RunError, match="corrupt"):
        lab_runs.load_run(root / "bad-weights").model(2)
    lab_runs.load_run(root / "bad-weights").model(1)  # other snapshots still load
    with pytest.raises(lab_runs.RunError, match="no run folder"):
        lab_runs.load_run(root / "missing")
    with pytest.raises(lab_runs.RunError, match="not a run folder"):
        lab_runs.delete_run(root / "no-json")
    assert (root / "no-json").exists()
    lab_runs.delete_run(root / "good")
    assert not (root / "good").exists() and (root / "bad-weights").exists()


def test_weights_are_loaded_safely(tmp_path, small_run):
    """A snapshot file that is a malicious pickle is refused, and its payload never runs."""
    import pickle

    canary = tmp_path / "canary"

    class Evil:
        def __reduce__(self):
            return (open, (str(canary), "w"))

    root = tmp_path / "evil"
    shutil.copytree(small_run.path, root)
    (root / "snapshots" / "0001.pt").write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(lab_runs.RunError):
        lab_runs.load_run(root).state_dict(1)
    assert not canary.exists()


def test_run_handle_works_with_every_engine_call(small_run):
    handle = small_run.handle()
    assert handle.name == f"run:{small_run.name}" and handle.grayscale and handle.labels == tuple("0123456789")
    assert handle.input_size == (28, 28)
    images, labels = small_run.test_samples()
    picture = (images[0, 0].numpy() * 255).round().astype(np.uint8)
    from PIL import Image

    prediction = vis_core.predict(handle, Image.fromarray(picture).convert("RGB"))
    assert prediction.labels[0] == str(int(labels[0]))
    maps = vis_core.feature_maps(handle, Image.fromarray(picture).convert("RGB"))
    assert maps.activations["conv1"].shape == (32, 28, 28)


def test_evolution_views_match_snapshots(small_run):
    layer, history = evolution.filter_history(small_run)
    assert layer == "conv1" and history.shape == (len(small_run.snapshots), 32, 1, 5, 5)
    for snapshot in small_run.snapshots:
        np.testing.assert_array_equal(history[snapshot.index], small_run.state_dict(snapshot.index)["conv1.weight"])
    changes = evolution.weight_change(history)
    manual = np.linalg.norm((history[2] - history[1]).reshape(32, -1), axis=1)
    np.testing.assert_allclose(changes[1], manual, rtol=1e-5)
    maps = evolution.feature_map_history(small_run, 3, "relu1")
    images, _ = small_run.test_samples()
    x = small_run.normalize(images[3:4])
    for snapshot in small_run.snapshots:
        with torch.no_grad():
            expected = torch.relu(small_run.model(snapshot.index).conv1(x))[0].numpy()
        np.testing.assert_allclose(maps[snapshot.index], expected, rtol=1e-5, atol=1e-6)


def test_kernel_animation_frames_are_the_snapshots(small_run):
    from dashboard import figures

    _, history = evolution.filter_history(small_run)
    frames = history[:, :, 0]
    labels = [s.label for s in small_run.snapshots]
    figure = figures.kernel_animation(frames, labels)
    assert len(figure.frames) == len(small_run.snapshots)
    for index, frame in enumerate(figure.frames):
        z = np.asarray(frame.data[0].z, dtype=np.float64)
        # 5x5 tiles drawn at 96 px: one label row above each tile row, one gap column between tiles
        np.testing.assert_allclose(z[1:6, 0:5], frames[index, 0], rtol=1e-6)
        np.testing.assert_allclose(z[1:6, 6:11], frames[index, 1], rtol=1e-6)
        np.testing.assert_allclose(z[7:12, 0:5], frames[index, 8], rtol=1e-6)
        assert frame.layout.title.text == labels[index]


def test_the_layer_measures_tell_noise_from_strokes():
    rng = np.random.default_rng(0)
    noise = rng.normal(size=(1, 64, 1, 5, 5))
    yy, xx = np.mgrid[0:5, 0:5]
    strokes = np.stack([np.cos(0.6 * (np.cos(a) * xx + np.sin(a) * yy)) for a in np.linspace(0, 3, 64)])[:, None]
    history = np.concatenate([noise, noise + 10 * strokes[None]])
    smooth = evolution.smoothness(history)
    assert abs(smooth[0]) < 0.1 and smooth[1] > 0.8  # noise: neighbours unrelated; strokes: alike
    likeness = evolution.likeness_to_start(history)
    assert likeness[0] == pytest.approx(1.0) and likeness[1] < 0.3
    moved = evolution.relative_change(history)
    assert moved == pytest.approx([np.linalg.norm(10 * strokes) / np.linalg.norm(noise)])


def test_the_default_run_turns_first_layer_noise_into_strokes(small_run):
    """The lab's defaults (:data:`training.LAB_DEFAULTS`; small_run keeps them but trains 2 epochs):
    the first layer moves by more than its own starting size in the first epoch, and its kernels end
    smooth and unlike their random start (measured for the README with ``training.measure_defaults()``)."""
    assert small_run.settings["init"] == training.LAB_DEFAULTS["init"] == "faint"
    assert small_run.settings["lr"] == training.LAB_DEFAULTS["lr"]
    _, history = evolution.filter_history(small_run)
    epochs = [s.index for s in small_run.snapshots if s.epoch == int(s.epoch)]  # untrained, epoch 1, epoch 2
    history = history[epochs]
    assert evolution.relative_change(history)[0] > 1.0
    smooth = evolution.smoothness(history)
    assert smooth[0] < 0.1 and smooth[-1] > 0.5
    assert evolution.likeness_to_start(history)[-1] < 0.7


def test_the_time_estimate_is_the_measured_step_cost_times_the_work(monkeypatch):
    measured = training.measure_step("notebook", 1, 28, 10, 64)
    assert measured.step > 0 and measured.forward > 0 and measured.save > 0
    assert training.measure_step("notebook", 1, 28, 10, 64) is measured  # timed once per network and batch
    cost = training.StepCost(step=0.1, forward=0.001, save=0.05)
    calls = []

    def fake(arch, channels, size, classes, batch_size):
        calls.append((arch, channels, size, classes, batch_size))
        return cost

    monkeypatch.setattr(training, "measure_step", fake)
    seconds = training.estimate_seconds("digits", "notebook", epochs=5, batch_size=64)
    assert calls == [("notebook", 1, 28, 10, 64)]
    steps, snapshots, test_images = 23 * 5, 6, 1438 // 4  # ceil(1438 / 64) steps an epoch
    assert seconds == pytest.approx(steps * 0.1 + snapshots * (test_images * 0.001 + 0.05))
    assert training.estimate_seconds("digits", "notebook", epochs=5, batch_size=64, snapshot_every=10) > seconds


def test_the_lab_page_estimates_from_a_measurement(monkeypatch, tmp_path):
    from tests.support import shown
    from tests.support.apptest import setting, start

    monkeypatch.setenv("VIS_CORE_RUNS", str(tmp_path))
    monkeypatch.setattr(training, "measure_step", lambda *args: training.StepCost(step=0.5, forward=0.0, save=0.0))
    at = start("views/training_lab.py")
    defaults = training.LAB_DEFAULTS
    assert setting(at.selectbox, "lab_init").value == defaults["init"] and setting(at.slider, "lab_epochs").value == 5
    assert setting(at.select_slider, "lab_lr").value == defaults["lr"]
    expected = 23 * defaults["epochs"] * 0.5  # the default run's steps times the (patched) measured step
    captions = " ".join(shown(caption.value) for caption in at.caption)
    assert f"This run will take about {expected:.0f} s of training on this machine" in captions
    assert f"takes about {expected:.0f} s on this machine" in at.info[0].value
    setting(at.select_slider, "lab_batch").set_value(128).run()  # ceil(1438 / 128) = 12 steps an epoch
    assert f"about {12 * defaults['epochs'] * 0.5:.0f} s" in " ".join(shown(c.value) for c in at.caption)
