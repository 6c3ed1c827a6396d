"""Feature visualisations of many units at once, through the optimisation core.

A layer's channels are cut into fixed chunks (:func:`chunks`: :data:`CHUNK` images per batch,
``CHUNK // renders`` channels; fewer for pictures past :data:`CHUNK_SIDE` pixels), and each
chunk renders as one batch with its own seed derived
from the build's seed, the layer and the chunk's index (:func:`chunk_seed`). A chunk is the
unit of work of every executor, so which process renders it, and in what order, never changes
a picture: on a CPU the same seed gives the same images.

Each image of a batch maximises its own channel's mean (:func:`vis_core.objectives.channel`
with one index per image); with ``renders > 1`` each channel gets that many images and a
diversity term (Olah et al.) within its own group only. The parameterisation (FFT,
decorrelated colour), the transforms and the step size are those of
:func:`vis_core.feature_visualization`.

Renders run, like every ascent, on the model with BatchNorm folded into the convolutions
(:func:`vis_core.optim.rendering_twin`), made once per process: local and Ray builds still give
the same pictures for the same seed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import objectives
from ..arrays import to_uint8
from ..models import ModelHandle
from ..optim import ascend, to_numpy_images
from ..param import ImageParam
from ..transforms import standard_transforms

#: Images per render batch at :data:`CHUNK_SIDE` pixels or less. Larger batches are cheaper per
#: unit on every device we measured, and 32 keeps a chunk's memory small on a CPU; larger pictures
#: go in fewer per batch, so a batch never holds more pixels than 32 at 224 (memory grows with the
#: pixels: MobileNetV2's features.18 took 1.6 GiB for 32 at 224 px, 6.6 GiB for 32 at 448, 1.6 for 8).
CHUNK = 32
CHUNK_SIDE = 224
#: Most renders per unit (each is one image of a chunk).
MAX_RENDERS = 8
DIVERSITY_WEIGHT = 1e2
LEARNING_RATE = 0.05


@dataclass(frozen=True)
class RenderJob:
    """One chunk: ``channels`` of ``layer``, rendered together with ``seed``."""

    layer: str
    index: int
    channels: tuple[int, ...]
    seed: int
    steps: int
    size: int
    renders: int


def chunk_images(size: int) -> int:
    """Images per render batch for pictures of ``size`` pixels: :data:`CHUNK`, fewer past :data:`CHUNK_SIDE`."""
    return max(1, min(CHUNK, CHUNK * CHUNK_SIDE**2 // max(1, size) ** 2))


def chunks(channels: int, renders: int = 1, size: int = CHUNK_SIDE) -> list[tuple[int, ...]]:
    """The fixed chunks of a layer with ``channels`` channels, in channel order (fewer channels a
    chunk for pictures larger than :data:`CHUNK_SIDE`)."""
    per = max(1, chunk_images(size) // max(1, renders))
    return [tuple(range(start, min(start + per, channels))) for start in range(0, channels, per)]


def chunk_seed(seed: int, layer: str, index: int) -> int:
    """The seed of chunk ``index`` of ``layer``: independent of every other chunk's."""
    digest = hashlib.sha256(f"{int(seed)}:{layer}:{int(index)}".encode()).digest()
    return int.from_bytes(digest[:8], "big") & (2**63 - 1)


def jobs_for(layer: str, channels: int, *, seed: int, steps: int, size: int, renders: int) -> list[RenderJob]:
    return [
        RenderJob(layer, index, chunk, chunk_seed(seed, layer, index), steps, size, renders)
        for index, chunk in enumerate(chunks(channels, renders, size))
    ]


def grouped_diversity(layer: str, group: int) -> objectives.Objective:
    """Olah et al.'s diversity term, within each run of ``group`` consecutive images only."""

    def score(a: dict[str, torch.Tensor]) -> torch.Tensor:
        act = a[layer]
        batch, channels = act.shape[:2]
        flat = act.reshape(batch, channels, -1)
        grams = F.normalize(torch.bmm(flat, flat.transpose(1, 2)).reshape(batch // group, group, -1), dim=2)
        similarity = torch.bmm(grams, grams.transpose(1, 2))  # (groups, group, group)
        others = (similarity.sum(dim=2) - similarity.diagonal(dim1=1, dim2=2)) / max(1, group - 1)
        return -others.reshape(batch)

    return objectives.Objective(frozenset([layer]), score, f"diversity({layer}, groups of {group})")


def render_job(
    handle: ModelHandle, job: RenderJob, should_stop: Callable[[], bool] | None = None
) -> list[list[np.ndarray]]:
    """Render one chunk: per channel, ``job.renders`` uint8 ``(size, size, 3)`` pictures."""
    per_image = [channel for channel in job.channels for _ in range(job.renders)]
    objective = objectives.channel(job.layer, per_image)
    if job.renders > 1:
        objective = objective + DIVERSITY_WEIGHT * grouped_diversity(job.layer, job.renders)
    generator = torch.Generator().manual_seed(job.seed)
    param = ImageParam(len(per_image), job.size, channels=3, fft=True, decorrelate=True, generator=generator)
    images, _ = ascend(
        handle,
        objective,
        param,
        steps=job.steps,
        lr=LEARNING_RATE,
        transforms=standard_transforms((job.size, job.size)),
        generator=generator,
        should_stop=should_stop,
    )
    pictures = [to_uint8(picture) for picture in to_numpy_images(images)]
    return [pictures[i * job.renders : (i + 1) * job.renders] for i in range(len(job.channels))]


def render_jobs(handle: ModelHandle, jobs: Sequence[RenderJob]) -> list[list[list[np.ndarray]]]:
    """Several chunks in a row (what one Ray task runs)."""
    return [render_job(handle, job) for job in jobs]
