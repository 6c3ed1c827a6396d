"""Feature maps: what every layer computes for one image, from a single forward pass.

Zeiler & Fergus (2014) and Yosinski et al. (2015) show that looking at the activations
``A_l = f_l(...f_1(x))`` of each layer ``l`` reveals the hierarchy a CNN builds: early
layers respond to edges and colours at high resolution, deep layers to parts and objects
at low resolution with many more, sparser channels.

One forward pass with hooks on every requested layer gives all of it; when the classifier
is not needed the pass stops after the deepest requested layer. In-place ReLU modules run
out of place during the pass only when a requested output would be overwritten by one, and
only outputs overwritten by in-place functional calls are cloned (the layer index knows
both), so nothing is copied twice (``benchmarks/`` measures the cost against a bare forward
pass).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from PIL import Image

from .errors import ParameterError
from .hooks import capture, run_forward
from .models import ModelHandle
from .prediction import Prediction, top_k


@dataclass(frozen=True)
class LayerStats:
    """Summary numbers of one layer's activation for the cross-layer chart.

    Attributes:
        name: layer name.
        mean: mean activation over all channels and positions.
        zero_fraction: fraction of values that are exactly zero (a ReLU's "off" units).
        channels: number of channels.
        spatial: ``H*W`` positions per channel.
    """

    name: str
    mean: float
    zero_fraction: float
    channels: int
    spatial: int


@dataclass(frozen=True)
class ChannelSummary:
    """Per-channel numbers of one layer's activation: how strong each channel is, and which
    maps cannot be read as a picture.

    Attributes:
        layer: layer name.
        mean, max: ``(C,)`` each channel's mean and largest value.
        zero_fraction: ``(C,)`` share of exact zeros (a ReLU's "off" units).
        finite: ``(C,)`` whether every value of the channel is a number (no NaN or infinity).
        flat: ``(C,)`` whether the channel has one finite value everywhere (one flat colour).
    """

    layer: str
    mean: np.ndarray
    max: np.ndarray
    zero_fraction: np.ndarray
    finite: np.ndarray
    flat: np.ndarray

    @classmethod
    def of(cls, layer: str, array: np.ndarray) -> ChannelSummary:
        rows = array.reshape(array.shape[0], -1)
        finite = np.isfinite(rows).all(axis=1)
        maxima, minima = rows.max(axis=1), rows.min(axis=1)
        return cls(
            layer=layer,
            mean=rows.mean(axis=1),
            max=maxima,
            zero_fraction=(rows == 0).mean(axis=1),
            finite=finite,
            flat=finite & (maxima == minima),
        )

    def strongest(self, n: int, by: str = "mean") -> list[int]:
        """The ``n`` channels with the largest mean or max, strongest first (ties by index)."""
        return [int(i) for i in np.argsort(-self._score(by), kind="stable")[: max(0, n)]]

    def rank(self, channel: int, by: str = "mean") -> int:
        """1 for the strongest channel: one more than the channels that are stronger."""
        score = self._score(by)
        return 1 + int((score > score[channel]).sum())

    def _score(self, by: str) -> np.ndarray:
        if by not in ("mean", "max"):
            raise ParameterError(f"Unknown ranking {by!r}; use 'mean' or 'max'.")
        return self.mean if by == "mean" else self.max


@dataclass(frozen=True)
class ChannelPages:
    """``count`` channels shown ``size`` at a time, in pages numbered from 1."""

    count: int
    size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.count / self.size))

    def page_of(self, channel: int) -> int:
        """The page that shows ``channel``."""
        return channel // self.size + 1

    def channels(self, page: int) -> list[int]:
        """The channels on ``page``."""
        return list(range((page - 1) * self.size, min(self.count, page * self.size)))


@dataclass(frozen=True)
class FeatureMaps:
    """Activations of several layers for one image.

    Attributes:
        activations: layer name -> ``(C, H, W)`` float32 array (vectors are ``(C, 1, 1)``),
            read-only, in execution order.
        logits: the model's output for the image when the pass ran to the end, else None.
        model: the model's key (name and weights).
        seconds: wall time of the forward pass.
    """

    activations: dict[str, np.ndarray]
    logits: np.ndarray | None
    model: str
    seconds: float
    _stats: list[LayerStats] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def layers(self) -> list[str]:
        """Layer names, in execution order."""
        return list(self.activations)

    def stats(self) -> list[LayerStats]:
        """Mean activation and fraction of zeros of every captured layer.

        Computed on the first call and kept (the arrays are read-only, so it cannot go stale):
        the dashboard asks on every rerun of a cached result.
        """
        if self._stats is not None:
            return list(self._stats)
        rows = []
        for name, array in self.activations.items():
            rows.append(
                LayerStats(
                    name=name,
                    mean=float(array.mean(dtype=np.float64)),
                    zero_fraction=float(np.count_nonzero(array == 0) / array.size),
                    channels=int(array.shape[0]),
                    spatial=int(array.shape[1] * array.shape[2]),
                )
            )
        object.__setattr__(self, "_stats", rows)  # a memo, not state: frozen for callers
        return list(rows)

    def channel_summary(self, layer: str) -> ChannelSummary:
        """Mean, maximum, zeros, flat and non-finite maps of every channel of ``layer``."""
        return ChannelSummary.of(layer, self._get(layer))

    def top_channels(self, layer: str, n: int, by: str = "mean") -> list[int]:
        """Indices of the ``n`` channels of ``layer`` with the largest mean or max activation."""
        return self.channel_summary(layer).strongest(n, by)

    def channel(self, layer: str, index: int) -> np.ndarray:
        """One channel ``(H, W)`` of ``layer``."""
        array = self._get(layer)
        if not 0 <= index < array.shape[0]:
            raise ParameterError(f"Channel {index} is out of range for {layer} (0..{array.shape[0] - 1}).")
        return array[index]

    def prediction(self, handle: ModelHandle, k: int = 5) -> Prediction | None:
        """Top-k classes from the same pass, when it ran to the end."""
        return None if self.logits is None else top_k(handle, self.logits, k)

    def _get(self, layer: str) -> np.ndarray:
        try:
            return self.activations[layer]
        except KeyError:
            raise ParameterError(
                f"Layer {layer!r} was not captured; captured: {', '.join(self.activations)[:200]}"
            ) from None


def _to_host(outputs: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Batch element 0 of each output as a read-only float32 ``(C, H, W)`` array.

    Vectors become ``(C, 1, 1)``; other ranks are dropped. On an accelerator every output is
    packed into one buffer first, so the copy to the host is one transfer and one
    synchronisation instead of one per layer.
    """
    tensors = {name: tensor.detach() for name, tensor in outputs.items() if tensor.dim() in (2, 4)}
    if not tensors:
        return {}
    if next(iter(tensors.values())).device.type == "cpu":  # numpy views: no copy, cheap indexing
        hosted = {}
        for name, tensor in tensors.items():
            array = (tensor if tensor.dtype == torch.float32 else tensor.float()).numpy()[0]
            hosted[name] = array[:, None, None] if array.ndim == 1 else array
    else:
        items = [(name, t[0] if t.dim() == 4 else t[0, :, None, None]) for name, t in tensors.items()]
        flat = torch.cat([item.reshape(-1).to(torch.float32) for _, item in items]).cpu()
        hosted, offset = {}, 0
        for name, item in items:
            size = item.numel()
            hosted[name] = flat[offset : offset + size].view(item.shape).numpy()
            offset += size
    for array in hosted.values():
        array.flags.writeable = False
    return hosted


def feature_maps(
    handle: ModelHandle,
    image: Image.Image,
    layers: Sequence[str] | None = None,
) -> FeatureMaps:
    """Capture the activations of ``layers`` (default: every layer) for ``image``.

    Args:
        handle: the model.
        image: an RGB PIL image (see :func:`vis_core.load_image`).
        layers: qualified layer names; ``None`` for every layer with a vector or
            ``(C, H, W)`` output, in which case the pass runs to the end and ``logits`` is set.

    Returns:
        A :class:`FeatureMaps` whose arrays are detached copies, safe to keep.

    Raises:
        ParameterError: for an unknown layer or one whose output is not a feature map.
    """
    return feature_maps_from_tensor(handle, handle.preprocess(image), layers)


def feature_maps_from_tensor(
    handle: ModelHandle,
    inputs: torch.Tensor,
    layers: Sequence[str] | None = None,
) -> FeatureMaps:
    """:func:`feature_maps` for an already preprocessed ``(1, C, H, W)`` input tensor."""
    if layers is None:
        names = [info.name for info in handle.layers.values() if len(info.output_shape) in (1, 3)]
        stop_early = False
    else:
        names = list(dict.fromkeys(layers))
        for name in names:
            info = handle.layer(name)
            if len(info.output_shape) not in (1, 3):
                raise ParameterError(f"{name} outputs shape {info.output_shape}, which is not a feature map.")
        stop_early = True
    inputs = inputs.to(handle.device)
    source = {name: handle.layers[name].alias_of or name for name in names}  # one hook per distinct output
    hooked = list(dict.fromkeys(source.values()))
    to_clone = {name for name in hooked if handle.layers[name].overwritten_in_place}
    start = time.perf_counter()
    outputs, logits = _capture_pass(handle, inputs, hooked, to_clone, stop_early)
    seconds = time.perf_counter() - start
    arrays = _to_host(outputs)
    activations = {name: arrays[source[name]] for name in names if source[name] in arrays}
    logit_array = None if logits is None else logits.detach().float().cpu().reshape(-1).numpy()
    return FeatureMaps(activations=activations, logits=logit_array, model=handle.key, seconds=seconds)


def _capture_pass(
    handle: ModelHandle,
    inputs: torch.Tensor,
    names: list[str],
    to_clone: set[str],
    stop_early: bool,
) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    out_of_place = handle.needs_out_of_place(names)
    with handle.guard() as model, torch.no_grad():
        with capture(
            model, names, clone=to_clone, stop_when_done=stop_early, out_of_place=out_of_place, modules=handle.modules
        ) as record:
            logits = run_forward(model, inputs)
        overwritten = record.overwritten()
        if overwritten:  # the index missed an in-place write: redo with clones, never return garbage
            with capture(model, names, clone=True, stop_when_done=stop_early, modules=handle.modules) as record:
                logits = run_forward(model, inputs)
    return record.outputs, logits
