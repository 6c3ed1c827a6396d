"""Random transforms that make feature visualisations robust (Olah et al. 2017, lucent).

A transform takes a batch of images in [0, 1] and a ``torch.Generator`` (all randomness comes
from it, so a seed reproduces an image on the CPU). Space uncovered by a shift, a shrink or a
rotation is grey (0.5). :func:`standard_transforms` gives the usual stack: pad, jitter, scale,
rotate, jitter; given the output size it is one bilinear resampling (:func:`random_affine`).
Also :func:`gaussian_blur`, for deep dream's gradient and the blurred substrate of the
deletion/insertion curves.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

GREY = 0.5
SCALES = [1 + (i - 5) / 50.0 for i in range(11)]
DEGREES = [*range(-10, 11), 0, 0, 0, 0, 0]


def pad(width: int, value: float = GREY) -> Transform:
    """Pad with grey."""
    return lambda x, g: F.pad(x, (width,) * 4, mode="constant", value=value)


def jitter(amount: int) -> Transform:
    """Random crop that removes ``amount`` pixels in total from each dimension."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        dx, dy = (int(v) for v in torch.randint(0, amount + 1, (2,), generator=g))
        return x[:, :, dy : dy + x.shape[2] - amount, dx : dx + x.shape[3] - amount]

    return apply


def roll(amount: int) -> Transform:
    """Random circular shift by up to ``amount`` pixels: jitter that keeps the size."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        dy, dx = (int(v) for v in torch.randint(-amount, amount + 1, (2,), generator=g))
        return torch.roll(x, shifts=(dy, dx), dims=(2, 3))

    return apply


def random_scale(scales: Sequence[float]) -> Transform:
    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        factor = scales[int(torch.randint(len(scales), (1,), generator=g))]
        size = (max(1, int(x.shape[2] * factor)), max(1, int(x.shape[3] * factor)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    return apply


def random_rotate(degrees: Sequence[float]) -> Transform:
    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        angle = math.radians(degrees[int(torch.randint(len(degrees), (1,), generator=g))])
        cos, sin = math.cos(angle), math.sin(angle)
        return resample(x - GREY, (cos, -sin, 0.0, sin, cos, 0.0), x.shape[2], x.shape[3]) + GREY

    return apply


def random_affine(
    scales: Sequence[float],
    degrees: Sequence[float],
    size: tuple[int, int],
    *,
    shift_before: int = 4,
    shift_after: int = 2,
) -> Transform:
    """Olah et al.'s whole transform stack as one bilinear resampling straight to ``size``.

    A random shift of up to ``shift_before`` pixels (what padding 12 and jittering 8 do), a
    random scale and rotation about the centre, and a random shift of up to ``shift_after``
    pixels of the result (the final jitter 4). Points that fall outside the image read grey,
    as the grey padding would give. One resampling instead of pad, crop, interpolate, rotate
    and crop: each of those costs a pass forward and backward.
    """
    height, width = size

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        factor = scales[int(torch.randint(len(scales), (1,), generator=g))]
        angle = math.radians(degrees[int(torch.randint(len(degrees), (1,), generator=g))])
        before = torch.randint(-shift_before, shift_before + 1, (2,), generator=g).tolist()
        after = torch.randint(-shift_after, shift_after + 1, (2,), generator=g).tolist()
        cos, sin = math.cos(angle) / factor, math.sin(angle) / factor
        # output -> input in normalised coordinates: input = A @ output + t
        ax, ay = 2 * after[1] / width, 2 * after[0] / height
        tx = cos * ax - sin * ay + 2 * before[1] / x.shape[3]
        ty = sin * ax + cos * ay + 2 * before[0] / x.shape[2]
        return resample(x - GREY, (cos, -sin, tx, sin, cos, ty), height, width) + GREY

    return apply


def resample(x: torch.Tensor, affine: tuple[float, ...], height: int, width: int) -> torch.Tensor:
    """Bilinear sampling of ``x`` at ``input = A @ output + t`` (normalised coordinates, zeros
    outside), to ``height`` x ``width``; ``affine`` is ``(a, b, tx, c, d, ty)``."""
    theta = torch.tensor([affine[:3], affine[3:]], dtype=x.dtype, device=x.device)
    shape = [x.shape[0], x.shape[1], height, width]
    grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def standard_transforms(size: tuple[int, int] | None = None) -> list[Transform]:
    """Olah et al.'s / lucent's standard set: pad 12, jitter 8, scale, rotate, jitter 4.

    With ``size``, all of it happens in one resampling to that size (:func:`random_affine`),
    so the network sees exactly ``size`` every step."""
    if size is None:
        return [pad(12), jitter(8), random_scale(SCALES), random_rotate(DEGREES), jitter(4)]
    return [random_affine(SCALES, DEGREES, size)]


def gaussian_blur(x: torch.Tensor, sigma: float, padding: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` (radius 3 sigma); ``sigma <= 0`` returns ``x``."""
    if sigma <= 0:
        return x
    radius = max(1, int(3 * sigma))
    grid = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(grid**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).view(1, 1, 1, -1).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=padding), kernel, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode=padding), kernel.transpose(2, 3), groups=x.shape[1])
