"""Projecting a channel's activation back to pixels: deconvnet, guided backprop, gradient.

Zeiler & Fergus (2014) project an activation ``A[c]`` of a layer back to input space by
running the network backwards; the three classic rules differ only in how a rectifier
passes the signal back (Springenberg et al. 2015):

* ``gradient``: ``dx = dy * [x > 0]`` (the true gradient),
* ``deconvnet``: ``dx = max(dy, 0)`` (ignores the forward pass),
* ``guided``: ``dx = max(dy, 0) * [x > 0]`` (both).

Captum implements the last two for ``nn.ReLU`` modules only; MobileNetV2 and many other
torchvision models use ``nn.ReLU6``, so we implement the rules ourselves, for ReLU, ReLU6
and Hardtanh(0, t) modules, by a forward hook that re-applies the rectifier through a custom
autograd function (on the same hook layer as everything else). The tests check agreement
with Captum's ``NeuronDeconvolution`` / ``NeuronGuidedBackprop`` on ReLU networks.
Functional rectifiers (``torch.relu`` inside ``forward``) cannot be reached by hooks; they
keep the plain gradient rule, and the result says so.

The receptive field of a position is the support of its gradient in a linearised copy of the
network (rectifiers removed, max-pooling replaced by average pooling, all weights positive),
so no unit is switched off and no weights cancel: exactly the pixels that can influence it.
Each handle's linearised copy is made once and kept in :data:`_LINEARISED`.

The module is a little over 400 lines on purpose: the rules, the receptive fields that crop
their results and the strongest-filters grid are one technique and share one rectifier hook.
"""

from __future__ import annotations

import copy
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from .errors import ParameterError
from .hooks import capture, resolve_modules, run_forward
from .models import ModelHandle
from .surgery import replace_module, reset_batchnorm

RULES: tuple[str, ...] = ("deconvnet", "guided", "gradient")
#: What each rule is called where people read it (pages, figure titles).
RULE_LABELS: dict[str, str] = {"deconvnet": "Deconvnet", "guided": "Guided backprop", "gradient": "Gradient"}

#: A box in model-input pixels: ``(top, left, bottom, right)``, bottom and right exclusive.
Box = tuple[int, int, int, int]


class _Rectifier(torch.autograd.Function):
    """``clamp(x, low, high)`` whose backward follows one of :data:`RULES`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, low: float, high: float, rule: str) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.low, ctx.high, ctx.rule = low, high, rule
        return x.clamp(min=low, max=high)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        passes = (x > ctx.low) & (x < ctx.high)
        if ctx.rule == "gradient":
            result = grad * passes
        elif ctx.rule == "guided":
            result = grad.clamp(min=0) * passes
        else:  # deconvnet
            result = grad.clamp(min=0)
        return result, None, None, None


def _bounds(module: nn.Module) -> tuple[float, float] | None:
    if isinstance(module, nn.ReLU):
        return 0.0, float("inf")
    if isinstance(module, nn.Hardtanh) and module.min_val == 0:  # ReLU6 is a Hardtanh(0, 6)
        return 0.0, float(module.max_val)
    return None


def rectifiers(model: nn.Module) -> list[nn.Module]:
    """The rectifier modules a backward rule can be applied to."""
    return [module for module in model.modules() if _bounds(module) is not None]


@contextmanager
def backward_rule(model: nn.Module, rule: str) -> Iterator[int]:
    """Within the block, rectifier modules pass gradients back by ``rule``.

    In-place rectifiers are switched out of place meanwhile (their input must survive for
    the backward rule). Yields the number of modules changed; everything is undone in
    ``finally``.
    """
    if rule not in RULES:
        raise ParameterError(f"Unknown rule {rule!r}; choose one of {', '.join(RULES)}.")
    handles, switched = [], []
    try:
        for module in rectifiers(model):
            low, high = _bounds(module)
            if getattr(module, "inplace", False):
                module.inplace = False
                switched.append(module)

            def hook(mod, args, output, low=low, high=high):
                return _Rectifier.apply(args[0], low, high, rule)

            handles.append(module.register_forward_hook(hook))
        yield len(handles)
    finally:
        for handle in handles:
            handle.remove()
        for module in switched:
            module.inplace = True


@dataclass(frozen=True)
class Projection:
    """A channel's activation projected back to the input.

    Attributes:
        map: ``(H, W)`` magnitude (max over colour channels of ``|dx|``) at the input image's
            resolution; zero outside the part of the image the model sees (its centre crop).
        model_map: the same at the model's input resolution.
        rgb: ``(h, w, 3)`` the signed projection as a picture (grey is zero), model resolution.
        layer, channel, method: what was projected, and how.
        position: ``(y, x)`` in the layer's map when only one position was projected.
        box: ``(top, left, bottom, right)`` of that position's receptive field, in model-input
            pixels (bottom/right exclusive), or None for the whole map.
        focus: where the projection actually falls: the box holding most of its weight (see
            :func:`effective_box`), inside ``box``; None when the projection is all zero.
        activation: the projected activation value (sum of the map, or the one position).
        note: a remark a viewer should read (e.g. functional ReLUs kept the plain gradient).
        seconds: wall time.
    """

    map: np.ndarray
    model_map: np.ndarray
    rgb: np.ndarray
    layer: str
    channel: int
    method: str
    position: tuple[int, int] | None
    box: Box | None
    focus: Box | None
    activation: float
    note: str | None
    seconds: float


def shared_focus(projections: Sequence[Projection]) -> Box:
    """One crop for several projections of the same channel (e.g. by each rule): the smallest
    box holding every focus; when none has one, the first one's receptive field, or else the
    whole model input. A deep position's receptive field is mostly grey (see :func:`effective_box`)."""
    boxes = [result.focus for result in projections if result.focus is not None]
    if boxes:
        tops, lefts, bottoms, rights = zip(*boxes)
        return min(tops), min(lefts), max(bottoms), max(rights)
    first = projections[0]
    return first.box if first.box is not None else (0, 0, *first.model_map.shape)


def crop(picture: np.ndarray, box: Box) -> np.ndarray:
    """The part of an ``(H, W, ...)`` picture at model-input resolution inside ``box``."""
    top, left, bottom, right = box
    return picture[top:bottom, left:right]


#: Share of a projection's absolute weight that :func:`effective_box` keeps.
FOCUS_MASS = 0.98


def effective_box(gradient: np.ndarray, mass: float = FOCUS_MASS, within: Box | None = None) -> Box | None:
    """The box where a projection really falls: ``(top, left, bottom, right)``, exclusive.

    A deep position's theoretical receptive field covers much of the image, but its gradient
    is concentrated near the centre (the *effective* receptive field, Luo et al. 2016): shown
    whole, the projection is a small pattern in a sea of grey. Along each axis this keeps the
    central ``mass`` of the absolute gradient summed over colours, inside ``within`` if given.
    None when the gradient is zero everywhere.
    """
    weight = np.abs(gradient).sum(axis=0)
    if within is not None:
        top, left, bottom, right = within
        clipped = np.zeros_like(weight)
        clipped[top:bottom, left:right] = weight[top:bottom, left:right]
        weight = clipped
    total = float(weight.sum())
    if not np.isfinite(total) or total <= 0:
        return None
    tail = (1.0 - mass) / 2

    def span(profile: np.ndarray) -> tuple[int, int]:
        cumulative = np.cumsum(profile) / total
        return int(np.searchsorted(cumulative, tail)), int(np.searchsorted(cumulative, 1.0 - tail)) + 1

    (top, bottom), (left, right) = span(weight.sum(axis=1)), span(weight.sum(axis=0))
    return top, left, min(bottom, weight.shape[0]), min(right, weight.shape[1])


def _gradient_rgb(gradient: np.ndarray) -> np.ndarray:
    """A signed ``(3, h, w)`` gradient as a displayable picture, zero at mid-grey.

    Scaled by the 99.5th percentile of the non-zero magnitudes (a few extreme pixels would
    otherwise leave everything else grey), then clipped."""
    magnitudes = np.abs(gradient)
    nonzero = magnitudes[magnitudes > 0]
    scale = float(np.percentile(nonzero, 99.5)) if nonzero.size else 0.0
    picture = 0.5 + 0.5 * gradient / scale if scale > 0 else np.full_like(gradient, 0.5)
    if picture.shape[0] == 1:  # a greyscale model: grey picture
        picture = np.repeat(picture, 3, axis=0)
    return np.clip(picture.transpose(1, 2, 0), 0.0, 1.0).astype(np.float32)


@dataclass(frozen=True)
class BatchProjection:
    """Several channels of one input projected in one batched backward pass.

    Attributes:
        gradients: input-space gradients ``(k, C, h, w)``.
        values: the projected activation values ``(k,)``.
        positions: the position projected for each channel (``"max"`` resolved), or None.
        note: a plain remark when the rule could not change anything, else None.
    """

    gradients: np.ndarray
    values: np.ndarray
    positions: list[tuple[int, int] | None]
    note: str | None


def project_batch(
    handle: ModelHandle,
    inputs: torch.Tensor,
    layer: str,
    channels: list[int],
    method: str,
    positions: list[tuple[int, int] | str | None],
) -> BatchProjection:
    """Projections of several channels of one input, in one batched backward pass.

    Each position is None (the whole map), ``"max"`` (the channel's strongest position, found
    in the same forward pass) or ``(y, x)``.
    """
    info = handle.layer(layer)
    if not info.is_spatial:
        raise ParameterError(f"{layer} has no spatial map (shape {info.output_shape}); choose a convolutional layer.")
    for channel in channels:
        handle.check_channel(layer, channel)
    _, height, width = info.output_shape
    for position in positions:
        if position not in (None, "max") and not (0 <= position[0] < height and 0 <= position[1] < width):
            raise ParameterError(f"Position {tuple(position)} is outside {layer}'s {height}x{width} map.")
    batch = inputs.expand(len(channels), *inputs.shape[1:]).clone().requires_grad_(True)
    resolved: list[tuple[int, int] | None] = []
    with (
        handle.guard() as model,
        torch.enable_grad(),
        backward_rule(model, method) as changed,
        capture(model, [layer], clone=False, detach=False, stop_when_done=True, modules=handle.modules) as record,
    ):
        run_forward(model, batch)
        activation = record.outputs[layer]
        picked = []
        for row, (channel, position) in enumerate(zip(channels, positions)):
            if position == "max":  # the rules change only the backward pass: this is the plain forward's map
                flat = int(activation[row, channel].detach().argmax())
                position = divmod(flat, activation.shape[-1])
            resolved.append(None if position is None else (int(position[0]), int(position[1])))
            if position is None:
                picked.append(activation[row, channel].sum())
            else:
                picked.append(activation[row, channel, position[0], position[1]])
        scores = torch.stack(picked)
        (gradient,) = torch.autograd.grad(scores.sum(), batch)
    note = None
    if method != "gradient" and changed == 0:
        note = (
            f"{handle.name} has no ReLU modules the {method} rule can change (it may use functional ReLUs), "
            "so this is the plain gradient."
        )
    return BatchProjection(gradient.detach().cpu().numpy(), scores.detach().cpu().numpy(), resolved, note)


def project(
    handle: ModelHandle,
    image: Image.Image,
    *,
    layer: str,
    channel: int,
    method: str = "deconvnet",
    position: str | tuple[int, int] | None = None,
) -> Projection:
    """Project ``layer``'s channel ``channel`` back to pixels (Zeiler & Fergus 2014).

    Args:
        handle: the model.
        image: an RGB PIL image.
        layer: a layer with a ``(C, H, W)`` output.
        channel: the channel (filter) to project.
        method: ``deconvnet``, ``guided`` (guided backprop) or ``gradient``.
        position: None for the whole map; ``"max"`` for its strongest position only (as in
            the paper); or an explicit ``(y, x)`` in the layer's map.
    """
    start = time.perf_counter()
    if position is not None and position != "max":
        position = (int(position[0]), int(position[1]))
    batch = project_batch(handle, handle.preprocess(image), layer, [channel], method, [position])
    gradient, resolved, note = batch.gradients[0], batch.positions[0], batch.note
    model_map = np.abs(gradient).max(axis=0).astype(np.float32)
    box = receptive_field(handle, layer, *resolved) if resolved is not None else None
    focus = effective_box(gradient, within=box)
    return Projection(
        map=handle.to_image_space(model_map, image.size),
        model_map=model_map,
        rgb=_gradient_rgb(gradient),
        layer=layer,
        channel=channel,
        method=method,
        position=resolved,
        box=box,
        focus=focus,
        activation=float(batch.values[0]),
        note=note,
        seconds=time.perf_counter() - start,
    )


@dataclass(frozen=True)
class ProjectionTile:
    """One channel projected at its strongest position, cropped to where the projection falls.

    Attributes:
        channel: the channel (filter).
        activation: its strongest activation, the one projected.
        box: the crop in model-input pixels: the projection's focus inside the position's
            receptive field (the whole field when the projection is all zero).
        rgb: the signed projection inside ``box`` as a picture (grey is zero).
    """

    channel: int
    activation: float
    box: Box
    rgb: np.ndarray


def project_strongest(
    handle: ModelHandle, image: Image.Image, layer: str, channels: Sequence[int], method: str
) -> list[ProjectionTile]:
    """Each of ``channels`` projected at its strongest position, in one batched backward pass."""
    batch = project_batch(handle, handle.preprocess(image), layer, list(channels), method, ["max"] * len(channels))
    tiles = []
    for channel, value, gradient, position in zip(channels, batch.values, batch.gradients, batch.positions):
        field = receptive_field(handle, layer, *position)
        top, left, bottom, right = box = effective_box(gradient, within=field) or field
        tiles.append(
            ProjectionTile(int(channel), float(value), box, _gradient_rgb(gradient[:, top:bottom, left:right]))
        )
    return tiles


# ------------------------------------------------------------- receptive fields
#: Each handle's linearised twin (:func:`_linearised`), made on its first receptive field under
#: the handle's lock and used under it. Weak keys: the twin goes when its handle does.
_LINEARISED: weakref.WeakKeyDictionary[ModelHandle, nn.Module] = weakref.WeakKeyDictionary()

#: Modules the linearised twin replaces by the identity: every rectifier, squashing function
#: and dropout.
_NONLINEAR = (nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.SiLU, nn.GELU, nn.Hardswish, nn.Sigmoid, nn.Tanh, nn.Dropout)


def _linearised(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with no unit that can switch off and no weights that can cancel."""
    twin = copy.deepcopy(model).eval()
    for name, module in list(twin.named_modules())[1:]:  # [0] is the model itself
        if isinstance(module, _NONLINEAR):
            replace_module(twin, name, nn.Identity())
        elif isinstance(module, nn.MaxPool2d):
            replace_module(
                twin, name, nn.AvgPool2d(module.kernel_size, module.stride, module.padding, module.ceil_mode)
            )
    with torch.no_grad():
        for parameter in twin.parameters():
            parameter.copy_(parameter.abs() + 1e-3)
    reset_batchnorm(twin)
    return twin.requires_grad_(False)


def receptive_field(handle: ModelHandle, layer: str, y: int, x: int) -> Box:
    """Pixels of the model input that can influence position ``(y, x)`` of ``layer``.

    Returns ``(top, left, bottom, right)`` (bottom and right exclusive), clipped to the input.
    """
    with handle.lock:
        twin = _LINEARISED.get(handle)
        if twin is None:
            twin = _LINEARISED[handle] = _linearised(handle.model)
        height, width = handle.input_size
        probe = torch.ones(1, handle.input_channels, height, width, device=handle.device, requires_grad=True)
        resolve_modules(twin, [layer])
        with torch.enable_grad(), capture(twin, [layer], clone=False, detach=False, stop_when_done=True) as record:
            run_forward(twin, probe)
            output = record.outputs[layer]
            (gradient,) = torch.autograd.grad(output[0, :, y, x].sum(), probe)
    support = gradient[0].abs().sum(dim=0) > 0
    rows = torch.nonzero(support.any(dim=1)).flatten()
    cols = torch.nonzero(support.any(dim=0)).flatten()
    if rows.numel() == 0:
        return 0, 0, height, width
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1
