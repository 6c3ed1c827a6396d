"""Feature visualisation (activation maximisation): the image a channel, neuron or class likes most.

Erhan et al. (2009) and Olah et al. (2017): start from noise and follow the gradient of the
chosen unit's activation with respect to the image. Defaults as in Olah et al.: an FFT
parameterisation in decorrelated colour space, and the standard transforms (pad, jitter,
scale, rotate), which together give natural-looking images instead of adversarial noise.
Several channels render in one batch (a gallery); several images of one channel with a
diversity term show different things the channel responds to.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import costs, objectives
from .errors import ParameterError
from .models import ModelHandle
from .optim import ascend, check_caps, to_numpy_images
from .param import ImageParam
from .transforms import standard_transforms


@dataclass(frozen=True)
class FeatureVisualization:
    """Rendered images.

    Attributes:
        image: the first ``(H, W, 3)`` float32 image in [0, 1].
        images: all of them (one per channel of a gallery, or per diverse sample).
        layer, channels: what was maximised (``channels[i]`` for ``images[i]``).
        objective: the objective per step (mean over the batch).
        seed, seconds: reproducibility and cost.
    """

    image: np.ndarray
    images: tuple[np.ndarray, ...]
    layer: str
    channels: tuple[int, ...]
    objective: tuple[float, ...]
    seed: int
    seconds: float


def feature_visualization(
    handle: ModelHandle,
    *,
    layer: str,
    channel: int | Sequence[int],
    steps: int = 256,
    size: int = 224,
    seed: int = 0,
    lr: float = 0.05,
    fft: bool = True,
    decorrelate: bool = True,
    transforms: bool = True,
    mode: str = "channel",
    diversity: int = 0,
    diversity_weight: float = 1e2,
    on_step: Callable[[int, int, torch.Tensor | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FeatureVisualization:
    """Render what maximises ``layer``'s ``channel`` (or each of several channels at once).

    Args:
        channel: one channel, or a list for a gallery (one image each, in one batch).
        mode: ``channel`` (mean of the channel), ``neuron`` (its centre position), or
            ``class`` (``channel`` is a class index and ``layer`` is ignored).
        diversity: render this many images of one channel with a diversity term.
    """
    check_caps(steps=steps, size=size, seed=seed)
    channels = [channel] if isinstance(channel, int) else list(channel)
    if not channels:
        raise ParameterError("Choose at least one channel.")
    check_caps(batch=max(len(channels), int(diversity) or 1))  # before each channel is looked at
    if mode == "class":
        for index in channels:
            if not 0 <= index < len(handle.labels):
                raise ParameterError(f"Class {index} is out of range (0..{len(handle.labels) - 1}).")
    else:
        info = handle.layer(layer)
        if not info.is_spatial:
            raise ParameterError(f"{layer} has no spatial map; choose a convolutional layer.")
        for index in channels:
            handle.check_channel(layer, index)
    batch = max(len(channels), int(diversity) or 1)
    check_caps(batch=batch)
    costs.check_work(
        render_work(handle, steps=steps, size=size, images=batch),
        "This render",
        "the steps, the size or the number of images",
    )
    if len(channels) > 1 and diversity:
        raise ParameterError("Diversity renders several images of one channel; choose one channel.")
    if mode == "neuron" and len(channels) > 1:
        raise ParameterError("Neuron mode takes one channel.")
    objective = _objective(mode, layer, channels)
    if diversity and mode != "class":
        objective = objective + diversity_weight * objectives.diversity(layer)
    generator = torch.Generator().manual_seed(int(seed))
    param = ImageParam(batch, int(size), channels=3, fft=fft, decorrelate=decorrelate, generator=generator)
    start = time.perf_counter()
    images, history = ascend(
        handle,
        objective,
        param,
        steps=int(steps),
        lr=lr,
        transforms=standard_transforms((int(size), int(size))) if transforms else (),
        generator=generator,
        on_step=on_step,
        should_stop=should_stop,
    )
    arrays = tuple(to_numpy_images(images))
    used = tuple(channels) if len(channels) > 1 else tuple(channels * batch)
    return FeatureVisualization(arrays[0], arrays, layer, used, tuple(history), int(seed), time.perf_counter() - start)


def render_work(handle: ModelHandle, *, steps: int, size: int, images: int) -> float:
    """The work of rendering ``images`` pictures of ``size`` pixels in ``steps``, in passes
    (``vis_core.costs``)."""
    return costs.work_of_images(handle, [(int(size), int(size))], int(steps), int(images))


def _objective(mode: str, layer: str, channels: list[int]) -> objectives.Objective:
    """What to maximise: a class logit, a neuron, or a channel (one per image for a gallery)."""
    chosen = channels[0] if len(channels) == 1 else channels
    if mode == "class":
        return objectives.class_logit(chosen)
    if mode == "neuron":
        return objectives.neuron(layer, channels[0])
    return objectives.channel(layer, chosen)
