"""How a run's network changed over its snapshots: its first filters, how far they moved, a test
image's feature maps, and the training curves."""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import ModelError, ParameterError
from .featuremaps import feature_maps_from_tensor
from .runs import Run
from .surgery import first_conv


def filter_history(run: Run, layer: str | None = None) -> tuple[str, np.ndarray]:
    """The kernels of a conv layer (default: the first) at every snapshot: ``(S, out, in, kh, kw)``."""
    first = run.state_dict(0)
    if not layer:
        found = first_conv(run.model(0))
        if found is None:
            raise ModelError("The network has no convolution layer.")
        layer = found[0]
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
