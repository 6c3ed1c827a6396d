"""Deep dream (Mordvintsev et al., 2015): amplify what a layer sees in a photo.

Gradient ascent on the photo itself for the L2 norm of a layer's activation (or one channel
of it), over several octaves: the image is processed from a small scale up to full size, and
the detail added at each scale is carried up to the next. Each step uses a normalised
gradient (divided by its mean absolute value) with a random jitter (roll) so that no grid
pattern builds up, and an optional Gaussian smoothing of the gradient. Large images are
processed in tiles whose grid moves with the jitter, so no seams appear and memory stays
bounded.

A dream's cost grows with its pixels, so it works at a bounded size: a photo whose longer side
is over :data:`MAX_SIDE` is dreamed at that size (``Dream.scaled_from`` says from what), and the
whole request is held to :data:`vis_core.costs.MAX_WORK` before it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import costs
from .errors import ParameterError
from .models import ModelHandle
from .objectives import Objective, layer_l2
from .optim import Stopped, activations, check_caps, to_numpy_images
from .transforms import gaussian_blur

MAX_OCTAVES = 8
#: The longest side a dream is made at.
MAX_SIDE = 768


@dataclass(frozen=True)
class Dream:
    """A dreamed image.

    Attributes:
        image: ``(H, W, 3)`` float32 in [0, 1], at the input image's size, or smaller so that
            its longer side is at most MAX_SIDE.
        original: the photo it was dreamed into, at the same size and in the same form.
        layer, channel: the objective.
        octaves, steps, seed, seconds: how it was made.
        scaled_from: the photo's ``(width, height)`` when it was scaled down to be dreamed, else None.
    """

    image: np.ndarray
    original: np.ndarray
    layer: str
    channel: int | None
    octaves: int
    steps: int
    seed: int
    seconds: float
    scaled_from: tuple[int, int] | None = None


def dream_size(size: tuple[int, int]) -> tuple[int, int]:
    """The ``(width, height)`` a photo of ``size`` is dreamed at."""
    width, height = size
    factor = min(1.0, MAX_SIDE / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def octave_shapes(size: tuple[int, int], octaves: int, octave_scale: float) -> list[tuple[int, int]]:
    """The ``(height, width)`` of each octave for a dream of ``size`` (width, height), smallest first."""
    width, height = size
    shapes = [(height, width)]
    for _ in range(int(octaves) - 1):
        last_height, last_width = shapes[-1]
        shapes.append((max(16, int(last_height / octave_scale)), max(16, int(last_width / octave_scale))))
    return shapes[::-1]


def dream_work(handle: ModelHandle, size: tuple[int, int], *, octaves: int, octave_scale: float, steps: int) -> float:
    """The work of a dream of a photo of ``size`` (width, height), in passes (``vis_core.costs``)."""
    return costs.work_of_images(handle, octave_shapes(dream_size(size), octaves, octave_scale), int(steps))


def _gradient(handle: ModelHandle, image: torch.Tensor, objective: Objective, tile: int) -> torch.Tensor:
    """d objective / d image, computed tile by tile for large images."""
    gradient = torch.zeros_like(image)
    height, width = image.shape[-2:]
    for top in range(0, height, tile):
        for left in range(0, width, tile):
            piece = image[:, :, top : top + tile, left : left + tile].clone().requires_grad_(True)
            if min(piece.shape[-2:]) < 8:
                continue
            score = objective(activations(handle, handle.normalise(piece), objective.layers)).sum()
            (part,) = torch.autograd.grad(score, piece)
            gradient[:, :, top : top + tile, left : left + tile] = part
    return gradient


def deep_dream(
    handle: ModelHandle,
    image: Image.Image,
    *,
    layer: str,
    channel: int | None = None,
    octaves: int = 4,
    octave_scale: float = 1.4,
    steps: int = 10,
    step_size: float = 0.01,
    jitter: int = 32,
    smoothing: float = 0.5,
    tile_size: int = 512,
    seed: int = 0,
    on_step: Callable[[int, int, torch.Tensor | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Dream:
    """Dream ``layer`` (or one of its channels) into ``image``.

    Args:
        octaves: scales processed, smallest first (1..MAX_OCTAVES).
        octave_scale: size ratio between octaves.
        steps: gradient steps per octave.
        step_size: step in [0, 1] pixel units for a unit normalised gradient. The default,
            0.01 (about 2.5 grey levels a step), keeps the photo recognisable under the dream
            after 4 octaves x 10 steps; 0.02 painted the cat over entirely.
        jitter: random shift (pixels) before each step.
        smoothing: Gaussian sigma (pixels) applied to the gradient; 0 to disable.
        tile_size: the largest square processed at once.
    """
    info = handle.layer(layer)
    if not info.is_spatial:
        raise ParameterError(f"{layer} has no spatial map; choose a convolutional layer.")
    if channel is not None:
        handle.check_channel(layer, channel)
    if not 1 <= int(octaves) <= MAX_OCTAVES:
        raise ParameterError(f"octaves must be between 1 and {MAX_OCTAVES}, got {octaves}.")
    check_caps(steps=int(steps) * int(octaves), seed=seed)
    if not 1.0 < float(octave_scale) <= 2.0:
        raise ParameterError(f"octave scale must be in (1, 2], got {octave_scale}.")
    costs.check_work(
        dream_work(handle, image.size, octaves=octaves, octave_scale=octave_scale, steps=steps),
        "This dream",
        "the steps per octave or the octaves",
    )
    start = time.perf_counter()
    handle = handle.for_long_work()  # the dream never holds the lock a click waits for
    picture = image.convert("RGB")
    scaled_from = picture.size if dream_size(picture.size) != picture.size else None
    if scaled_from:
        picture = picture.resize(dream_size(picture.size), Image.Resampling.LANCZOS)
    original = np.asarray(picture, dtype=np.float32) / 255.0
    base = torch.as_tensor(original).permute(2, 0, 1)[None].to(handle.device)
    objective = layer_l2(layer, channel)
    generator = torch.Generator().manual_seed(int(seed))
    shapes = octave_shapes(picture.size, octaves, octave_scale)
    detail = torch.zeros_like(F.interpolate(base, size=shapes[0], mode="bilinear", align_corners=False))
    total, done = int(steps) * len(shapes), 0
    with handle.guard(), torch.enable_grad():
        for shape in shapes:
            scaled = F.interpolate(base, size=shape, mode="bilinear", align_corners=False)
            detail = F.interpolate(detail, size=shape, mode="bilinear", align_corners=False)
            current = (scaled + detail).clamp(0, 1)
            for _ in range(int(steps)):
                if should_stop is not None and should_stop():
                    raise Stopped
                handle.make_way()  # a click on the shared handle goes first
                dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=generator))
                rolled = torch.roll(current, shifts=(dy, dx), dims=(2, 3))
                gradient = gaussian_blur(_gradient(handle, rolled, objective, int(tile_size)), smoothing)
                gradient = torch.roll(gradient, shifts=(-dy, -dx), dims=(2, 3))
                current = (current + step_size * gradient / gradient.abs().mean().clamp_min(1e-8)).clamp(0, 1)
                done += 1
                if on_step is not None:
                    on_step(done, total, current.detach().cpu() if done % 5 == 0 or done == total else None)
            detail = current - scaled
    return Dream(
        image=to_numpy_images(current.cpu())[0],
        original=original,
        layer=layer,
        channel=channel,
        octaves=int(octaves),
        steps=int(steps),
        seed=int(seed),
        seconds=time.perf_counter() - start,
        scaled_from=scaled_from,
    )
