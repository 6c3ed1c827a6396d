"""The training lab: train a small CNN, keep snapshots, and watch its filters evolve.

A run lives in a folder (``runs/<name>/``)::

    run.json                settings, dataset description, classes, normalisation
    test_samples.pt         the first test images and labels (for the evolution view)
    snapshots/0003.json     epoch, step and metrics of snapshot 3
    snapshots/0003.pt       its weights: ``torch.save`` of a state_dict

Snapshot 0 is the untrained network; then one after every epoch (and optionally every N
steps). Weights are always read back with ``torch.load(..., weights_only=True)``.

Training is deterministic for a seed on the CPU: model initialisation, dropout and batch
order all derive from it, inside ``torch.random.fork_rng`` so the caller's global random
state is left as it was. The architectures are the original notebook's (LeCun-style:
conv 5x5x32, pool, conv 5x5x64, pool, dense 1024, dropout, dense) and a small VGG-style
network with batch normalisation and global average pooling.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .datasets import DATASETS, Dataset, load_dataset
from .errors import ModelError, ParameterError, VisCoreError
from .loading import resolve_device
from .models import ModelHandle

#: Server-side caps for the lab (the dashboard's sliders stay inside them).
MAX_EPOCHS = 50
MAX_BATCH = 1024
TEST_SAMPLES = 64
#: Most snapshots one run may keep (the untrained one, one per epoch, and extra step snapshots).
MAX_SNAPSHOTS = 120
#: Most bytes one run may write, and all runs together in the runs folder (THREATS.md: anything a
#: user can make the server write has a per-item and a total cap, estimated before work starts).
MAX_RUN_BYTES = 2**30
MAX_RUNS_BYTES = 4 * 2**30
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
FORMAT_VERSION = 1


def runs_dir() -> Path:
    """The one folder where runs live, for the dashboard and the CLI alike.

    ``$VIS_CORE_RUNS`` when set; otherwise ``runs/`` in the project checkout this package sits
    in (so ``make run`` and ``python -m vis_core train`` from anywhere in it agree), or ``runs/``
    in the working directory for an installed package.
    """
    if configured := os.environ.get("VIS_CORE_RUNS"):
        return Path(configured)
    checkout = Path(__file__).resolve().parents[1]
    return checkout / "runs" if (checkout / "pyproject.toml").is_file() else Path.cwd() / "runs"


def run_path(name_or_path: str | Path) -> Path:
    """A run given by name (a folder in :func:`runs_dir`) or by path (anything with a separator)."""
    text = str(name_or_path)
    if os.sep in text or (os.altsep and os.altsep in text) or Path(text).is_dir():
        return Path(text)
    return runs_dir() / check_run_name(text)


class RunError(VisCoreError, ValueError):
    """A run folder is missing, incomplete or corrupt."""


# ------------------------------------------------------------------ architectures
def notebook_cnn(channels: int, size: int, classes: int) -> nn.Module:
    """The original notebook's network: conv 5x5x32, pool, conv 5x5x64, pool, dense 1024,
    dropout 0.5, dense ``classes`` ('same' padding, as in Keras)."""
    flat = 64 * (size // 4) * (size // 4)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(channels, 32, 5, padding=2)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(32, 64, 5, padding=2)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(flat, 1024)),
                ("relu3", nn.ReLU()),
                ("dropout", nn.Dropout(0.5)),
                ("fc2", nn.Linear(1024, classes)),
            ]
        )
    )


def tiny_vgg(channels: int, size: int, classes: int) -> nn.Module:
    """Two VGG blocks of two 3x3 convolutions with batch norm, then global average pooling."""

    def block(index: int, cin: int, cout: int) -> list[tuple[str, nn.Module]]:
        return [
            (f"conv{index}a", nn.Conv2d(cin, cout, 3, padding=1)),
            (f"bn{index}a", nn.BatchNorm2d(cout)),
            (f"relu{index}a", nn.ReLU()),
            (f"conv{index}b", nn.Conv2d(cout, cout, 3, padding=1)),
            (f"bn{index}b", nn.BatchNorm2d(cout)),
            (f"relu{index}b", nn.ReLU()),
            (f"pool{index}", nn.MaxPool2d(2)),
        ]

    layers = block(1, channels, 16) + block(2, 16, 32)
    layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(32, classes))]
    return nn.Sequential(OrderedDict(layers))


ARCHITECTURES: dict[str, Callable[[int, int, int], nn.Module]] = {
    "notebook": notebook_cnn,
    "tinyvgg": tiny_vgg,
}


def build_model(arch: str, channels: int, size: int, classes: int) -> nn.Module:
    """Build one of :data:`ARCHITECTURES` for the dataset's shape."""
    if arch not in ARCHITECTURES:
        raise ParameterError(f"Unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}.")
    return ARCHITECTURES[arch](channels, size, classes)


# ------------------------------------------------------------------------- runs
@dataclass(frozen=True)
class Snapshot:
    """One saved state of a run.

    Attributes:
        index: position in the run (0 is the untrained network).
        epoch: epochs completed (fractional for step snapshots).
        step: optimiser steps completed.
        metrics: ``test_accuracy``, ``test_loss``, ``train_loss`` (None before training), ``seconds``.
        weights: path of the state_dict file.
    """

    index: int
    epoch: float
    step: int
    metrics: dict[str, float | None]
    weights: Path

    @property
    def label(self) -> str:
        epoch = f"{self.epoch:g}"
        return f"epoch {epoch}" if self.index else "untrained"


@dataclass(frozen=True)
class Run:
    """A training run on disk: its settings and snapshots."""

    path: Path
    settings: dict[str, Any]
    snapshots: tuple[Snapshot, ...]

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(self.settings["classes"])

    @property
    def stopped(self) -> bool:
        """Whether training was stopped before all epochs ran."""
        return bool(self.settings.get("stopped", False))

    def snapshot(self, index: int = -1) -> Snapshot:
        try:
            return self.snapshots[index]
        except IndexError:
            raise ParameterError(f"Run {self.name} has snapshots 0..{len(self.snapshots) - 1}, not {index}.") from None

    def state_dict(self, index: int = -1) -> dict[str, torch.Tensor]:
        """The weights of a snapshot (loaded with ``weights_only=True``)."""
        path = self.snapshot(index).weights
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except FileNotFoundError as exc:
            raise RunError(f"Run {self.name}: the weights file {path.name} is missing.") from exc
        except Exception as exc:
            raise RunError(f"Run {self.name}: the weights file {path.name} is corrupt ({str(exc)[:80]}).") from exc

    def model(self, index: int = -1) -> nn.Module:
        """The network of a snapshot, in eval mode."""
        settings = self.settings
        model = build_model(settings["arch"], settings["channels"], settings["size"], len(self.classes))
        try:
            model.load_state_dict(self.state_dict(index))
        except RuntimeError as exc:
            raise RunError(f"Run {self.name}: the weights do not fit {settings['arch']} ({str(exc)[:120]}).") from exc
        return model.eval()

    def handle(self, index: int = -1, device: str | torch.device = "cpu") -> ModelHandle:
        """A :class:`ModelHandle` for a snapshot, usable by every technique."""
        snapshot = self.snapshot(index)
        settings = self.settings
        size = int(settings["size"])
        return ModelHandle(
            name=f"run:{self.name}",
            model=self.model(snapshot.index).to(resolve_device(device)),
            labels=self.classes,
            input_size=(size, size),
            resize_size=size,
            mean=tuple(settings["mean"]),
            std=tuple(settings["std"]),
            device=resolve_device(device),
            weights=f"snapshot {snapshot.index} ({snapshot.label}) @ {snapshot.weights.stat().st_mtime_ns}",
            grayscale=int(settings["channels"]) == 1,
        )

    def test_samples(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The saved test images ``(N, C, H, W)`` in [0, 1] and their labels."""
        path = self.path / "test_samples.pt"
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            return data["images"], data["labels"]
        except Exception as exc:
            raise RunError(f"Run {self.name}: test_samples.pt is missing or corrupt.") from exc

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(self.settings["mean"]).view(1, -1, 1, 1)
        std = torch.tensor(self.settings["std"]).view(1, -1, 1, 1)
        return (images - mean) / std


def _check_settings(settings: Any, name: str) -> dict[str, Any]:
    """The run.json of a run, each field of the type the lab wrote, or a RunError naming the first that is not."""
    if not isinstance(settings, dict):
        raise RunError(f"Run {name}: run.json does not hold the run's settings.")
    required = ("arch", "dataset", "channels", "size", "classes", "mean", "std")
    if missing := [key for key in required if key not in settings]:
        raise RunError(f"Run {name}: run.json lacks {', '.join(missing)}.")
    if settings["arch"] not in ARCHITECTURES:
        raise RunError(f"Run {name}: unknown architecture {str(settings['arch'])[:40]!r}.")

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)

    channels, size, classes = settings["channels"], settings["size"], settings["classes"]
    problems = {
        "channels": channels in (1, 3),
        "size": isinstance(size, int) and not isinstance(size, bool) and 8 <= size <= 512,
        "classes": isinstance(classes, list) and 1 <= len(classes) <= 1000 and all(isinstance(c, str) for c in classes),
        "mean": isinstance(settings["mean"], list)
        and len(settings["mean"]) == channels
        and all(number(v) for v in settings["mean"]),
        "std": isinstance(settings["std"], list)
        and len(settings["std"]) == channels
        and all(number(v) and v > 0 for v in settings["std"]),
        "created": number(settings.get("created", 0)),
        "seconds": number(settings.get("seconds", 0)),
    }
    if bad := [key for key, ok in problems.items() if not ok]:
        raise RunError(f"Run {name}: run.json has an invalid {', '.join(bad)}.")
    return settings


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)


def _save_snapshot(folder: Path, index: int, model: nn.Module, epoch: float, step: int, metrics: dict) -> Snapshot:
    snapshots = folder / "snapshots"
    weights = snapshots / f"{index:04d}.pt"
    state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    tmp = weights.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    tmp.replace(weights)
    _write_json(snapshots / f"{index:04d}.json", {"index": index, "epoch": epoch, "step": step, "metrics": metrics})
    return Snapshot(index, epoch, step, metrics, weights)


def load_run(path: str | Path) -> Run:
    """Read a run folder.

    Raises:
        RunError: when the folder, its ``run.json`` or its snapshots are missing or corrupt.
    """
    folder = Path(path)
    settings_file = folder / "run.json"
    if not folder.is_dir():
        raise RunError(f"There is no run folder at {folder}.")
    try:
        settings = json.loads(settings_file.read_text())
    except FileNotFoundError:
        raise RunError(f"{folder.name} is not a run: run.json is missing.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, RecursionError) as exc:
        raise RunError(f"Run {folder.name}: run.json is corrupt ({str(exc)[:80]}).") from exc
    settings = _check_settings(settings, folder.name)
    snapshots = []
    for meta_file in sorted((folder / "snapshots").glob("[0-9][0-9][0-9][0-9].json")):
        try:
            meta = json.loads(meta_file.read_text())
            snapshots.append(
                Snapshot(
                    int(meta["index"]),
                    float(meta["epoch"]),
                    int(meta["step"]),
                    dict(meta["metrics"]),
                    meta_file.with_suffix(".pt"),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, OSError, RecursionError) as exc:
            raise RunError(f"Run {folder.name}: {meta_file.name} is corrupt ({str(exc)[:80]}).") from exc
    if not snapshots:
        raise RunError(f"Run {folder.name} has no snapshots.")
    missing = [s.weights.name for s in snapshots if not s.weights.is_file()]
    if missing:
        raise RunError(f"Run {folder.name}: weights missing for {', '.join(missing[:3])}.")
    return Run(folder, settings, tuple(sorted(snapshots, key=lambda s: s.index)))


def list_runs(root: str | Path | None = None) -> tuple[list[Run], dict[str, str]]:
    """Every readable run under ``root`` (default :func:`runs_dir`), newest first, and for each
    damaged one the reason: one bad folder never hides the others."""
    runs, problems = [], {}
    root = Path(root) if root is not None else runs_dir()
    if not root.is_dir():
        return [], {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            runs.append(load_run(folder))
        except RunError as exc:
            problems[folder.name] = str(exc)
    runs.sort(key=lambda run: run.settings.get("created", 0), reverse=True)
    return runs, problems


def delete_run(path: str | Path) -> None:
    """Delete a run folder (only a folder that really is a run)."""
    folder = Path(path)
    if not (folder / "run.json").is_file():
        raise RunError(f"{folder} is not a run folder; nothing was deleted.")
    shutil.rmtree(folder)


def check_run_name(name: str) -> str:
    """Run names are folder names: letters, digits, ``_ . -``, at most 64 characters."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ParameterError(
            f"Run name {str(name)[:80]!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    return name


# ------------------------------------------------------------------ disk budget
@dataclass(frozen=True)
class RunEstimate:
    """What a run will write, known before it starts.

    Attributes:
        snapshots: how many snapshots it keeps.
        bytes: about how many bytes it writes in all.
        snapshot_bytes: bytes of one snapshot's weights.
    """

    snapshots: int
    bytes: int
    snapshot_bytes: int

    @property
    def text(self) -> str:
        return f"{self.snapshots} snapshots, about {self.bytes / 2**20:,.0f} MB"


def estimate_run(
    arch: str,
    *,
    channels: int,
    size: int,
    classes: int,
    train_size: int,
    epochs: int,
    batch_size: int,
    snapshot_every: int = 0,
) -> RunEstimate:
    """How many snapshots and bytes a run with these settings writes (the weights' sizes come from
    the architecture built on the meta device, so nothing is allocated)."""
    with torch.device("meta"):
        model = build_model(arch, channels, size, classes)
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values()) + 4096  # + pickle framing
    steps_per_epoch = -(-int(train_size) // max(1, int(batch_size)))
    total = steps_per_epoch * int(epochs)
    every = int(snapshot_every)
    extra = 0 if every <= 0 else total // every - total // math.lcm(every, steps_per_epoch)
    snapshots = 1 + int(epochs) + extra
    samples = TEST_SAMPLES * channels * size * size * 4
    return RunEstimate(snapshots, snapshots * (weights + 512) + samples + 4096, weights)


def estimate_for(dataset: str, arch: str, *, epochs: int, batch_size: int, snapshot_every: int = 0) -> RunEstimate:
    """:func:`estimate_run` for one of the lab's datasets, without loading it."""
    from .datasets import DATASET_SHAPES

    if dataset not in DATASET_SHAPES:
        raise ParameterError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASET_SHAPES)}.")
    train_size, channels, size, classes = DATASET_SHAPES[dataset]
    return estimate_run(
        arch,
        channels=channels,
        size=size,
        classes=classes,
        train_size=train_size,
        epochs=epochs,
        batch_size=batch_size,
        snapshot_every=snapshot_every,
    )


def folder_bytes(root: str | Path) -> int:
    """Bytes of every file under ``root`` (0 when it does not exist)."""
    total = 0
    for folder, _, files in os.walk(root):
        for file in files:
            try:
                total += os.stat(os.path.join(folder, file)).st_size
            except OSError:
                continue  # removed meanwhile
    return total


def check_budget(estimate: RunEstimate, root: str | Path | None = None) -> None:
    """Refuse a run that would pass :data:`MAX_SNAPSHOTS`, :data:`MAX_RUN_BYTES` or, with what the
    runs folder holds already, :data:`MAX_RUNS_BYTES`; the message says what to change."""
    if estimate.snapshots > MAX_SNAPSHOTS:
        raise ParameterError(
            f"This run would keep {estimate.snapshots} snapshots; the limit (MAX_SNAPSHOTS) is {MAX_SNAPSHOTS}. "
            "Take extra snapshots less often (a larger 'every N steps', or 0 for one per epoch) or train fewer epochs."
        )
    if estimate.bytes > MAX_RUN_BYTES:
        raise ParameterError(
            f"This run would write about {estimate.bytes / 2**20:,.0f} MB; the limit per run (MAX_RUN_BYTES) is "
            f"{MAX_RUN_BYTES / 2**20:,.0f} MB. Take fewer snapshots (fewer epochs, or extra snapshots less often)."
        )
    used = folder_bytes(root if root is not None else runs_dir())
    if used + estimate.bytes > MAX_RUNS_BYTES:
        raise ParameterError(
            f"The runs folder holds {used / 2**20:,.0f} MB and this run would add about "
            f"{estimate.bytes / 2**20:,.0f} MB, past the limit for all runs (MAX_RUNS_BYTES, "
            f"{MAX_RUNS_BYTES / 2**30:g} GB). Delete old runs or take fewer snapshots."
        )


def _claim_folder(folder: Path) -> None:
    """Create the run folder for this run alone: two trainings with one name never share it.

    The claim is the exclusive creation of ``run.json`` (``O_EXCL`` is atomic); a folder that
    exists already may be used only while it is empty.
    """
    if folder.exists() and not folder.is_dir():
        raise ParameterError(f"{folder} exists and is not a folder; choose another run name.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if any(path.name != "run.json" for path in folder.iterdir()):
            raise FileExistsError
        os.close(os.open(folder / "run.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        raise ParameterError(f"{folder} already exists; choose another run name.") from None
    except OSError as exc:
        raise ParameterError(f"Cannot create the run folder {folder}: {exc.strerror or exc}.") from exc
    (folder / "snapshots").mkdir()


# --------------------------------------------------------------------- training
@dataclass(frozen=True)
class Progress:
    """What ``on_step`` receives as ``preview`` while training."""

    epoch: float
    step: int
    total_steps: int
    train_loss: float
    history: tuple[dict[str, Any], ...]


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
    dataset: str = "digits",
    arch: str = "notebook",
    epochs: int = 10,
    seed: int = 0,
    out: str | Path | None = None,
    *,
    batch_size: int = 64,
    lr: float = 1e-3,
    snapshot_every: int = 0,
    device: str | torch.device = "cpu",
    on_step: Callable[[int, int, Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    data: Dataset | None = None,
) -> Run:
    """Train a small CNN and save a run folder with snapshots.

    Args:
        dataset: one of :data:`vis_core.datasets.DATASETS`.
        arch: one of :data:`ARCHITECTURES`.
        epochs: passes over the training set (1..:data:`MAX_EPOCHS`).
        seed: seeds the split (bundled datasets), initialisation, dropout and batch order.
        out: run folder, or a run name for a folder in :func:`runs_dir`; default
            ``<dataset>-<arch>-seed<seed>-<time>`` there. Must not exist (or be empty).
        batch_size: minibatch size.
        lr: Adam learning rate.
        snapshot_every: also snapshot every N optimiser steps (0: only per epoch).
        device: where to train.
        on_step: called after every step with ``(step, total_steps, Progress)``.
        should_stop: polled every step; when it returns True, training stops, the current
            state is saved as a last snapshot, and the run is marked ``stopped``.
        data: an already loaded :class:`Dataset` (skips loading ``dataset``).

    Returns:
        The :class:`Run` (also readable later with :func:`load_run`).

    Raises:
        ParameterError: a setting out of range, a name in use, or a run past the disk caps
            (:func:`check_budget`), before anything is written.
    """
    if not 1 <= int(epochs) <= MAX_EPOCHS:
        raise ParameterError(f"epochs must be between 1 and {MAX_EPOCHS}, got {epochs}.")
    if not 1 <= int(batch_size) <= MAX_BATCH:
        raise ParameterError(f"batch size must be between 1 and {MAX_BATCH}, got {batch_size}.")
    if not 0 < float(lr) <= 1:
        raise ParameterError(f"learning rate must be in (0, 1], got {lr}.")
    if dataset not in DATASETS and data is None:
        raise ParameterError(f"Unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    if arch not in ARCHITECTURES:
        raise ParameterError(f"Unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}.")
    resolved = resolve_device(device)
    data = data if data is not None else load_dataset(dataset, seed)
    folder = run_path(out if out is not None else f"{data.name}-{arch}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}")
    check_run_name(folder.name)
    check_budget(
        estimate_run(
            arch,
            channels=data.channels,
            size=data.size,
            classes=len(data.classes),
            train_size=len(data.train_y),
            epochs=int(epochs),
            batch_size=int(batch_size),
            snapshot_every=int(snapshot_every),
        ),
        folder.parent,
    )
    _claim_folder(folder)

    mean, std = data.normalization()
    settings: dict[str, Any] = {
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
        "device": str(resolved),
        "created": time.time(),
        "stopped": False,
    }
    _write_json(folder / "run.json", settings)
    torch.save(
        {"images": data.test_x[:TEST_SAMPLES].clone(), "labels": data.test_y[:TEST_SAMPLES].clone()},
        folder / "test_samples.pt",
    )
    norm_mean = torch.tensor(mean).view(1, -1, 1, 1)
    norm_std = torch.tensor(std).view(1, -1, 1, 1)
    train_x = ((data.train_x - norm_mean) / norm_std).to(resolved)
    train_y = data.train_y.to(resolved)
    test_x, test_y = (data.test_x - norm_mean) / norm_std, data.test_y

    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[resolved] if resolved.type == "cuda" else []):
        torch.manual_seed(seed)
        model = build_model(arch, data.channels, data.size, len(data.classes)).to(resolved)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        order = torch.Generator().manual_seed(seed)
        steps_per_epoch = (len(train_y) + batch_size - 1) // batch_size
        total = steps_per_epoch * int(epochs)

        def snapshot(epoch: float, step: int, train_loss: float | None) -> None:
            accuracy, test_loss = evaluate(model, test_x, test_y)
            metrics = {
                "test_accuracy": accuracy,
                "test_loss": test_loss,
                "train_loss": train_loss,
                "seconds": time.perf_counter() - started,
            }
            saved = _save_snapshot(folder, len(history), model, epoch, step, metrics)
            history.append({"index": saved.index, "epoch": epoch, "step": step, **metrics})

        snapshot(0.0, 0, None)
        step, stopped, running = 0, False, []
        for epoch in range(int(epochs)):
            model.train()
            permutation = torch.randperm(len(train_y), generator=order).to(resolved)
            running = []
            for start in range(0, len(train_y), batch_size):
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                index = permutation[start : start + batch_size]
                loss = F.cross_entropy(model(train_x[index]), train_y[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                running.append(loss.item())
                if snapshot_every and step % snapshot_every == 0 and step % steps_per_epoch:
                    snapshot(round(step / steps_per_epoch, 4), step, float(np.mean(running)))
                if on_step is not None:
                    on_step(step, total, Progress(step / steps_per_epoch, step, total, running[-1], tuple(history)))
            if stopped:
                if running:  # keep what was trained since the last snapshot
                    snapshot(round(step / steps_per_epoch, 4), step, float(np.mean(running)))
                break
            snapshot(float(epoch + 1), step, float(np.mean(running)))
    settings["stopped"] = stopped
    settings["seconds"] = time.perf_counter() - started
    _write_json(folder / "run.json", settings)
    return load_run(folder)


# -------------------------------------------------------------------- evolution
def first_conv(model: nn.Module) -> str:
    """Name of the first Conv2d of a network."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name
    raise ModelError("The network has no convolution layer.")


def filter_history(run: Run, layer: str | None = None) -> tuple[str, np.ndarray]:
    """The kernels of a conv layer at every snapshot: ``(S, out, in, kh, kw)``."""
    first = run.state_dict(0)
    layer = layer or first_conv(run.model(0))
    key = f"{layer}.weight"
    if key not in first:
        raise ParameterError(f"{layer} has no weights in run {run.name}.")
    stack = [run.state_dict(s.index)[key].numpy() for s in run.snapshots]
    return layer, np.stack(stack).astype(np.float32)


def weight_change(history: np.ndarray) -> np.ndarray:
    """How far each filter moved between consecutive snapshots: ``(S-1, out)`` L2 norms."""
    deltas = np.diff(history, axis=0)  # (S-1, out, ...): empty for a run stopped before its first step
    per_filter = int(np.prod(deltas.shape[2:]))
    return np.sqrt((deltas.reshape(deltas.shape[0], deltas.shape[1], per_filter) ** 2).sum(axis=2))


def feature_map_history(run: Run, image_index: int, layer: str) -> np.ndarray:
    """A test image's feature maps at ``layer`` for every snapshot: ``(S, C, H, W)``."""
    from .featuremaps import feature_maps_from_tensor

    images, _ = run.test_samples()
    if not 0 <= image_index < len(images):
        raise ParameterError(f"Test image {image_index} is out of range (0..{len(images) - 1}).")
    x = run.normalize(images[image_index : image_index + 1])
    maps = []
    for snapshot in run.snapshots:
        handle = run.handle(snapshot.index)
        maps.append(feature_maps_from_tensor(handle, x, [layer]).activations[layer])
    return np.stack(maps)


def training_curves(run: Run) -> list[dict[str, Any]]:
    """One row per snapshot: index, epoch, step and metrics (for plotting)."""
    return [{"index": s.index, "epoch": s.epoch, "step": s.step, **s.metrics} for s in run.snapshots]


def snapshot_choices(run: Run) -> Sequence[str]:
    return [f"{s.index}: {s.label}" for s in run.snapshots]
