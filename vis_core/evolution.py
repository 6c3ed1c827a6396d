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


def relative_change(history: np.ndarray) -> np.ndarray:
    """How far the whole layer moved between consecutive snapshots, as a share of its starting
    size: ``||W_s - W_{s-1}|| / ||W_0||`` for ``s = 1..S-1`` (``(S-1,)``; 0.1 = a tenth)."""
    flat = history.reshape(history.shape[0], -1).astype(np.float64)
    start = float(np.linalg.norm(flat[0])) or 1.0
    return np.linalg.norm(np.diff(flat, axis=0), axis=1) / start


def likeness_to_start(history: np.ndarray) -> np.ndarray:
    """How much each snapshot's kernels still look like their random start: the Pearson
    correlation of every filter with its own initial weights, averaged (``(S,)``; 1.0 at the
    start, near 0 once what was learned has replaced the noise)."""
    flat = history.reshape(history.shape[0], history.shape[1], -1).astype(np.float64)
    centred = flat - flat.mean(axis=2, keepdims=True)
    norms = np.linalg.norm(centred, axis=2)
    dots = (centred * centred[:1]).sum(axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.where(norms * norms[:1] > 0, dots / (norms * norms[:1]), 0.0)
    return correlation.mean(axis=1)


def smoothness(history: np.ndarray) -> np.ndarray:
    """How stroke-like the kernels of each snapshot are: the correlation of every weight with its
    right and lower neighbours inside its kernel, averaged over filters and input channels
    (``(S,)``; random noise is near 0, smooth strokes and edges approach 1)."""
    kernels = history.reshape(history.shape[0], -1, history.shape[-2], history.shape[-1]).astype(np.float64)
    count = kernels.shape[:2]
    a = np.concatenate([kernels[..., :, :-1].reshape(*count, -1), kernels[..., :-1, :].reshape(*count, -1)], axis=2)
    b = np.concatenate([kernels[..., :, 1:].reshape(*count, -1), kernels[..., 1:, :].reshape(*count, -1)], axis=2)
    a = a - a.mean(axis=2, keepdims=True)
    b = b - b.mean(axis=2, keepdims=True)
    denominator = np.linalg.norm(a, axis=2) * np.linalg.norm(b, axis=2)
    with np.errstate(divide="ignore", invalid="ignore"):
        correlation = np.where(denominator > 0, (a * b).sum(axis=2) / denominator, 0.0)
    return correlation.mean(axis=1)
