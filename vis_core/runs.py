"""Training runs on disk: where they live, what they are called, and how they are read and written.

A run lives in a folder of :func:`runs_dir` (``runs/<name>/``)::

    run.json                settings, dataset description, classes, normalisation
    test_samples.pt         the first test images and labels (for the evolution view)
    snapshots/0003.json     epoch, step and metrics of snapshot 3
    snapshots/0003.pt       its weights: ``torch.save`` of a state_dict

Snapshot 0 is the untrained network; then one after every epoch (and optionally every N
steps). Weights are always read back with ``torch.load(..., weights_only=True)``.

How much a run may write is :mod:`vis_core.disk_budget`'s matter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .arrays import normalise
from .errors import ParameterError, VisCoreError
from .loading import resolve_device
from .models import ModelHandle
from .nets import ARCHITECTURES, build_model

FORMAT_VERSION = 1
#: Test images kept with a run for the evolution view.
TEST_SAMPLES = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class RunError(VisCoreError, ValueError):
    """A run folder is missing, incomplete or corrupt."""


# ----------------------------------------------------------- the folder and names
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


def check_run_name(name: str) -> str:
    """Run names are folder names: letters, digits, ``_ . -``, at most 64 characters."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ParameterError(
            f"Run name {str(name)[:80]!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit."
        )
    return name


def default_run_name(dataset: str, arch: str, seed: int) -> str:
    """The name of a run nobody named: ``<dataset>-<arch>-seed<seed>-<date>-<time>``."""
    return f"{dataset}-{arch}-seed{seed}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_folder(name: str) -> Path:
    """The folder of the run called ``name`` in :func:`runs_dir` (the name checked first)."""
    return runs_dir() / check_run_name(name)


def new_run_folder(name: str) -> Path:
    """The folder for a new run called ``name``, refused early when the name is not allowed or in
    use. Training claims the folder atomically when it starts (:func:`claim_folder`); this answers
    before any work is queued."""
    folder = run_folder(name)
    if folder.exists():
        raise ParameterError(f"A run named {name} exists already; choose another name.")
    return folder


def run_path(name_or_path: str | Path) -> Path:
    """A run given by name (a folder in :func:`runs_dir`) or by path (anything with a separator)."""
    text = str(name_or_path)
    if os.sep in text or (os.altsep and os.altsep in text) or Path(text).is_dir():
        return Path(text)
    return run_folder(text)


# ----------------------------------------------------------------------- reading
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
        """[0, 1] images as the run's networks take them (its training images' mean and std)."""
        return normalise(images, self.settings["mean"], self.settings["std"])


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


# ----------------------------------------------------------------------- writing
def claim_folder(folder: Path) -> None:
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


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)


def save_settings(folder: Path, settings: dict[str, Any]) -> None:
    """Write (or rewrite) the run's ``run.json``."""
    _write_json(folder / "run.json", settings)


def save_test_samples(folder: Path, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Keep the first :data:`TEST_SAMPLES` test images and labels with the run."""
    torch.save(
        {"images": images[:TEST_SAMPLES].clone(), "labels": labels[:TEST_SAMPLES].clone()},
        folder / "test_samples.pt",
    )


def save_snapshot(folder: Path, index: int, model: nn.Module, epoch: float, step: int, metrics: dict) -> Snapshot:
    """Write snapshot ``index``: the model's weights and, beside them, its epoch, step and metrics."""
    snapshots = folder / "snapshots"
    weights = snapshots / f"{index:04d}.pt"
    state = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    tmp = weights.with_suffix(".pt.tmp")
    torch.save(state, tmp)
    tmp.replace(weights)
    _write_json(snapshots / f"{index:04d}.json", {"index": index, "epoch": epoch, "step": step, "metrics": metrics})
    return Snapshot(index, epoch, step, metrics, weights)
