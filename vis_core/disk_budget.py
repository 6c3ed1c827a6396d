"""How much the training lab may write, checked before a run starts.

Anything a user can make the server write has a cap per item and a cap in total, and both are
checked against an estimate before any work starts: :data:`MAX_SNAPSHOTS` and
:data:`MAX_RUN_BYTES` per run, :data:`MAX_RUNS_BYTES` for the whole runs folder.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .datasets import DATASET_SHAPES
from .errors import ParameterError
from .nets import build_model
from .runs import TEST_SAMPLES, runs_dir

#: Most snapshots one run may keep (the untrained one, one per epoch, and extra step snapshots).
MAX_SNAPSHOTS = 120
#: Most bytes one run may write, and all runs together in the runs folder.
MAX_RUN_BYTES = 2**30
MAX_RUNS_BYTES = 4 * 2**30


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
