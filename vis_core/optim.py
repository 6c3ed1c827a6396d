"""One small optimisation core for images made by gradient ascent: feature visualisation,
deep dream and feature inversion share it.

* Objectives name the layers they read and compose with ``+ - *`` (as in lucent and
  captum.optim): :func:`channel`, :func:`neuron`, :func:`layer_l2`, :func:`class_logit`,
  :func:`diversity`, :func:`feature_match`. Each returns one score per batch element, to be
  *maximised*.
* The forward pass stops after the deepest layer an objective reads (hooks raise
  ``StopForward``): unlike lucent, which runs the whole network every step and leaves its hooks
  on the model, we never pay for the classifier unless a class is the objective.
* Parameterisations (Olah et al. 2017, "Feature Visualization"): plain pixels, or a Fourier
  (FFT) basis with 1/f frequency scaling, optionally in decorrelated colour space. Transforms
  (pad, jitter, random scale, random rotation) make the result robust; all randomness comes
  from one seeded ``torch.Generator``, so a seed reproduces an image on the CPU. Unlike lucent,
  the transformed image is resized back to the requested size before the network sees it, so
  every step costs the same as one forward and backward pass at that size.

We write this ourselves: lucent (the maintained-looking choice) has been unmaintained since
2021, runs the full network and leaves hooks behind; captum.optim is not released on PyPI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import ParameterError, VisCoreError
from .hooks import capture, run_forward
from .models import ModelHandle

#: Server-side caps (THREATS.md: 10,000 steps, 4096 px and 20 octaves must be refused).
MAX_STEPS = 2048
MAX_SIZE = 1024
MAX_BATCH = 64
LOGITS = "<logits>"

Scores = Callable[[dict[str, torch.Tensor]], torch.Tensor]


# -------------------------------------------------------------------- objectives
@dataclass(frozen=True)
class Objective:
    """A differentiable score per batch element, reading the named layers."""

    layers: frozenset[str]
    score: Scores
    description: str

    def __call__(self, activations: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.score(activations)

    def __add__(self, other: Objective) -> Objective:
        return Objective(
            self.layers | other.layers, lambda a: self(a) + other(a), f"{self.description} + {other.description}"
        )

    def __sub__(self, other: Objective) -> Objective:
        return Objective(
            self.layers | other.layers, lambda a: self(a) - other(a), f"{self.description} - {other.description}"
        )

    def __mul__(self, factor: float) -> Objective:
        return Objective(self.layers, lambda a: self(a) * float(factor), f"{factor} * ({self.description})")

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0


def channel(layer: str, index: int | Sequence[int]) -> Objective:
    """Mean activation of a channel; a list gives each batch element its own channel (a gallery)."""
    if isinstance(index, int):
        return Objective(frozenset([layer]), lambda a: a[layer][:, index].mean(dim=(1, 2)), f"{layer}:{index}")
    indices = list(index)

    def score(a: dict[str, torch.Tensor]) -> torch.Tensor:
        chosen = torch.as_tensor(indices, device=a[layer].device)
        return a[layer][torch.arange(len(indices), device=chosen.device), chosen].mean(dim=(1, 2))

    return Objective(frozenset([layer]), score, f"{layer}:{indices}")


def neuron(layer: str, index: int, y: int | None = None, x: int | None = None) -> Objective:
    """One position of a channel (the centre by default)."""

    def score(a: dict[str, torch.Tensor]) -> torch.Tensor:
        act = a[layer][:, index]
        row = act.shape[1] // 2 if y is None else y
        col = act.shape[2] // 2 if x is None else x
        return act[:, row, col]

    return Objective(frozenset([layer]), score, f"{layer}:{index}@neuron")


def layer_l2(layer: str, index: int | None = None) -> Objective:
    """Mean squared activation of a layer (or one channel): deep dream's objective."""

    def score(a: dict[str, torch.Tensor]) -> torch.Tensor:
        act = a[layer] if index is None else a[layer][:, index : index + 1]
        return act.pow(2).flatten(1).mean(dim=1)

    return Objective(frozenset([layer]), score, f"L2({layer}{'' if index is None else f':{index}'})")


def class_logit(index: int) -> Objective:
    """The logit of a class (runs the whole network)."""
    return Objective(frozenset([LOGITS]), lambda a: a[LOGITS][:, index], f"logit {index}")


def diversity(layer: str) -> Objective:
    """Negative mean cosine similarity of the batch elements' Gram matrices (Olah et al.)."""

    def score(a: dict[str, torch.Tensor]) -> torch.Tensor:
        act = a[layer]
        batch, channels = act.shape[:2]
        flat = act.reshape(batch, channels, -1)
        grams = F.normalize(torch.bmm(flat, flat.transpose(1, 2)).reshape(batch, -1), dim=1)
        similarity = grams @ grams.T
        others = (similarity.sum(dim=1) - similarity.diagonal()) / max(1, batch - 1)
        return -others

    return Objective(frozenset([layer]), score, f"diversity({layer})")


def feature_match(layer: str, target: torch.Tensor) -> Objective:
    """``-||A - A0||^2 / ||A0||^2``: how close the representation is to a target (inversion)."""
    reference = target.detach()
    norm = reference.pow(2).sum().clamp_min(1e-12)

    def score(a: dict[str, torch.Tensor]) -> torch.Tensor:
        return -(a[layer] - reference).pow(2).flatten(1).sum(dim=1) / norm

    return Objective(frozenset([layer]), score, f"match({layer})")


# ------------------------------------------------------------- parameterisations
# Colour correlation of ImageNet photos (the square root of its covariance), as used by Olah
# et al. and lucent: optimising in this basis decorrelates the colour channels.
_COLOR_SQRT = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
_COLOR_SQRT = _COLOR_SQRT / _COLOR_SQRT.norm(dim=0).max()


class ImageParam(torch.nn.Module):
    """A batch of images as learnable parameters; ``forward()`` gives ``(B, C, H, W)`` in [0, 1]."""

    def __init__(
        self,
        batch: int,
        size: int | tuple[int, int],
        *,
        channels: int = 3,
        fft: bool = True,
        decorrelate: bool = True,
        generator: torch.Generator,
        init: torch.Tensor | None = None,
        scale: float = 0.01,
        decay: float = 1.0,
    ) -> None:
        super().__init__()
        self.height, self.width = (size, size) if isinstance(size, int) else size
        self.channels, self.fft = channels, fft
        self.decorrelate = decorrelate and channels == 3
        if init is not None:  # start from an image (dream, inversion)
            self.fft = False
            self.pixels = torch.nn.Parameter(torch.logit(init.clamp(1e-4, 1 - 1e-4)).clone())
            return
        if fft:
            fy = torch.fft.fftfreq(self.height)[:, None]
            fx = torch.fft.rfftfreq(self.width)[None, :]
            frequencies = torch.sqrt(fx**2 + fy**2)
            self.register_buffer(
                "spectrum_scale", 1.0 / frequencies.clamp_min(1.0 / max(self.height, self.width)) ** decay
            )
            shape = (batch, channels, self.height, self.width // 2 + 1, 2)
            self.spectrum = torch.nn.Parameter(torch.randn(shape, generator=generator) * scale)
        else:
            self.pixels = torch.nn.Parameter(
                torch.randn((batch, channels, self.height, self.width), generator=generator) * scale
            )

    def forward(self) -> torch.Tensor:
        if self.fft:
            spectrum = torch.view_as_complex(self.spectrum) * self.spectrum_scale
            image = torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho") / 4.0
        else:
            image = self.pixels
        if self.decorrelate:
            image = torch.einsum("bchw,dc->bdhw", image, _COLOR_SQRT.to(image.device))
            return torch.sigmoid(image)
        return torch.sigmoid(image)


# --------------------------------------------------------------------- transforms
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def pad(width: int, value: float = 0.5) -> Transform:
    return lambda x, g: F.pad(x, (width,) * 4, mode="constant", value=value)


def jitter(amount: int) -> Transform:
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
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    return apply


def random_affine(scales: Sequence[float], degrees: Sequence[float], size: tuple[int, int]) -> Transform:
    """Random scale and rotation in one resampling, straight to ``size`` (a single
    ``grid_sample``: cheaper than interpolating, rotating and resizing in turn)."""

    def apply(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        factor = scales[int(torch.randint(len(scales), (1,), generator=g))]
        angle = math.radians(degrees[int(torch.randint(len(degrees), (1,), generator=g))])
        cos, sin = math.cos(angle) / factor, math.sin(angle) / factor
        theta = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype, device=x.device)
        grid = F.affine_grid(theta.expand(x.shape[0], 2, 3), [x.shape[0], x.shape[1], *size], align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    return apply


SCALES = [1 + (i - 5) / 50.0 for i in range(11)]
DEGREES = [*range(-10, 11), 0, 0, 0, 0, 0]


def standard_transforms(size: tuple[int, int] | None = None) -> list[Transform]:
    """Olah et al.'s / lucent's standard set: pad 12, jitter 8, scale, rotate, jitter 4.

    With ``size``, scale and rotation happen in one resampling to that size and the last
    jitter is a roll, so the network sees exactly ``size`` every step."""
    if size is None:
        return [pad(12), jitter(8), random_scale(SCALES), random_rotate(DEGREES), jitter(4)]
    return [pad(12), jitter(8), random_affine(SCALES, DEGREES, size), roll(4)]


def gaussian_blur(x: torch.Tensor, sigma: float, padding: str = "reflect") -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, H, W)`` (radius 3 sigma); ``sigma <= 0`` returns ``x``.

    Used for deep dream's gradient smoothing and for the blurred substrate of the
    deletion/insertion curves."""
    if sigma <= 0:
        return x
    radius = max(1, int(3 * sigma))
    grid = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(grid**2) / (2 * sigma**2))
    kernel = (kernel / kernel.sum()).view(1, 1, 1, -1).repeat(x.shape[1], 1, 1, 1)
    x = F.conv2d(F.pad(x, (radius, radius, 0, 0), mode=padding), kernel, groups=x.shape[1])
    return F.conv2d(F.pad(x, (0, 0, radius, radius), mode=padding), kernel.transpose(2, 3), groups=x.shape[1])


def check_caps(*, steps: int | None = None, size: int | None = None, batch: int | None = None) -> None:
    """Refuse extreme parameters with a clear message (server-side, whatever the UI sent)."""
    if steps is not None and not 1 <= int(steps) <= MAX_STEPS:
        raise ParameterError(f"steps must be between 1 and {MAX_STEPS}, got {steps}.")
    if size is not None and not 16 <= int(size) <= MAX_SIZE:
        raise ParameterError(f"size must be between 16 and {MAX_SIZE} pixels, got {size}.")
    if batch is not None and not 1 <= int(batch) <= MAX_BATCH:
        raise ParameterError(f"at most {MAX_BATCH} images at once, got {batch}.")


# ---------------------------------------------------------------------- the loop
class Stopped(VisCoreError):
    """Raised inside :func:`ascend` when ``should_stop()`` returns True."""


def normalise(handle: ModelHandle, images: torch.Tensor) -> torch.Tensor:
    """[0, 1] images to the model's input space (greyscale models get the channel mean)."""
    if handle.grayscale and images.shape[1] == 3:
        images = images.mean(dim=1, keepdim=True)
    mean = torch.tensor(handle.mean, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    std = torch.tensor(handle.std, device=images.device, dtype=images.dtype).view(1, -1, 1, 1)
    return (images - mean) / std


def activations(handle: ModelHandle, inputs: torch.Tensor, layers: frozenset[str]) -> dict[str, torch.Tensor]:
    """Outputs of ``layers`` (and the logits if asked), stopping after the deepest layer."""
    named = [layer for layer in layers if layer != LOGITS]
    for layer in named:
        handle.layer(layer)
    model = handle.model
    with capture(
        model, named, clone=False, detach=False, stop_when_done=LOGITS not in layers, modules=handle.modules
    ) as record:
        logits = run_forward(model, inputs)
    result = dict(record.outputs)
    if LOGITS in layers:
        result[LOGITS] = logits
    return result


def ascend(
    handle: ModelHandle,
    objective: Objective,
    param: ImageParam,
    *,
    steps: int,
    lr: float = 0.05,
    transforms: Sequence[Transform] = (),
    generator: torch.Generator,
    regulariser: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_step: Callable[[int, int, torch.Tensor | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    preview_every: int = 16,
) -> tuple[torch.Tensor, list[float]]:
    """Maximise ``objective`` (minus ``regulariser(images)``) over ``param`` with Adam.

    Returns the final images ``(B, C, H, W)`` in [0, 1] and the mean objective per step.
    ``on_step(step, total, preview)`` gets a detached copy of the images every
    ``preview_every`` steps (None otherwise).
    """
    check_caps(steps=steps)
    param = param.to(handle.device)
    variables = list(param.parameters())
    optimizer = torch.optim.Adam(variables, lr=lr)
    history: list[float] = []
    with handle.guard(), torch.enable_grad():
        for step in range(1, int(steps) + 1):
            if should_stop is not None and should_stop():
                raise Stopped
            optimizer.zero_grad(set_to_none=True)
            images = param()
            transformed = images
            for transform in transforms:
                transformed = transform(transformed, generator)
            if transformed.shape[-2:] != images.shape[-2:]:  # the network always sees the requested size
                transformed = F.interpolate(transformed, size=images.shape[-2:], mode="bilinear", align_corners=False)
            scores = objective(activations(handle, normalise(handle, transformed), objective.layers))
            loss = -scores.sum()
            if regulariser is not None:
                loss = loss + regulariser(images)
            # autograd.grad, not backward(): the shared model's parameters never get a .grad
            for variable, gradient in zip(variables, torch.autograd.grad(loss, variables)):
                variable.grad = gradient
            optimizer.step()
            history.append(float(scores.detach().mean()))
            if on_step is not None:
                preview = images.detach().cpu() if step % preview_every == 0 or step == steps else None
                on_step(step, int(steps), preview)
        with torch.no_grad():
            final = param().detach().cpu()
    return final, history


def to_numpy_images(images: torch.Tensor) -> list:
    """``(B, C, H, W)`` in [0, 1] to a list of ``(H, W, 3)`` float32 arrays."""
    images = images.detach().float().clamp(0, 1)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return [image.permute(1, 2, 0).numpy().astype("float32") for image in images]
