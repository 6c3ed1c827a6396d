"""Occlusion (Zeiler & Fergus 2014), through Captum, with a coarse first picture."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F

from ..models import ModelHandle
from .registry import RawMap, pixels, register


def default_window(size: int) -> int:
    """The patch side for an input of ``size`` pixels: an eighth of it, at least 4."""
    return max(4, size // 8)


def _captum_occlusion(handle: ModelHandle, inputs: torch.Tensor, target: int, window: int, stride: int) -> torch.Tensor:
    from captum.attr import Occlusion

    channels = inputs.shape[1]
    with handle.guard() as model:
        result = Occlusion(model).attribute(
            inputs,
            target=target,
            sliding_window_shapes=(channels, window, window),
            strides=(channels, stride, stride),
            baselines=0.0,
            perturbations_per_eval=32,
        )
    return torch.as_tensor(pixels(result, signed=True))


def positions(handle: ModelHandle, window: int = 0) -> int:
    """How many patch positions the exact map tries (Captum's count: the last may overhang)."""
    height, width = handle.input_size
    window = int(window) or default_window(width)
    stride = max(2, window // 2)
    return (math.ceil((height - window) / stride) + 1) * (math.ceil((width - window) / stride) + 1)


@register(
    "occlusion",
    "Occlusion",
    signed=True,
    speed="long",
    first_agreement=0.9,
    stages=True,
    passes=lambda handle, layer, options: (1.0 + positions(handle, options.get("window", 0)), 0.0),
    library="captum (Occlusion)",
    summary="A grey patch slid over the image: how much the score drops when each part is hidden.",
)
def occlusion(
    handle: ModelHandle, inputs: torch.Tensor, target: int, *, window: int = 0, progressive: bool = False, **_
) -> Iterator[RawMap]:
    """Patches of ``window`` pixels (default :func:`default_window`) slid by half a window.

    Progressive: first the patches side by side (a stride of a whole window: about a quarter of
    the positions), their score drops placed at the patch centres and interpolated bilinearly;
    then the exact map."""
    height, width = inputs.shape[-2:]
    window = int(window) or default_window(width)
    stride = max(2, window // 2)
    if progressive and stride < window:
        blocks = _captum_occlusion(handle, inputs, target, window, window)
        rows = torch.clamp(torch.arange(window // 2, height + window // 2, window), max=height - 1)
        cols = torch.clamp(torch.arange(window // 2, width + window // 2, window), max=width - 1)
        grid = blocks[rows][:, cols]
        values = F.interpolate(grid[None, None], size=(height, width), mode="bilinear", align_corners=False)[0, 0]
        yield RawMap(
            values.numpy(),
            target,
            approximation=f"occlusion with {len(rows) * len(cols)} side-by-side patches, interpolated",
        )
    yield RawMap(_captum_occlusion(handle, inputs, target, window, stride).numpy(), target)
