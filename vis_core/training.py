"""The training lab's loop: train a small CNN and save it as a run with a snapshot per epoch.

Training is deterministic for a seed on the CPU: model initialisation, dropout and batch
order all derive from it, inside ``torch.random.fork_rng`` so the caller's global random
state is left as it was. The networks are in :mod:`vis_core.nets`, the run folder and its
format in :mod:`vis_core.runs`, the caps on what a run writes in :mod:`vis_core.disk_budget`.
"""

from __future__ import annotations

import io
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .arrays import normalise
from .datasets import DATASET_SHAPES, DATASETS, Dataset, load_dataset
from .disk_budget import check_budget, estimate_for, estimate_run
from .errors import ParameterError
from .loading import resolve_device
from .nets import build_model, check_arch, check_init
from .runs import (
    FORMAT_VERSION,
    Run,
    check_run_name,
    claim_folder,
    default_run_name,
    load_run,
    run_path,
    save_settings,
    save_snapshot,
    save_test_samples,
)

#: Server-side caps for the lab (the dashboard's sliders stay inside them).
MAX_EPOCHS = 50
MAX_BATCH = 1024
#: The lab's default run (the dashboard's and :func:`train`'s defaults), chosen so the first
#: layer's kernels visibly turn from noise into strokes in a demo-length run on a 2-core CPU:
#: measured by :func:`measure_defaults`.
LAB_DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "arch": "notebook",
    "epochs": 5,
    "batch_size": 64,
    "lr": 3e-3,
    "init": "faint",
}


@dataclass(frozen=True)
class Progress:
    """What ``on_step`` receives as ``preview`` while training."""

    epoch: float
    step: int
    total_steps: int
    train_loss: float
    history: tuple[dict[str, Any], ...]
    seconds: float = 0.0  # since training started

    @property
    def seconds_left(self) -> float | None:
        """The time still to go at the pace so far (None before the first step)."""
        if self.step <= 0:
            return None
        return self.seconds / self.step * max(0, self.total_steps - self.step)


@dataclass(frozen=True)
class StepCost:
    """What training costs on this machine, measured (:func:`measure_step`).

    Attributes:
        step: seconds of one optimiser step (forward, backward, Adam) on a full batch.
        forward: seconds per image of evaluation (forward only, in batches of 512).
        save: seconds to serialise one snapshot's weights.
    """

    step: float
    forward: float
    save: float


#: Test images of the torchvision datasets (the bundled ones keep a fifth for testing: a quarter of
#: the training images).
TEST_SIZES = {"mnist": 10_000, "fashion-mnist": 10_000, "cifar10": 10_000}
_COSTS: dict[tuple, StepCost] = {}
_COSTS_LOCK = threading.Lock()


def measure_step(arch: str, channels: int, size: int, classes: int, batch_size: int, *, repeats: int = 3) -> StepCost:
    """Time a few training steps of ``arch`` on random data of this shape (the fastest of
    ``repeats`` after a warm-up), an evaluation batch and a snapshot's serialisation; measured
    once per network, shape, batch size and thread count, in well under a second for the lab's
    networks."""
    key = (arch, channels, size, classes, int(batch_size), torch.get_num_threads())
    with _COSTS_LOCK:
        if key in _COSTS:
            return _COSTS[key]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(arch, channels, size, classes)
        x = torch.rand(int(batch_size), channels, size, size)
        y = torch.randint(classes, (int(batch_size),))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    index = torch.arange(int(batch_size))
    model.train()
    steps = []
    for repeat in range(repeats + 1):
        start = time.perf_counter()
        _step(model, optimizer, x, y, index)
        if repeat:  # the first is a warm-up
            steps.append(time.perf_counter() - start)
    model.eval()
    with torch.no_grad():
        start = time.perf_counter()
        model(x)
        forward = (time.perf_counter() - start) / int(batch_size)
    start = time.perf_counter()
    torch.save(model.state_dict(), io.BytesIO())
    cost = StepCost(min(steps), forward, time.perf_counter() - start)
    with _COSTS_LOCK:
        _COSTS[key] = cost
    return cost


def estimate_seconds(
    dataset: str, arch: str, *, epochs: int, batch_size: int, snapshot_every: int = 0, cost: StepCost | None = None
) -> float:
    """How long a run with these settings takes here, from a measured cost (:func:`measure_step`,
    or ``cost``): its optimiser steps, plus, for every snapshot, an evaluation of the test set
    and a save. Loading the data is not counted (the bundled sets load in under a second)."""
    if dataset not in DATASET_SHAPES:
        raise ParameterError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASET_SHAPES)}.")
    train_size, channels, size, classes = DATASET_SHAPES[dataset]
    batch = max(1, min(int(batch_size), train_size))
    cost = cost or measure_step(arch, channels, size, classes, batch)
    steps = math.ceil(train_size / batch) * int(epochs)
    snapshots = estimate_for(dataset, arch, epochs=epochs, batch_size=batch, snapshot_every=snapshot_every).snapshots
    test_size = TEST_SIZES.get(dataset, train_size // 4)
    return steps * cost.step + snapshots * (test_size * cost.forward + cost.save)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch: int = 512) -> tuple[float, float]:
    """Accuracy and mean cross-entropy of ``model`` on normalised ``images``."""
    was_training = model.training
    model.eval()
    correct, loss, device = 0, 0.0, next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = images[start : start + batch].to(device)
            y = labels[start : start + batch].to(device)
            logits = model(x)
            loss += float(F.cross_entropy(logits, y, reduction="sum"))
            correct += int((logits.argmax(1) == y).sum())
    model.train(was_training)
    return correct / len(images), loss / len(images)


def train(
    dataset: str = LAB_DEFAULTS["dataset"],
    arch: str = LAB_DEFAULTS["arch"],
    epochs: int = LAB_DEFAULTS["epochs"],
    seed: int = 0,
    out: str | Path | None = None,
    *,
    batch_size: int = LAB_DEFAULTS["batch_size"],
    lr: float = LAB_DEFAULTS["lr"],
    snapshot_every: int = 0,
    init: str = LAB_DEFAULTS["init"],
    device: str | torch.device = "cpu",
    on_step: Callable[[int, int, Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    data: Dataset | None = None,
) -> Run:
    """Train a small CNN and save a run folder with snapshots.

    Args:
        dataset: one of :data:`vis_core.datasets.DATASETS`.
        arch: one of :data:`vis_core.nets.ARCHITECTURES`.
        epochs: passes over the training set (1..:data:`MAX_EPOCHS`).
        seed: seeds the split (bundled datasets), initialisation, dropout and batch order.
        out: run folder, or a run name for a folder in :func:`vis_core.runs.runs_dir`; default
            ``<dataset>-<arch>-seed<seed>-<time>`` there. Must not exist (or be empty).
        batch_size: minibatch size.
        lr: Adam learning rate.
        snapshot_every: also snapshot every N optimiser steps (0: only per epoch).
        init: weight initialisation, one of :data:`vis_core.nets.INITS`.
        device: where to train.
        on_step: called after every step with ``(step, total_steps, Progress)``.
        should_stop: polled every step; when it returns True, training stops, the current
            state is saved as a last snapshot, and the run is marked ``stopped``.
        data: an already loaded :class:`Dataset` (skips loading ``dataset``).

    Returns:
        The :class:`Run` (also readable later with :func:`vis_core.runs.load_run`).

    Raises:
        ParameterError: a setting out of range, a name in use, or a run past the disk caps
            (:func:`vis_core.disk_budget.check_budget`), before anything is written.
    """
    _check_arguments(dataset, arch, epochs, batch_size, lr, data)
    check_init(init)
    resolved = resolve_device(device)
    data = data if data is not None else load_dataset(dataset, seed)
    folder = _claim_run_folder(out, data, arch, seed, int(epochs), int(batch_size), int(snapshot_every))

    mean, std = data.normalization()
    settings = _settings(data, mean, std, resolved, arch, epochs, seed, batch_size, lr, snapshot_every)
    settings["init"] = init
    save_settings(folder, settings)
    save_test_samples(folder, data.test_x, data.test_y)
    train_x = normalise(data.train_x, mean, std).to(resolved)
    train_y = data.train_y.to(resolved)
    test_x, test_y = normalise(data.test_x, mean, std), data.test_y

    started = time.perf_counter()
    with torch.random.fork_rng(devices=[resolved] if resolved.type == "cuda" else []):
        torch.manual_seed(seed)
        model = build_model(arch, data.channels, data.size, len(data.classes), init).to(resolved)
        snapshots = _Snapshots(folder, model, test_x, test_y, started)
        snapshots.take(0.0, 0, None)
        stopped = _fit(
            model,
            train_x,
            train_y,
            snapshots,
            epochs=int(epochs),
            batch_size=batch_size,
            lr=lr,
            seed=seed,
            snapshot_every=snapshot_every,
            on_step=on_step,
            should_stop=should_stop,
        )
    settings["stopped"] = stopped
    settings["seconds"] = time.perf_counter() - started
    save_settings(folder, settings)
    return load_run(folder)


def _check_arguments(dataset: str, arch: str, epochs: int, batch_size: int, lr: float, data: Dataset | None) -> None:
    if not 1 <= int(epochs) <= MAX_EPOCHS:
        raise ParameterError(f"epochs must be between 1 and {MAX_EPOCHS}, got {epochs}.")
    if not 1 <= int(batch_size) <= MAX_BATCH:
        raise ParameterError(f"batch size must be between 1 and {MAX_BATCH}, got {batch_size}.")
    if not 0 < float(lr) <= 1:
        raise ParameterError(f"learning rate must be in (0, 1], got {lr}.")
    if dataset not in DATASETS and data is None:
        raise ParameterError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    check_arch(arch)


def _claim_run_folder(
    out: str | Path | None, data: Dataset, arch: str, seed: int, epochs: int, batch_size: int, snapshot_every: int
) -> Path:
    """The run's folder, checked against the name rules and the disk caps, then claimed."""
    folder = run_path(out if out is not None else default_run_name(data.name, arch, seed))
    check_run_name(folder.name)
    estimate = estimate_run(
        arch,
        channels=data.channels,
        size=data.size,
        classes=len(data.classes),
        train_size=len(data.train_y),
        epochs=epochs,
        batch_size=batch_size,
        snapshot_every=snapshot_every,
    )
    check_budget(estimate, folder.parent)
    claim_folder(folder)
    return folder


def _settings(
    data: Dataset,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device,
    arch: str,
    epochs: int,
    seed: int,
    batch_size: int,
    lr: float,
    snapshot_every: int,
) -> dict[str, Any]:
    """What ``run.json`` records: the settings, the data and its normalisation."""
    return {
        "format": FORMAT_VERSION,
        "dataset": data.name,
        "dataset_description": data.description,
        "arch": arch,
        "epochs": int(epochs),
        "seed": int(seed),
        "batch_size": int(batch_size),
        "lr": float(lr),
        "optimizer": "Adam",
        "snapshot_every": int(snapshot_every),
        "channels": data.channels,
        "size": data.size,
        "classes": list(data.classes),
        "mean": list(mean),
        "std": list(std),
        "train_size": len(data.train_y),
        "test_size": len(data.test_y),
        "device": str(device),
        "created": time.time(),
        "stopped": False,
    }


class _Snapshots:
    """Saves the model, with its accuracy and loss on the test set, as the run's next snapshot."""

    def __init__(self, folder: Path, model: nn.Module, test_x: torch.Tensor, test_y: torch.Tensor, started: float):
        self.folder, self.model, self.test_x, self.test_y, self.started = folder, model, test_x, test_y, started
        self.history: list[dict[str, Any]] = []

    def take(self, epoch: float, step: int, train_loss: float | None) -> None:
        accuracy, test_loss = evaluate(self.model, self.test_x, self.test_y)
        metrics = {
            "test_accuracy": accuracy,
            "test_loss": test_loss,
            "train_loss": train_loss,
            "seconds": time.perf_counter() - self.started,
        }
        saved = save_snapshot(self.folder, len(self.history), self.model, epoch, step, metrics)
        self.history.append({"index": saved.index, "epoch": epoch, "step": step, **metrics})


def _fit(
    model: nn.Module,
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    snapshots: _Snapshots,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    snapshot_every: int,
    on_step: Callable[[int, int, Progress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> bool:
    """Adam on minibatches in an order drawn from ``seed``; a snapshot after every epoch and every
    ``snapshot_every`` steps. Returns whether ``should_stop`` ended it (what was trained since the
    last snapshot is saved first)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    steps_per_epoch = (len(train_y) + batch_size - 1) // batch_size
    total = steps_per_epoch * epochs
    step = 0
    for epoch in range(epochs):
        model.train()
        permutation = torch.randperm(len(train_y), generator=order).to(train_y.device)
        losses: list[float] = []  # this epoch's
        for start in range(0, len(train_y), batch_size):
            if should_stop is not None and should_stop():
                if losses:
                    snapshots.take(round(step / steps_per_epoch, 4), step, float(np.mean(losses)))
                return True
            losses.append(_step(model, optimizer, train_x, train_y, permutation[start : start + batch_size]))
            step += 1
            if snapshot_every and step % snapshot_every == 0 and step % steps_per_epoch:
                snapshots.take(round(step / steps_per_epoch, 4), step, float(np.mean(losses)))
            if on_step is not None:
                elapsed = time.perf_counter() - snapshots.started
                progress = Progress(step / steps_per_epoch, step, total, losses[-1], tuple(snapshots.history), elapsed)
                on_step(step, total, progress)
        snapshots.take(float(epoch + 1), step, float(np.mean(losses)))
    return False


def _step(
    model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor, index: torch.Tensor
) -> float:
    """One optimiser step on the minibatch ``x[index]``; returns its loss."""
    loss = F.cross_entropy(model(x[index]), y[index])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


def measure_defaults(**overrides: Any) -> dict[str, Any]:
    """Train the lab's default run (:data:`LAB_DEFAULTS`, with ``overrides``) in a temporary
    folder and measure what its animation shows: how far the first layer moved per epoch
    (``||W_e - W_{e-1}|| / ||W_0||``), how much its kernels still look like their random start,
    how smooth (stroke-like) they are, the accuracy and the seconds it took (beside the page's
    estimate). The README's numbers come from
    ``python -c "from vis_core.training import measure_defaults as m; print(m())"``."""
    import shutil
    import tempfile

    from . import evolution

    folder = Path(tempfile.mkdtemp(prefix="lab-measure-"))
    try:
        settings = {**LAB_DEFAULTS, **overrides}
        started = time.perf_counter()
        run = train(out=folder / "run", **settings)
        seconds = time.perf_counter() - started
        layer, history = evolution.filter_history(run)
        estimate = estimate_seconds(
            settings["dataset"], settings["arch"], epochs=settings["epochs"], batch_size=settings["batch_size"]
        )
        return {
            **settings,
            "layer": layer,
            "seconds": round(seconds, 1),
            "estimated_seconds": round(estimate, 1),
            "threads": torch.get_num_threads(),
            "moved_per_epoch": [round(float(v), 3) for v in evolution.relative_change(history)],
            "likeness_to_start": [round(float(v), 3) for v in evolution.likeness_to_start(history)],
            "smoothness": [round(float(v), 3) for v in evolution.smoothness(history)],
            "test_accuracy": [round(s.metrics["test_accuracy"], 3) for s in run.snapshots],
        }
    finally:
        shutil.rmtree(folder, ignore_errors=True)
