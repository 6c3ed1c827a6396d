"""The learned filters (convolution kernels) of any layer, in forms that can be looked at.

A 2-D convolution layer holds a weight tensor ``W`` of shape ``(out, in / groups, kh, kw)``:
output channel ``o`` is ``sum_i W[o, i] * x_i`` over its group's input channels. How to look at
it depends on the layer (Zeiler & Fergus 2014 show first-layer kernels as colour patches):

* ``rgb``: a first layer on colour images: each kernel is a small colour image.
* ``gray``: a first layer on greyscale images: each kernel is a small signed map.
* ``depthwise``: one ``kh x kw`` kernel per channel (``groups == in == out``).
* ``pointwise``: 1x1 kernels mix channels only: the layer is an ``out x in`` matrix.
* ``grouped`` / ``standard``: per output channel, its ``in`` kernels laid out, or reduced
  over the input channels (L2 norm or mean) to one ``kh x kw`` map.

The L2 norm of each filter shows dead or tiny filters at a glance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch import nn

from .errors import ParameterError
from .models import ModelHandle


@dataclass(frozen=True)
class Filters:
    """The kernels of one convolution layer.

    Attributes:
        layer: layer name.
        weight: ``(out, in_per_group, kh, kw)`` float32.
        bias: ``(out,)`` or None.
        groups: convolution groups.
        kind: ``rgb``, ``gray``, ``depthwise``, ``pointwise``, ``grouped`` or ``standard``.
        norms: L2 norm of each output channel's kernel, ``(out,)``.
    """

    layer: str
    weight: np.ndarray
    bias: np.ndarray | None
    groups: int
    kind: str

    @property
    def norms(self) -> np.ndarray:
        return np.sqrt((self.weight.reshape(self.weight.shape[0], -1).astype(np.float64) ** 2).sum(axis=1))

    @property
    def out_channels(self) -> int:
        return int(self.weight.shape[0])

    @property
    def in_per_group(self) -> int:
        return int(self.weight.shape[1])

    def reduced(self, how: str = "l2") -> np.ndarray:
        """One ``(kh, kw)`` map per output channel: L2 norm or mean over its input channels
        (for one input channel, the signed kernel itself)."""
        if self.in_per_group == 1:
            return self.weight[:, 0]
        if how == "l2":
            return np.sqrt((self.weight.astype(np.float64) ** 2).sum(axis=1)).astype(np.float32)
        if how == "mean":
            return self.weight.mean(axis=1)
        raise ParameterError(f"Unknown reduction {how!r}; use 'l2' or 'mean'.")

    def signed(self, how: str = "l2") -> bool:
        """Whether :meth:`reduced` with ``how`` keeps the weights' signs (zero is neutral), rather
        than giving magnitudes: all but an L2 norm over several input channels."""
        return how != "l2" or self.in_per_group == 1

    def matrix(self) -> np.ndarray:
        """A 1x1 layer as its ``(out, in_per_group)`` mixing matrix."""
        return self.weight[:, :, 0, 0] if self.weight.shape[2:] == (1, 1) else self.weight.mean(axis=(2, 3))

    def rgb(self, normalize: str = "filter") -> np.ndarray:
        """Kernels with 3 input channels as ``(out, kh, kw, 3)`` colour images in [0, 1].

        ``filter``: each kernel scaled by its own largest absolute weight (its shape shows);
        ``layer``: all by the layer's largest (their strengths compare). Zero is mid-grey.
        """
        if self.in_per_group != 3:
            raise ParameterError(f"{self.layer} has {self.in_per_group} input channels per filter, not 3 (RGB).")
        images = self.weight.transpose(0, 2, 3, 1).astype(np.float64)
        if normalize == "filter":
            scale = np.abs(images).reshape(len(images), -1).max(axis=1).reshape(-1, 1, 1, 1)
        elif normalize == "layer":
            scale = np.full((len(images), 1, 1, 1), np.abs(images).max())
        else:
            raise ParameterError(f"Unknown normalisation {normalize!r}; use 'filter' or 'layer'.")
        return (0.5 + 0.5 * images / np.maximum(scale, 1e-12)).astype(np.float32)

    def dead(self, fraction: float = 1e-3) -> list[int]:
        """Filters whose norm is below ``fraction`` of the median norm (dead or tiny)."""
        norms = self.norms
        threshold = fraction * float(np.median(norms)) if norms.size else 0.0
        return [int(i) for i in np.flatnonzero(norms <= threshold)]


def conv_layers(handle: ModelHandle, block: str | None = None) -> list[str]:
    """Names of the Conv2d layers of the model (or of one block), in forward order."""
    names = []
    for name, info in handle.layers.items():
        if isinstance(handle.modules[name], nn.Conv2d) and (
            block is None or name == block or name.startswith(block + ".")
        ):
            names.append(info.name)
    return names


def filters(handle: ModelHandle, layer: str) -> Filters:
    """The kernels of a Conv2d layer.

    Raises:
        ParameterError: when ``layer`` is not a 2-D convolution (the message lists the
            convolutions inside it, if any).
    """
    module = handle.modules.get(layer)
    if module is None:
        handle.layer(layer)  # raises with suggestions
    if not isinstance(module, nn.Conv2d):
        inside = conv_layers(handle, layer)
        hint = f" It contains: {', '.join(inside[:6])}." if inside else ""
        raise ParameterError(f"{layer} is a {type(module).__name__}, not a convolution, so it has no filters.{hint}")
    with handle.guard():
        weight = module.weight.detach().float().cpu().numpy().copy()
        bias = None if module.bias is None else module.bias.detach().float().cpu().numpy().copy()
    _, in_per_group, kh, kw = weight.shape
    groups = module.groups
    if groups == module.in_channels and in_per_group == 1 and groups > 1:
        kind = "depthwise"
    elif kh == kw == 1:
        kind = "pointwise"
    elif groups > 1:
        kind = "grouped"
    elif in_per_group == 3:
        kind = "rgb"
    elif in_per_group == 1:
        kind = "gray"
    else:
        kind = "standard"
    return Filters(layer=layer, weight=weight, bias=bias, groups=groups, kind=kind)
