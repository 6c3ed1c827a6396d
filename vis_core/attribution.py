"""Activation and attribution maps: which pixels made the model choose a class?

Methods are registered by name in :data:`METHODS` (the dashboard builds its menus from it):

========================  ============================================  =================
name                      what                                          implemented by
========================  ============================================  =================
``cam``                   CAM (Zhou et al. 2016): ``sum_k w_ck A_k``    vis_core
``gradcam``               Grad-CAM (Selvaraju et al. 2017)              Captum LayerGradCam
``gradcam++``             Grad-CAM++ (Chattopadhay et al. 2018)         vis_core
``scorecam``              Score-CAM (Wang et al. 2020), batched         vis_core
``layercam``              Layer-CAM (Jiang et al. 2021)                 vis_core
``saliency``              |gradient| (Simonyan et al. 2014)             Captum Saliency
``smoothgrad``            SmoothGrad (Smilkov et al. 2017)              Captum NoiseTunnel
``integrated_gradients``  Integrated Gradients (Sundararajan 2017)      Captum, batched steps
``occlusion``             Occlusion (Zeiler & Fergus 2014)              Captum Occlusion
``guided_backprop``       guided backpropagation (Springenberg 2015)    vis_core
``guided_gradcam``        guided backprop x Grad-CAM                    vis_core + Captum
========================  ============================================  =================

Captum provides Grad-CAM, saliency, SmoothGrad, integrated gradients and occlusion, so we use
it for those. It has no CAM, Grad-CAM++, Score-CAM or Layer-CAM, and its guided backprop
only changes ``nn.ReLU`` modules (not the ReLU6 of MobileNetV2), so those are written here on
the same hook layer (:func:`vis_core.hooks.capture`, :mod:`vis_core.projection`) as the rest.
Formulas follow the papers, with the conventions of pytorch-grad-cam for the CAM family
(ReLU, then min-max scaling), which the tests check numerically.

Every method returns an :class:`Attribution` whose ``map`` is at the input image's resolution.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .errors import ParameterError
from .hooks import capture, run_forward
from .models import ModelHandle

#: Server-side caps (the dashboard's controls stay inside them).
MAX_SMOOTHGRAD_SAMPLES = 64
MAX_IG_STEPS = 256
#: Integrated gradients must add up to f(x) - f(baseline) within this fraction (Sundararajan et
#: al. 2017: "within 5%"); steps are doubled, up to MAX_IG_STEPS, until they do.
IG_COMPLETENESS = 0.05
SCORECAM_BATCH = 32

ProgressCallback = Callable[[int, int], None]


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
        seconds: wall time.
        completeness_error: integrated gradients only: how far the attributions' sum misses
            f(x) - f(baseline), as a fraction of its size (Captum's convergence delta); else None.
        steps: integrated gradients only: the path steps used to get there; else None.
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


@dataclass(frozen=True)
class RawMap:
    """What a method's ``run`` returns: the map before upsampling, the class it explained, and
    for integrated gradients how well the attributions add up and with how many steps."""

    values: np.ndarray
    target: int
    completeness_error: float | None = None
    steps: int | None = None


@dataclass(frozen=True)
class Method:
    """A registered attribution method and what it needs.

    ``run(handle, inputs, target, layer=..., ...)`` returns a :class:`RawMap`.
    A method with ``finds_top`` accepts ``target=None`` and finds the top class in the same
    forward pass that it explains (explaining the top prediction is the common case; a
    separate forward pass just to find it cost as much as the map itself for Grad-CAM).
    A method that ``runs_long`` (many forward passes) runs on the handle's long-work twin
    (:meth:`ModelHandle.for_long_work`), so it never holds the lock that quick requests wait for.
    """

    name: str
    label: str
    uses_layer: bool
    signed: bool
    library: str
    summary: str
    run: Callable[..., RawMap] = field(repr=False)
    finds_top: bool = False
    runs_long: bool = False


METHODS: dict[str, Method] = {}


def register(
    name: str,
    label: str,
    *,
    uses_layer: bool,
    signed: bool = False,
    library: str,
    summary: str,
    finds_top: bool = False,
    runs_long: bool = False,
):
    def decorate(function):
        METHODS[name] = Method(name, label, uses_layer, signed, library, summary, function, finds_top, runs_long)
        return function

    return decorate


class _ClassScore:
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


def _scale(cam: np.ndarray) -> np.ndarray:
    """pytorch-grad-cam's scaling: subtract the minimum, divide by the maximum."""
    cam = cam - cam.min()
    return (cam / (1e-7 + cam.max())).astype(np.float32)


def _upsample(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    tensor = torch.as_tensor(np.ascontiguousarray(cam, dtype=np.float32))[None, None]
    return F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0].numpy()


def _upsample_and_scale(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``_scale(_upsample(max(cam, 0)))`` in a few in-place torch operations."""
    tensor = torch.as_tensor(np.ascontiguousarray(cam, dtype=np.float32)).clamp(min=0)[None, None]
    up = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False)[0, 0]
    up.sub_(up.min())
    return up.div_(1e-7 + up.max()).numpy()


def _activation_and_gradient(
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


def _pixels(attribution: torch.Tensor, signed: bool) -> np.ndarray:
    """Collapse ``(1, C, h, w)`` input attributions to ``(h, w)``: sum over colour channels
    (signed) or max of absolute values."""
    values = attribution.detach()[0].float().cpu()
    return (values.sum(dim=0) if signed else values.abs().amax(dim=0)).numpy()


# ------------------------------------------------------------------- the CAM family
@register(
    "gradcam",
    "Grad-CAM",
    uses_layer=True,
    finds_top=True,
    library="captum (LayerGradCam)",
    summary="The layer's feature maps weighted by the average gradient of the class score.",
)
def _gradcam(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **_) -> tuple:
    from captum.attr import LayerGradCam

    with handle.guard() as model:
        score = _ClassScore(model, target)
        cam = LayerGradCam(score, handle.modules[layer]).attribute(_needs_grad(inputs), relu_attributions=True)
    return RawMap(cam.detach()[0, 0].cpu().numpy(), score.target)


@register(
    "cam",
    "CAM",
    uses_layer=True,
    library="vis_core",
    summary="Class activation map: the last layer's feature maps weighted by the classifier's weights.",
    finds_top=True,
)
def _cam(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **_) -> tuple:
    linear = [m for m in handle.modules.values() if isinstance(m, nn.Linear)]
    with handle.guard() as model, torch.no_grad(), capture(model, [layer], modules=handle.modules) as record:
        logits = run_forward(model, inputs)
    activation = record.outputs[layer][0]
    reason = (
        "CAM needs a network that ends in global average pooling followed by a single linear layer, "
        f"with {layer} as the pooled layer; {handle.name} does not (try Grad-CAM, which works on any layer)."
    )
    if not linear or logits is None:
        raise ParameterError(reason)
    head = linear[-1]
    pooled = activation.mean(dim=(1, 2))
    if head.in_features != pooled.numel():
        raise ParameterError(reason)
    predicted = head(pooled[None])[0]
    if not torch.allclose(predicted, logits[0], rtol=1e-3, atol=1e-3 * float(logits.abs().max())):
        raise ParameterError(reason)
    target = int(logits[0].argmax()) if target is None else target
    cam = torch.einsum("k,khw->hw", head.weight[target], activation).numpy()
    return RawMap(cam, target)


@register(
    "gradcam++",
    "Grad-CAM++",
    uses_layer=True,
    library="vis_core",
    summary="Grad-CAM with pixel-wise weights, better for several instances of a class.",
    finds_top=True,
)
def _gradcam_pp(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **_) -> tuple:
    activation, gradient, target = _activation_and_gradient(handle, inputs, layer, target)
    a, g = activation.double(), gradient.double()
    g2, g3 = g**2, g**3
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    alpha = torch.where(g != 0, g2 / (2 * g2 + sum_a * g3 + 1e-6), torch.zeros_like(g))
    weights = (alpha * g.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
    return RawMap((weights * a).sum(dim=1)[0].float().numpy(), target)


@register(
    "layercam",
    "Layer-CAM",
    uses_layer=True,
    library="vis_core",
    summary="Each position's feature maps weighted by their own positive gradients: finer detail.",
    finds_top=True,
)
def _layercam(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **_) -> tuple:
    activation, gradient, target = _activation_and_gradient(handle, inputs, layer, target)
    return RawMap((gradient.clamp(min=0) * activation).sum(dim=1)[0].numpy(), target)


@register(
    "scorecam",
    "Score-CAM",
    uses_layer=True,
    library="vis_core",
    summary="Each feature map used as a mask on the image; weighted by how much the masked image scores.",
    runs_long=True,
)
def _scorecam(
    handle: ModelHandle,
    inputs: torch.Tensor,
    target: int,
    layer: str,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    **_,
) -> tuple:
    with handle.guard() as model, torch.no_grad():
        with capture(model, [layer], stop_when_done=True, modules=handle.modules) as record:
            run_forward(model, inputs)
        activation = record.outputs[layer]
        masks = F.interpolate(activation, size=inputs.shape[-2:], mode="bilinear", align_corners=True)[0]
        flat = masks.reshape(masks.shape[0], -1)
        low, high = flat.min(dim=1).values, flat.max(dim=1).values
        masks = (masks - low[:, None, None]) / (high - low + 1e-8)[:, None, None]
        scores = []
        total = masks.shape[0]
        for start in range(0, total, SCORECAM_BATCH):
            if should_stop is not None and should_stop():
                raise InterruptedError("Score-CAM was stopped.")
            batch = inputs * masks[start : start + SCORECAM_BATCH, None]
            scores.append(model(batch)[:, target])
            if progress is not None:
                progress(min(total, start + SCORECAM_BATCH), total)
        weights = torch.softmax(torch.cat(scores), dim=0)
        cam = (weights[:, None, None] * activation[0]).sum(dim=0)
    return RawMap(cam.numpy(), target)


# -------------------------------------------------------------------- pixel methods
@register(
    "saliency",
    "Saliency (gradient)",
    uses_layer=False,
    library="captum (Saliency)",
    summary="How much each pixel's change would change the class score (absolute gradient).",
    finds_top=True,
)
def _saliency(handle: ModelHandle, inputs: torch.Tensor, target: int | None, **_) -> tuple:
    from captum.attr import Saliency

    with handle.guard() as model:
        score = _ClassScore(model, target)
        result = Saliency(score).attribute(_needs_grad(inputs), abs=True)
    return RawMap(_pixels(result, signed=False), score.target)


@register(
    "smoothgrad",
    "SmoothGrad",
    uses_layer=False,
    library="captum (NoiseTunnel)",
    summary="Gradients averaged over noisy copies of the image: less speckle.",
    runs_long=True,
)
def _smoothgrad(
    handle: ModelHandle, inputs: torch.Tensor, target: int, *, samples: int = 16, noise: float = 0.15, **_
) -> tuple:
    from captum.attr import NoiseTunnel, Saliency

    samples = max(1, min(int(samples), MAX_SMOOTHGRAD_SAMPLES))
    sigma = float(noise) * float(inputs.max() - inputs.min())
    with handle.guard() as model:
        result = NoiseTunnel(Saliency(model)).attribute(
            _needs_grad(inputs),
            target=target,
            nt_type="smoothgrad",
            nt_samples=samples,
            nt_samples_batch_size=min(samples, 16),
            stdevs=sigma,
            abs=True,
        )
    return RawMap(_pixels(result, signed=False), target)


@register(
    "integrated_gradients",
    "Integrated gradients",
    uses_layer=False,
    signed=True,
    library="captum (IntegratedGradients)",
    summary="Gradients summed along a path from a black image to this one: credit that adds up to the score.",
    runs_long=True,
)
def _integrated_gradients(handle: ModelHandle, inputs: torch.Tensor, target: int, *, steps: int = 32, **_) -> RawMap:
    """Captum's IntegratedGradients from a black image, checked for completeness: the
    attributions must sum to f(x) - f(black) within :data:`IG_COMPLETENESS` of it. ``steps`` is
    where it starts; it doubles (up to :data:`MAX_IG_STEPS`) until the sum adds up."""
    from captum.attr import IntegratedGradients

    steps = max(2, min(int(steps), MAX_IG_STEPS))
    baseline = _black(handle, inputs)
    with handle.guard() as model:
        with torch.no_grad():
            logits = model(torch.cat([inputs, baseline]))[:, target].double()
        gap = abs(float(logits[0] - logits[1]))
        while True:
            result, delta = IntegratedGradients(model).attribute(
                _needs_grad(inputs),
                baselines=baseline,
                target=target,
                n_steps=steps,
                internal_batch_size=min(steps, 32),
                return_convergence_delta=True,
            )
            error = abs(float(delta.sum())) / max(gap, 1e-12)
            if error <= IG_COMPLETENESS or steps >= MAX_IG_STEPS:
                break
            steps = min(2 * steps, MAX_IG_STEPS)
    return RawMap(_pixels(result, signed=True), target, completeness_error=error, steps=steps)


@register(
    "occlusion",
    "Occlusion",
    uses_layer=False,
    signed=True,
    library="captum (Occlusion)",
    summary="A grey patch slid over the image: how much the score drops when each part is hidden.",
    runs_long=True,
)
def _occlusion(handle: ModelHandle, inputs: torch.Tensor, target: int, *, window: int = 0, **_) -> tuple:
    from captum.attr import Occlusion

    height = inputs.shape[-1]
    window = int(window) or max(4, height // 8)
    stride = max(2, window // 2)
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
    return RawMap(_pixels(result, signed=True), target)


def _guided_gradient(handle: ModelHandle, inputs: torch.Tensor, target: int | None) -> tuple[np.ndarray, int]:
    from .projection import backward_rule

    x = inputs.clone().requires_grad_(True)
    with handle.guard() as model, torch.enable_grad(), backward_rule(model, "guided"):
        score = _ClassScore(model, target)
        (gradient,) = torch.autograd.grad(score(x).sum(), x)
    return np.abs(gradient.detach()[0].cpu().numpy()).max(axis=0), score.target


@register(
    "guided_backprop",
    "Guided backprop",
    uses_layer=False,
    library="vis_core",
    summary="Gradients with negative signals stopped at every ReLU: crisp edges, but see the sanity check.",
    finds_top=True,
)
def _guided_backprop(handle: ModelHandle, inputs: torch.Tensor, target: int | None, **_) -> tuple:
    return RawMap(*_guided_gradient(handle, inputs, target))


@register(
    "guided_gradcam",
    "Guided Grad-CAM",
    uses_layer=True,
    library="vis_core + captum",
    summary="Guided backpropagation (fine edges) masked by Grad-CAM (where the class is).",
    finds_top=True,
)
def _guided_gradcam(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **kw) -> tuple:
    cam = _gradcam(handle, inputs, target, layer)
    target = cam.target
    upsampled = _upsample(np.maximum(cam.values, 0), tuple(inputs.shape[-2:]))
    guided, _ = _guided_gradient(handle, inputs, target)
    return RawMap(guided * upsampled, target)


def _needs_grad(inputs: torch.Tensor) -> torch.Tensor:
    return inputs.detach().clone().requires_grad_(True)


def _black(handle: ModelHandle, inputs: torch.Tensor) -> torch.Tensor:
    """A black image in the model's normalised input space."""
    mean = torch.tensor(handle.mean, device=inputs.device).view(1, -1, 1, 1)
    std = torch.tensor(handle.std, device=inputs.device).view(1, -1, 1, 1)
    return ((torch.zeros_like(inputs) - mean) / std).to(inputs.dtype)


# --------------------------------------------------------------------- the verb
def attribute(
    handle: ModelHandle,
    image: Image.Image,
    method: str,
    *,
    target: int | str | None = None,
    layer: str | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options,
) -> Attribution:
    """Explain the model's score for ``target`` on ``image`` with ``method``.

    Args:
        handle: the model.
        image: an RGB PIL image.
        method: a name from :data:`METHODS`.
        target: class index, class name, or None for the top prediction.
        layer: the layer for CAM-family methods (default: the last spatial block).
        progress: ``progress(done, total)`` for long methods (Score-CAM).
        should_stop: polled by long methods; they raise InterruptedError when it is True.
        **options: method options (``samples``/``noise`` for SmoothGrad, ``steps`` for
            integrated gradients, ``window`` for occlusion).

    Raises:
        ParameterError: unknown method, class or layer, or a method that cannot work on this
            model (the message says why, e.g. CAM without global pooling).
    """
    return attribute_tensor(
        handle,
        handle.preprocess(image),
        method,
        image_size=image.size,
        target=target,
        layer=layer,
        progress=progress,
        should_stop=should_stop,
        **options,
    )


def attribute_tensor(
    handle: ModelHandle,
    inputs: torch.Tensor,
    method: str,
    *,
    image_size: tuple[int, int] | None = None,
    target: int | str | None = None,
    layer: str | None = None,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options,
) -> Attribution:
    """:func:`attribute` for a preprocessed ``(1, C, h, w)`` input (``image_size`` maps it back)."""
    if method not in METHODS:
        raise ParameterError(f"Unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    spec = METHODS[method]
    start = time.perf_counter()
    if spec.runs_long:
        handle = handle.for_long_work()
    inputs = inputs.to(handle.device)
    # The top class is found in the method's own forward pass where it can be (Method.finds_top).
    target_index = None if target is None and spec.finds_top else resolve_target(handle, target, inputs)
    used_layer = default_layer(handle, layer) if spec.uses_layer else None
    output = spec.run(
        handle, inputs, target_index, layer=used_layer, progress=progress, should_stop=should_stop, **options
    )
    raw, target_index = np.asarray(output.values, dtype=np.float32), output.target
    note = None
    if output.completeness_error is not None and output.completeness_error > IG_COMPLETENESS:
        note = (
            f"The attributions add up to the score change only within {output.completeness_error:.1%} "
            f"(the goal is {IG_COMPLETENESS:.0%}), even with {output.steps} steps, the most allowed: "
            "read the map as approximate."
        )
    if not np.isfinite(raw).all():
        raw = np.nan_to_num(raw, nan=0.0, posinf=0.0, neginf=0.0)
        note = "Some values were not finite (NaN or infinite) and are shown as zero."
    size = tuple(inputs.shape[-2:])
    if spec.uses_layer and method != "guided_gradcam":
        cam = np.maximum(raw, 0)
        if float(cam.max()) <= 0:
            note = (
                f"{spec.label} is zero everywhere: no part of {used_layer} speaks for "
                f"'{handle.labels[target_index]}' (its evidence is all negative). "
                "Try another class or an earlier layer."
            )
        model_map = _upsample_and_scale(raw, size)
    else:
        model_map = raw if raw.shape == size else _upsample(raw, size)
        if float(np.abs(model_map).max()) == 0:
            note = (
                f"{spec.label} is zero everywhere for '{handle.labels[target_index]}': the class score does not "
                "react to any pixel here (e.g. saturated or dead units)."
            )
    model_map = model_map.astype(np.float32)
    return Attribution(
        map=model_map if image_size is None else handle.to_image_space(model_map, image_size),
        model_map=model_map,
        raw=raw if spec.uses_layer and method != "guided_gradcam" else None,
        method=method,
        target=target_index,
        target_label=handle.labels[target_index],
        layer=used_layer,
        signed=spec.signed,
        note=note,
        seconds=time.perf_counter() - start,
        completeness_error=output.completeness_error,
        steps=output.steps,
    )
