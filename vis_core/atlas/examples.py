"""The pass over the image collection: each unit's top-k dataset examples and its statistics.

Images go through the model in fixed batches of :data:`BATCH` (batch ``b`` holds images
``b * BATCH ...``), whatever the executor, so every executor sees the same numbers. One forward
pass per batch captures every chosen layer (stopping after the deepest); per image and channel
it keeps the strongest activation and where it is, the sum and the count of exact zeros
(:func:`batch_stats`). :class:`PassState` folds batches into the running top-k by the channel's
maximum, one example per image at most (an image contributes one maximum per channel), ties
broken by the image's position in the collection, so the result does not depend on the order
batches arrive in.

The patches are cut afterwards (:class:`Patcher`), for the units about to be written: each
example's image is read again, shown as the model sees it (resized and centre-cropped), and
cropped to the receptive field of the strongest position (:func:`vis_core.projection.receptive_field`).
"""

from __future__ import annotations

import io
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..featuremaps import _capture_pass
from ..hooks import capture, run_forward
from ..models import ModelHandle
from ..projection import _LINEARISED, _linearised
from .collection import source_name, try_load

#: Images per forward pass of the collection pass (fixed: executors must batch alike).
BATCH = 16
#: Model views kept while patches are cut (each is one input-sized RGB picture).
_VIEWS = 256
#: Receptive fields found per batched backward pass.
_FIELDS_PER_PASS = 16
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class BatchResult:
    """One batch's numbers, per layer: ``max`` and ``argmax`` (flat position) ``(N, C)``,
    ``sum`` and ``zeros`` ``(N, C)``; ``ids`` the images' positions in the collection (the
    usable ones), ``bad`` how many of the batch's files the loader refused."""

    ids: np.ndarray
    bad: int
    layers: dict[str, dict[str, np.ndarray]]


def load_batch(handle: ModelHandle, refs: Sequence[str], first: int) -> tuple[torch.Tensor | None, np.ndarray, int]:
    """Decode and preprocess ``refs`` (collection positions ``first...``): the input batch, the
    positions of the images that loaded, and how many did not."""
    tensors, ids = [], []
    for offset, ref in enumerate(refs):
        image = try_load(ref)
        if image is not None:
            tensors.append(handle.preprocess(image))
            ids.append(first + offset)
    inputs = torch.cat(tensors) if tensors else None
    return inputs, np.asarray(ids, dtype=np.int64), len(refs) - len(ids)


def batch_stats(handle: ModelHandle, inputs: torch.Tensor, layers: Sequence[str]) -> dict[str, dict[str, np.ndarray]]:
    """One forward pass of ``inputs`` capturing ``layers``; per image and channel the max, where
    it is, the sum and the zero count."""
    source = {name: handle.layers[name].alias_of or name for name in layers}
    hooked = list(dict.fromkeys(source.values()))
    to_clone = {name for name in hooked if handle.layers[name].overwritten_in_place}
    outputs, _ = _capture_pass(handle, inputs.to(handle.device), hooked, to_clone, True)
    result = {}
    for name in layers:
        flat = outputs[source[name]].detach().float().flatten(2)  # (N, C, H*W)
        top, where = flat.max(dim=2)
        result[name] = {
            "max": top.cpu().numpy(),
            "argmax": where.cpu().numpy().astype(np.int64),
            "sum": flat.sum(dim=2, dtype=torch.float64).cpu().numpy(),
            "zeros": (flat == 0).sum(dim=2).cpu().numpy().astype(np.int64),
        }
    return result


def run_batch(handle: ModelHandle, refs: Sequence[str], first: int, layers: Sequence[str]) -> BatchResult:
    """Load, preprocess and measure one batch (what every executor runs per batch)."""
    inputs, ids, bad = load_batch(handle, refs, first)
    if inputs is None:
        return BatchResult(ids, bad, {})
    return BatchResult(ids, bad, batch_stats(handle, inputs, layers))


class PassState:
    """A layer's running top-k and sums over the batches seen so far (saved after each batch)."""

    def __init__(self, channels: int, k: int, positions: int) -> None:
        self.values = np.full((channels, k), -np.inf, dtype=np.float32)
        self.images = np.full((channels, k), -1, dtype=np.int64)
        self.where = np.full((channels, k), -1, dtype=np.int64)
        self.total = np.zeros(channels, dtype=np.float64)
        self.zeros = np.zeros(channels, dtype=np.int64)
        self.fires = np.zeros(channels, dtype=np.int64)
        self.maximum = np.full(channels, -np.inf, dtype=np.float32)
        self.counts = np.array([0, 0, positions], dtype=np.int64)  # images, bad images, positions per image

    def update(self, result: BatchResult, layer: str) -> None:
        self.counts[1] += result.bad
        if not len(result.ids):
            return
        numbers = result.layers[layer]
        values = np.nan_to_num(numbers["max"].T, nan=-np.inf)  # (C, N)
        channels, batch = values.shape
        candidates = np.concatenate([self.values, values], axis=1)
        images = np.concatenate([self.images, np.broadcast_to(result.ids, (channels, batch))], axis=1)
        where = np.concatenate([self.where, numbers["argmax"].T], axis=1)
        tiebreak = np.where(images < 0, np.iinfo(np.int64).max, images)
        order = np.lexsort((tiebreak, -candidates.astype(np.float64)), axis=1)[:, : self.values.shape[1]]
        self.values = np.take_along_axis(candidates, order, axis=1)
        self.images = np.take_along_axis(images, order, axis=1)
        self.where = np.take_along_axis(where, order, axis=1)
        self.total += numbers["sum"].sum(axis=0)
        self.zeros += numbers["zeros"].sum(axis=0)
        self.fires += (numbers["max"] > 0).sum(axis=0)
        self.maximum = np.maximum(self.maximum, values.max(axis=1))
        self.counts[0] += batch

    def stats(self, channel: int) -> dict[str, Any]:
        images, _, positions = (int(v) for v in self.counts)
        values = max(1, images * positions)
        return {
            "mean": float(self.total[channel] / values),
            "max": float(self.maximum[channel]) if images else 0.0,
            "zero_share": float(self.zeros[channel] / values),
            "fires_on": int(self.fires[channel]),
            "images": images,
        }

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **{name: getattr(self, name) for name in _FIELDS})
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PassState:
        state = cls.__new__(cls)
        with np.load(io.BytesIO(data)) as arrays:
            for name in _FIELDS:
                setattr(state, name, arrays[name].copy())
        return state


_FIELDS = ("values", "images", "where", "total", "zeros", "fires", "maximum", "counts")


class Patcher:
    """Cuts example patches: images read again as the model sees them, receptive fields cached."""

    def __init__(self, handle: ModelHandle, refs: Sequence[str]) -> None:
        self.handle = handle
        self.refs = refs
        self.views: OrderedDict[int, tuple[np.ndarray, tuple[float, float, float, float]]] = OrderedDict()
        self.fields: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def examples(self, layer: str, channel: int, state: PassState) -> tuple[list[dict[str, Any]], list[np.ndarray]]:
        """The channel's examples, best first (JSON-ready), and their patches as uint8 arrays."""
        width = self.handle.layers[layer].output_shape[2]
        chosen = [
            (float(value), int(image), divmod(int(where), width))
            for value, image, where in zip(state.values[channel], state.images[channel], state.where[channel])
            if image >= 0 and np.isfinite(value)
        ]
        examples, patches = [], []
        for value, image, (y, x) in chosen:
            top, left, bottom, right = self._field(layer, y, x)
            view, (left_px, top_px, right_px, bottom_px) = self._view(image)
            scale_x = (right_px - left_px) / view.shape[1]
            scale_y = (bottom_px - top_px) / view.shape[0]
            box = [
                int(round(left_px + left * scale_x)),
                int(round(top_px + top * scale_y)),
                int(round(left_px + right * scale_x)),
                int(round(top_px + bottom * scale_y)),
            ]
            source = source_name(self.refs[image])
            examples.append({"source": source, "image": image, "activation": value, "position": [y, x], "box": box})
            patches.append(view[top:bottom, left:right])
        return examples, patches

    def _field(self, layer: str, y: int, x: int) -> Box:
        if layer not in self.fields:
            self.fields[layer] = layer_fields(self.handle, layer)
        rows, cols = self.fields[layer]
        return int(rows[y, 0]), int(cols[x, 0]), int(rows[y, 1]), int(cols[x, 1])

    def _view(self, image: int) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        if image in self.views:
            self.views.move_to_end(image)
            return self.views[image]
        picture = try_load(self.refs[image])
        if picture is None:  # readable during the pass, gone now: a grey patch, the numbers stand
            height, width = self.handle.input_size
            entry = (np.full((height, width, 3), 128, dtype=np.uint8), (0.0, 0.0, float(width), float(height)))
        else:
            entry = (np.asarray(self.handle.model_view(picture).convert("RGB")), self.handle.crop_box(picture.size))
        self.views[image] = entry
        if len(self.views) > _VIEWS:
            self.views.popitem(last=False)
        return entry


def layer_fields(handle: ModelHandle, layer: str) -> tuple[np.ndarray, np.ndarray]:
    """Every receptive field of ``layer`` at once: ``rows`` ``(H, 2)`` and ``cols`` ``(W, 2)``, so
    that the field of ``(y, x)`` is ``(rows[y, 0], cols[x, 0], rows[y, 1], cols[x, 1])`` (top, left,
    bottom, right; exclusive), as :func:`vis_core.projection.receptive_field` gives it.

    Convolutions, pooling and pointwise layers are separable: which input rows reach output row
    ``y`` does not depend on the column, and the other way round. So the fields of the diagonal
    positions ``(k, k)`` give every row's and every column's span: ``max(H, W)`` probes, batched,
    through the same linearised twin, instead of one pass per position.
    """
    _, height, width = handle.layers[layer].output_shape
    probes = [(min(k, height - 1), min(k, width - 1)) for k in range(max(height, width))]
    rows = np.zeros((height, 2), dtype=np.int64)
    cols = np.zeros((width, 2), dtype=np.int64)
    for start in range(0, len(probes), _FIELDS_PER_PASS):
        group = probes[start : start + _FIELDS_PER_PASS]
        for (y, x), (top, left, bottom, right) in zip(group, receptive_fields(handle, layer, group)):
            rows[y] = top, bottom
            cols[x] = left, right
    return rows, cols


def receptive_fields(handle: ModelHandle, layer: str, positions: Sequence[tuple[int, int]]) -> list[Box]:
    """:func:`vis_core.projection.receptive_field` of several positions of ``layer`` in one batched
    pass through the same linearised twin (its batch elements are independent, so each box is the
    one the single-position call gives): ``(top, left, bottom, right)`` each, bottom/right exclusive."""
    height, width = handle.input_size
    with handle.lock:
        twin = _LINEARISED.get(handle)
        if twin is None:
            twin = _LINEARISED[handle] = _linearised(handle.model)
        probe = torch.ones(len(positions), handle.input_channels, height, width, device=handle.device)
        probe.requires_grad_(True)
        rows = torch.as_tensor([y for y, _ in positions], device=handle.device)
        cols = torch.as_tensor([x for _, x in positions], device=handle.device)
        with torch.enable_grad(), capture(twin, [layer], clone=False, detach=False, stop_when_done=True) as record:
            run_forward(twin, probe)
            output = record.outputs[layer]
            picked = output[torch.arange(len(positions), device=handle.device), :, rows, cols]
            (gradient,) = torch.autograd.grad(picked.sum(), probe)
    support = gradient.abs().sum(dim=1) > 0  # (P, H, W)
    boxes = []
    for mask in support:
        found_rows = torch.nonzero(mask.any(dim=1)).flatten()
        found_cols = torch.nonzero(mask.any(dim=0)).flatten()
        if found_rows.numel() == 0:
            boxes.append((0, 0, height, width))
        else:
            boxes.append(
                (int(found_rows.min()), int(found_cols.min()), int(found_rows.max()) + 1, int(found_cols.max()) + 1)
            )
    return boxes
