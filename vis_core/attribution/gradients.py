"""Gradient methods: saliency, SmoothGrad, integrated gradients, guided backprop, guided Grad-CAM.

Captum provides saliency, SmoothGrad and integrated gradients, so they are used here. Its guided
backprop only changes ``nn.ReLU`` modules (not the ReLU6 of MobileNetV2), so guided backprop is
written on :func:`vis_core.projection.backward_rule`, which handles both.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from ..models import ModelHandle
from .cam import upsampled_gradcam
from .registry import ClassScore, RawMap, black, needs_grad, pixels, register

MAX_SMOOTHGRAD_SAMPLES = 64
MAX_IG_STEPS = 256
#: Integrated gradients must add up to f(x) - f(baseline) within this fraction (Sundararajan et
#: al. 2017: "within 5%"); steps are doubled, up to MAX_IG_STEPS, until they do.
IG_COMPLETENESS = 0.05
#: Path steps of integrated gradients' first picture.
IG_FIRST = 8


@register(
    "saliency",
    "Saliency (gradient)",
    library="captum (Saliency)",
    summary="How much each pixel's change would change the class score (absolute gradient).",
    finds_top=True,
)
def saliency(handle: ModelHandle, inputs: torch.Tensor, target: int | None, **_) -> RawMap:
    from captum.attr import Saliency

    with handle.guard() as model:
        score = ClassScore(model, target)
        result = Saliency(score).attribute(needs_grad(inputs), abs=True)
    return RawMap(pixels(result, signed=False), score.target)


@register(
    "smoothgrad",
    "SmoothGrad",
    speed="seconds",
    passes=lambda handle, layer, options: (0.0, float(min(int(options.get("samples", 16)), MAX_SMOOTHGRAD_SAMPLES))),
    library="captum (NoiseTunnel)",
    summary="Gradients averaged over noisy copies of the image: less speckle.",
)
def smoothgrad(
    handle: ModelHandle, inputs: torch.Tensor, target: int, *, samples: int = 16, noise: float = 0.15, **_
) -> RawMap:
    """No quick first picture: an average over fewer noisy copies agrees poorly with the full one
    (r about 0.6 for 4 of 16 copies), and 16 copies take about as long as a few Grad-CAMs."""
    from captum.attr import NoiseTunnel, Saliency

    samples = max(1, min(int(samples), MAX_SMOOTHGRAD_SAMPLES))
    sigma = float(noise) * float(inputs.max() - inputs.min())
    with handle.guard() as model:
        result = NoiseTunnel(Saliency(model)).attribute(
            needs_grad(inputs),
            target=target,
            nt_type="smoothgrad",
            nt_samples=samples,
            nt_samples_batch_size=min(samples, 16),
            stdevs=sigma,
            abs=True,
        )
    return RawMap(pixels(result, signed=False), target)


@register(
    "integrated_gradients",
    "Integrated gradients",
    signed=True,
    speed="seconds",
    first_agreement=0.95,
    stages=True,
    passes=lambda handle, layer, options: (2.0, float(min(int(options.get("steps", 32)), MAX_IG_STEPS))),
    library="captum (IntegratedGradients)",
    summary="Gradients summed along a path from a black image to this one: credit that adds up to the score.",
)
def integrated_gradients(
    handle: ModelHandle, inputs: torch.Tensor, target: int, *, steps: int = 32, progressive: bool = False, **_
) -> Iterator[RawMap]:
    """Captum's IntegratedGradients from a black image, checked for completeness: the
    attributions must sum to f(x) - f(black) within :data:`IG_COMPLETENESS` of it. ``steps`` is
    where it starts; it doubles (up to :data:`MAX_IG_STEPS`) until the sum adds up.
    Progressive: first a path of :data:`IG_FIRST` steps, with its completeness error."""
    from captum.attr import IntegratedGradients

    steps = max(2, min(int(steps), MAX_IG_STEPS))
    baseline = black(handle, inputs)
    with handle.guard() as model, torch.no_grad():
        logits = model(torch.cat([inputs, baseline]))[:, target].double()
    gap = abs(float(logits[0] - logits[1]))

    def path(count: int) -> tuple[np.ndarray, float]:
        with handle.guard() as model:
            result, delta = IntegratedGradients(model).attribute(
                needs_grad(inputs),
                baselines=baseline,
                target=target,
                n_steps=count,
                internal_batch_size=min(count, 32),
                return_convergence_delta=True,
            )
        return pixels(result, signed=True), abs(float(delta.sum())) / max(gap, 1e-12)

    if progressive and steps > IG_FIRST:
        values, error = path(IG_FIRST)
        yield RawMap(
            values,
            target,
            completeness_error=error,
            steps=IG_FIRST,
            approximation=f"integrated gradients with {IG_FIRST} path steps (adds up within {error:.0%})",
        )
    while True:
        values, error = path(steps)
        if error <= IG_COMPLETENESS or steps >= MAX_IG_STEPS:
            break
        steps = min(2 * steps, MAX_IG_STEPS)
    yield RawMap(values, target, completeness_error=error, steps=steps)


def _guided_gradient(handle: ModelHandle, inputs: torch.Tensor, target: int | None) -> tuple[np.ndarray, int]:
    from ..projection import backward_rule

    x = inputs.clone().requires_grad_(True)
    with handle.guard() as model, torch.enable_grad(), backward_rule(model, "guided"):
        score = ClassScore(model, target)
        (gradient,) = torch.autograd.grad(score(x).sum(), x)
    return np.abs(gradient.detach()[0].cpu().numpy()).max(axis=0), score.target


@register(
    "guided_backprop",
    "Guided backprop",
    library="vis_core",
    summary="Gradients with negative signals stopped at every ReLU: crisp edges, but see the sanity check.",
    finds_top=True,
)
def guided_backprop(handle: ModelHandle, inputs: torch.Tensor, target: int | None, **_) -> RawMap:
    return RawMap(*_guided_gradient(handle, inputs, target))


@register(
    "guided_gradcam",
    "Guided Grad-CAM",
    layer_policy="any",
    library="vis_core + captum",
    summary="Guided backpropagation (fine edges) masked by Grad-CAM (where the class is).",
    passes=lambda handle, layer, options: (0.0, 2.0),
    finds_top=True,
)
def guided_gradcam(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **_) -> RawMap:
    """A pixel-resolution map (Grad-CAM is upsampled here), so it is treated as a pixel method."""
    cam = upsampled_gradcam(handle, inputs, target, layer)
    guided, _ = _guided_gradient(handle, inputs, cam.target)
    return RawMap(guided * cam.values, cam.target)
