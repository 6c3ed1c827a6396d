"""The attribution registry: what a method is, what it returns, and the helpers methods share.

A :class:`Method` carries every fact a caller needs without knowing the method: which layer it
works on (:attr:`Method.layer_policy`), how its values read (:attr:`Method.signed`), how long
it takes (:attr:`Method.speed`) and, for methods that refine, how close their first picture
is to the exact map (:attr:`Method.first_agreement`). Pages and the CLI read these facts from
:data:`METHODS` instead of keeping their own lists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError
from ..hooks import capture
from ..models import ModelHandle

ProgressCallback = Callable[[int, int], None]
#: ``passes(handle, layer, options) -> (forward, forward_and_backward)``: how many times a method
#: runs the model on one image at its input size (the cost model, :mod:`vis_core.costs`).
Passes = Callable[[ModelHandle, "str | None", dict], tuple[float, float]]


def one_backward(handle: ModelHandle, layer: str | None, options: dict) -> tuple[float, float]:
    """One forward and backward pass: the gradient methods."""
    return 0.0, 1.0


#: ``none``: works on pixels only; ``any``: any spatial layer (default the last block);
#: ``pooled``: only the layer a global-average-pooling head reads (CAM).
LayerPolicy = Literal["none", "any", "pooled"]
#: ``click``: one forward/backward pass, well under a second on a CPU; ``seconds``: tens of
#: passes; ``long``: hundreds of passes (these refine: a first picture comes fast).
Speed = Literal["click", "seconds", "long"]


@dataclass(frozen=True)
class Attribution:
    """One attribution map.

    Attributes:
        map: ``(H, W)`` float32 at the input image's resolution (zero outside the centre crop
            the model sees).
        model_map: ``(h, w)`` at the model's input resolution.
        raw: the map before upsampling (a CAM's layer-resolution map), or None.
        method: registry name.
        target: class index explained; ``target_label`` its name.
        layer: the layer used by CAM-family methods, else None.
        signed: whether negative values carry meaning (e.g. integrated gradients).
        note: an explanation a viewer must read (empty or NaN maps, fallbacks), or None.
        seconds: wall time (for a refinement stage: since the first stage started).
        completeness_error: integrated gradients only: how far the attributions' sum misses
            f(x) - f(baseline), as a fraction of its size (Captum's convergence delta); else None.
        steps: integrated gradients only: the path steps used to get there; else None.
        exact: False for a refinement stage that is not yet the method's exact map.
        approximation: for such a stage, what it approximates in plain words; else None.
    """

    map: np.ndarray
    model_map: np.ndarray
    raw: np.ndarray | None
    method: str
    target: int
    target_label: str
    layer: str | None
    signed: bool
    note: str | None
    seconds: float
    completeness_error: float | None = None
    steps: int | None = None
    exact: bool = True
    approximation: str | None = None

    @property
    def cells(self) -> np.ndarray:
        """The map at the resolution it was computed: a CAM's layer grid (its positive part, scaled
        to 0..1 as ``model_map`` is), else ``model_map``. A display that smooths it bilinearly (as
        ``model_map`` was upsampled) shows the same picture from far fewer numbers."""
        if self.raw is None:
            return self.model_map
        return scale(np.maximum(self.raw, 0))  # all zeros stay zeros


@dataclass(frozen=True)
class RawMap:
    """What a method yields: the map before upsampling, the class it explained, for integrated
    gradients how well the attributions add up and with how many steps, and for a stage
    before the last, what it approximates."""

    values: np.ndarray
    target: int
    completeness_error: float | None = None
    steps: int | None = None
    approximation: str | None = None

    @property
    def exact(self) -> bool:
        return self.approximation is None


@dataclass(frozen=True)
class Method:
    """A registered attribution method and the facts a caller needs about it.

    ``run(handle, inputs, target, layer=..., progressive=..., progress=..., should_stop=...,
    **options)`` yields :class:`RawMap` stages: with ``progressive`` a method that refines
    yields fast approximations first; the last stage is always the exact map, and without
    ``progressive`` it is the only one.

    A method with ``finds_top`` accepts ``target=None`` and finds the top class in the same
    forward pass that it explains. Methods slower than a click run on the handle's long-work
    twin (:meth:`ModelHandle.for_long_work`), so they never hold the lock that quick requests
    wait for. ``first_agreement`` is the Pearson r between a refining method's first stage and
    its exact map that the tests hold it to on the sample photos. A ``cam_style`` map has the
    layer's resolution and is shown as pytorch-grad-cam shows CAMs: its positive part, upsampled
    and scaled to [0, 1]. ``passes`` counts the model runs of the exact map, for estimates.
    """

    name: str
    label: str
    library: str
    summary: str
    run: Callable[..., Iterator[RawMap]] = field(repr=False)
    layer_policy: LayerPolicy = "none"
    signed: bool = False
    speed: Speed = "click"
    finds_top: bool = False
    first_agreement: float | None = None
    cam_style: bool = False
    passes: Passes = field(default=one_backward, repr=False)

    @property
    def uses_layer(self) -> bool:
        return self.layer_policy != "none"

    @property
    def layer_choice(self) -> bool:
        """Whether the caller may choose the layer (CAM always uses the pooled layer)."""
        return self.layer_policy == "any"

    @property
    def runs_long(self) -> bool:
        return self.speed != "click"

    @property
    def refines(self) -> bool:
        return self.first_agreement is not None


METHODS: dict[str, Method] = {}


def register(
    name: str,
    label: str,
    *,
    library: str,
    summary: str,
    layer_policy: LayerPolicy = "none",
    signed: bool = False,
    speed: Speed = "click",
    finds_top: bool = False,
    first_agreement: float | None = None,
    cam_style: bool = False,
    stages: bool = False,
    passes: Passes = one_backward,
):
    """Register a method. A plain function returns one :class:`RawMap`; with ``stages`` it is a
    generator taking ``progressive`` and yielding them, the exact map last."""

    def decorate(function):
        if stages:
            run = function
        else:

            def run(*args, progressive: bool = False, **kwargs) -> Iterator[RawMap]:
                yield function(*args, **kwargs)

        METHODS[name] = Method(
            name,
            label,
            library,
            summary,
            run,
            layer_policy=layer_policy,
            signed=signed,
            speed=speed,
            finds_top=finds_top,
            first_agreement=first_agreement,
            cam_style=cam_style,
            passes=passes,
        )
        return function

    return decorate


class ClassScore:
    """``forward(x)``: the model's score for ``target`` as an ``(N, 1)`` column, where a ``None``
    target becomes the top class of the first forward pass through it. Given to Captum instead of
    the model, it explains the top class with the one pass that finds it; for a given class the
    graph, and so every gradient, is the same as Captum's own ``target=``."""

    def __init__(self, model: nn.Module, target: int | None) -> None:
        self.model, self.target = model, target

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.model(x)
        if self.target is None:
            self.target = int(logits[0].detach().argmax())
        return logits[:, self.target : self.target + 1]


# ------------------------------------------------------------------- helpers
def resolve_target(handle: ModelHandle, target: int | str | None, inputs: torch.Tensor | None = None) -> int:
    """A class index from an index, a class name (case-insensitive), or None (top-1)."""
    if target is None:
        if inputs is None:
            raise ParameterError("A target class is needed.")
        with handle.guard() as model, torch.no_grad():
            return int(model(inputs).argmax(dim=1)[0])
    if isinstance(target, str) and not target.strip().lstrip("-").isdigit():
        wanted = target.strip().lower()
        for index, label in enumerate(handle.labels):
            if label.lower() == wanted:
                return index
        close = [label for label in handle.labels if wanted in label.lower()][:5]
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ParameterError(f"No class named {target!r} in {handle.name}.{hint}")
    index = int(target)
    if not 0 <= index < len(handle.labels):
        raise ParameterError(f"Class {index} is out of range (0..{len(handle.labels) - 1}).")
    return index


def default_layer(handle: ModelHandle, layer: str | None) -> str:
    """The CAM layer: the given spatial layer, else the last spatial block."""
    if layer is None:
        return handle.last_spatial_layer()
    if not handle.layer(layer).is_spatial:
        raise ParameterError(
            f"{layer} has no spatial map (shape {handle.layer(layer).output_shape}); "
            "CAM methods need a convolutional layer."
        )
    return layer


def scale(cam: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's scaling: subtract the minimum, divide by the maximum."""
    cam = cam - cam.min()
    return (cam / (1e-7 + cam.max())).astype(np.float32)


def upsample(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a 2-D map to ``size`` (height, width)."""
    tensor = torch.as_tensor(np.ascontiguousarray(cam, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def activation_and_gradient(
    handle: ModelHandle, inputs: torch.Tensor, layer: str, target: int | None
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``A`` (the layer's output), ``dy_c/dA`` and the class ``c`` (the top one for None), in one
    forward/backward."""
    x = inputs.clone().requires_grad_(True)
    with handle.guard() as model, torch.enable_grad():
        with capture(model, [layer], clone=False, detach=False, modules=handle.modules) as record:
            logits = model(x)
        target = int(logits[0].detach().argmax()) if target is None else target
        activation = record.outputs[layer]
        (gradient,) = torch.autograd.grad(logits[:, target].sum(), activation)
    return activation.detach(), gradient.detach(), target


def pixels(attribution: torch.Tensor, signed: bool) -> np.ndarray:
    """Collapse ``(1, C, h, w)`` input attributions to ``(h, w)``: sum over colour channels
    (signed) or max of absolute values."""
    values = attribution.detach()[0].float().cpu()
    return (values.sum(dim=0) if signed else values.abs().amax(dim=0)).numpy()


def needs_grad(inputs: torch.Tensor) -> torch.Tensor:
    return inputs.detach().clone().requires_grad_(True)


def black(handle: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
    """A black image in the model's normalised input space."""
    return handle.normalise(torch.zeros(inputs.shape[0], 3, *inputs.shape[-2:], device=inputs.device)).to(inputs.dtype)
