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
  the network sees the requested size every step, and the whole standard stack is a single
  bilinear resampling (:func:`random_affine`) and the network gets its input channels-last on
  a CPU, so a step costs about one forward and backward pass at that size (``benchmarks/``, on
  a 2-core CPU: 0.8-0.95x a plain pass of the truncated network, 1.2-1.3x one in the same
  channels-last layout).

We write this ourselves: lucent (the maintained-looking choice) has been unmaintained since
2021, runs the full network and leaves hooks behind; captum.optim is not released on PyPI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
    """A batch of images as learnable parameters; ``forward()`` gives ``(B, C, H, W)`` in [0, 1].

    :meth:`signed` gives the same images as ``2 * image - 1`` (grey is 0), which is what the
    optimisation loop works with: transforms can leave "empty" space at zero for free, and
    the sigmoid, the move to the model's input statistics and the grey padding each fold
    into an operation that runs anyway (``sigmoid(r) = (tanh(r / 2) + 1) / 2``).
    """

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
        # colour mixing: out[d] = sum_c sqrt_cov[d, c] * in[c], as one matmul over the channels
        # (a 1x1 convolution does the same ~10x slower on a CPU with 3 channels)
        self.register_buffer("colour", _COLOR_SQRT.clone(), persistent=False)
        if init is not None:  # start from an image (dream, inversion)
            self.fft = False
            self.pixels = torch.nn.Parameter(torch.logit(init.clamp(1e-4, 1 - 1e-4)).clone())
            return
        if fft:
            fy = torch.fft.fftfreq(self.height)[:, None]
            fx = torch.fft.rfftfreq(self.width)[None, :]
            frequencies = torch.sqrt(fx**2 + fy**2)
            scale_1f = 1.0 / frequencies.clamp_min(1.0 / max(self.height, self.width)) ** decay
            # the 1/4 of the image brightness and the 1/2 of tanh(r / 2) folded into the scale;
            # a trailing axis so it multiplies the real and imaginary parts alike
            self.register_buffer("spectrum_scale", (scale_1f / 8.0)[..., None], persistent=False)
            shape = (batch, channels, self.height, self.width // 2 + 1, 2)
            self.spectrum = torch.nn.Parameter(torch.randn(shape, generator=generator) * scale)
        else:
            self.pixels = torch.nn.Parameter(
                torch.randn((batch, channels, self.height, self.width), generator=generator) * scale
            )

    def signed(self) -> torch.Tensor:
        """The images as ``2 * image - 1``, in (-1, 1)."""
        if self.fft:
            spectrum = self.spectrum
            if self.decorrelate:  # colour mixing is linear: mix the (half-size) spectrum, not the image
                spectrum = self._mix(spectrum)
            spectrum = torch.view_as_complex(spectrum * self.spectrum_scale)
            return torch.tanh(torch.fft.irfft2(spectrum, s=(self.height, self.width), norm="ortho"))
        raw = self._mix(self.pixels) if self.decorrelate else self.pixels
        return torch.tanh(raw * 0.5)

    def _mix(self, x: torch.Tensor) -> torch.Tensor:
        """Mix the channels (dimension 1) of ``x`` by the colour matrix."""
        return torch.matmul(self.colour, x.reshape(x.shape[0], x.shape[1], -1)).view(x.shape)

    def forward(self) -> torch.Tensor:
        return from_signed(self.signed())


def from_signed(signed: torch.Tensor) -> torch.Tensor:
    """Signed images (grey is 0, in (-1, 1)) back to [0, 1]."""
    return (signed + 1.0) * 0.5


# --------------------------------------------------------------------- transforms
#: A transform takes signed images (grey is 0, see :meth:`ImageParam.signed`) and a generator.
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def pad(width: int, value: float = 0.0) -> Transform:
    """Pad with grey (0 in signed images)."""
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
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

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
    pixels of the result (the final jitter 4). Points that fall outside the image read grey
    (zero in signed images), as the grey padding would give. One ``grid_sample`` instead of
    pad, crop, interpolate, rotate and crop: each of those costs a pass forward and backward.
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
        return _resample(x, (cos, -sin, tx, sin, cos, ty), height, width)

    return apply


def _resample(x: torch.Tensor, affine: tuple[float, ...], height: int, width: int) -> torch.Tensor:
    """Bilinear sampling of ``x`` at ``input = A @ output + t`` (normalised coordinates, zeros outside).

    The grid is built by broadcasting (``affine_grid`` is a batched matmul over every pixel).
    On a CPU, ``grid_sample`` spreads its work over the batch only, so a single image is cut
    into horizontal strips, one per thread, as a batch of views of the same input (the
    backward pass sums their gradients): on two cores this halves its cost.
    """
    a, b, tx, c, d, ty = affine
    kwargs = dict(device=x.device, dtype=x.dtype)
    xs = (torch.arange(width, **kwargs) * 2 + 1) / width - 1
    ys = ((torch.arange(height, **kwargs) * 2 + 1) / height - 1)[:, None]
    grid = torch.stack(torch.broadcast_tensors(a * xs + b * ys + tx, c * xs + d * ys + ty), dim=-1)
    parts = torch.get_num_threads() if x.device.type == "cpu" and x.shape[0] == 1 else 1
    if parts < 2 or height % parts:
        return F.grid_sample(
            x, grid.expand(x.shape[0], -1, -1, -1), mode="bilinear", padding_mode="zeros", align_corners=False
        )
    strips = F.grid_sample(
        x.expand(parts, -1, -1, -1),
        grid.view(parts, height // parts, width, 2),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )
    # reassemble as (1, H, W, C) memory, i.e. a channels-last image: the network wants that
    # layout on a CPU anyway (fast_layout), so this one copy is the only one
    return strips.permute(0, 2, 3, 1).reshape(1, height, width, x.shape[1]).permute(0, 3, 1, 2)


SCALES = [1 + (i - 5) / 50.0 for i in range(11)]
DEGREES = [*range(-10, 11), 0, 0, 0, 0, 0]


def standard_transforms(size: tuple[int, int] | None = None) -> list[Transform]:
    """Olah et al.'s / lucent's standard set: pad 12, jitter 8, scale, rotate, jitter 4.

    With ``size``, all of it happens in one resampling to that size (:func:`random_affine`),
    so the network sees exactly ``size`` every step."""
    if size is None:
        return [pad(12), jitter(8), random_scale(SCALES), random_rotate(DEGREES), jitter(4)]
    return [random_affine(SCALES, DEGREES, size)]


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


def _signed_to_input(handle: ModelHandle, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`normalise` for signed images, as one fused multiply-add:
    ``((s + 1) / 2 - mean) / std = s * (0.5 / std) + (0.5 - mean) / std``."""
    mean = torch.tensor(handle.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(handle.std, device=device).view(1, -1, 1, 1)
    gain, bias = 0.5 / std, (0.5 - mean) / std

    def apply(signed: torch.Tensor) -> torch.Tensor:
        if handle.grayscale and signed.shape[1] == 3:
            signed = signed.mean(dim=1, keepdim=True)
        return torch.addcmul(bias, signed, gain)

    return apply


@contextmanager
def reading(handle: ModelHandle, layers: frozenset[str]) -> Iterator[Callable[[torch.Tensor], dict[str, torch.Tensor]]]:
    """Hooks on ``layers`` for a whole loop; yields ``read(inputs) -> activations``.

    ``read`` runs the forward pass, stopping after the deepest layer (the whole network only
    when the logits are asked for). The hooks go on once, not once per step."""
    named = [layer for layer in layers if layer != LOGITS]
    for layer in named:
        handle.layer(layer)
    model = handle.model
    with capture(
        model,
        named,
        clone=False,
        detach=False,
        stop_when_done=LOGITS not in layers,
        out_of_place=handle.needs_out_of_place(named),
        modules=handle.modules,
    ) as record:

        def read(inputs: torch.Tensor) -> dict[str, torch.Tensor]:
            inputs = fast_layout(inputs)
            record.reset()
            logits = run_forward(model, inputs)
            result = dict(record.outputs)
            if LOGITS in layers:
                result[LOGITS] = logits
            return result

        yield read


def fast_layout(inputs: torch.Tensor) -> torch.Tensor:
    """Images in the memory layout the device's convolutions run fastest in.

    On a CPU that is channels-last (oneDNN's native layout): a forward and backward pass of
    MobileNetV2's first 11 blocks takes about 16% less time with the input alone converted
    (the shared model's weights stay as they are). Elsewhere the input is left alone."""
    if inputs.device.type == "cpu" and inputs.dim() == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def activations(handle: ModelHandle, inputs: torch.Tensor, layers: frozenset[str]) -> dict[str, torch.Tensor]:
    """Outputs of ``layers`` (and the logits if asked), stopping after the deepest layer."""
    with reading(handle, layers) as read:
        return read(inputs)


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
    handle = handle.for_long_work()  # a render never holds the lock a click waits for
    param = param.to(handle.device)
    variables = list(param.parameters())
    optimizer = torch.optim.Adam(variables, lr=lr, **_fused(handle.device))
    to_input = _signed_to_input(handle, handle.device)
    history: list[float] = []
    with handle.guard(), torch.enable_grad(), reading(handle, objective.layers) as read:
        for step in range(1, int(steps) + 1):
            if should_stop is not None and should_stop():
                raise Stopped
            optimizer.zero_grad(set_to_none=True)
            signed = param.signed()
            transformed = signed
            for transform in transforms:
                transformed = transform(transformed, generator)
            if transformed.shape[-2:] != signed.shape[-2:]:  # the network always sees the requested size
                transformed = F.interpolate(transformed, size=signed.shape[-2:], mode="bilinear", align_corners=False)
            scores = objective(read(to_input(transformed)))
            loss = -scores.sum()
            if regulariser is not None:
                loss = loss + regulariser(from_signed(signed))
            # autograd.grad, not backward(): the shared model's parameters never get a .grad
            for variable, gradient in zip(variables, torch.autograd.grad(loss, variables)):
                variable.grad = gradient
            optimizer.step()
            history.append(float(scores.detach().mean()))
            if on_step is not None:
                preview = None
                if step % preview_every == 0 or step == steps:
                    preview = from_signed(signed.detach()).cpu()
                on_step(step, int(steps), preview)
        with torch.no_grad():
            final = param().detach().cpu()
    return final, history


def _fused(device: torch.device) -> dict[str, bool]:
    """Adam's fused kernel (one pass over the parameters) where this torch has it for the device."""
    return {"fused": True} if device.type in ("cpu", "cuda") else {}


def to_numpy_images(images: torch.Tensor) -> list:
    """``(B, C, H, W)`` in [0, 1] to a list of ``(H, W, 3)`` float32 arrays."""
    images = images.detach().float().clamp(0, 1)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return [image.permute(1, 2, 0).numpy().astype("float32") for image in images]
