"""The CAM family: CAM, Grad-CAM, Grad-CAM++, Layer-CAM and Score-CAM.

Captum has Grad-CAM (used here); it has no CAM, Grad-CAM++, Score-CAM or Layer-CAM, so those
are written here on the engine's hook layer, following the papers with the conventions of
pytorch-grad-cam (ReLU, then min-max scaling), which the tests check numerically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ParameterError
from ..hooks import capture, run_forward
from ..models import ModelHandle
from ..optim import Stopped
from .registry import ClassScore, ProgressCallback, RawMap, activation_and_gradient, needs_grad, register

#: Masked images per Score-CAM forward pass: small enough that a click arriving mid-batch shares
#: the cores only briefly before the next batch makes way for it (``ModelHandle.make_way``).
SCORECAM_BATCH = 16
#: Channels in Score-CAM's first picture, then each stage four times as many.
SCORECAM_FIRST = 16


@register(
    "gradcam",
    "Grad-CAM",
    layer_policy="any",
    cam_style=True,
    finds_top=True,
    library="captum (LayerGradCam)",
    summary="The layer's feature maps weighted by the average gradient of the class score.",
)
def gradcam(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **_) -> RawMap:
    from captum.attr import LayerGradCam

    with handle.guard() as model:
        score = ClassScore(model, target)
        cam = LayerGradCam(score, handle.modules[layer]).attribute(needs_grad(inputs), relu_attributions=True)
    return RawMap(cam.detach()[0, 0].cpu().numpy(), score.target)


@register(
    "cam",
    "CAM",
    layer_policy="pooled",
    cam_style=True,
    passes=lambda handle, layer, options: (1.0, 0.0),
    library="vis_core",
    summary="Class activation map: the last layer's feature maps weighted by the classifier's weights.",
    finds_top=True,
)
def cam(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **_) -> RawMap:
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
    return RawMap(torch.einsum("k,khw->hw", head.weight[target], activation).numpy(), target)


@register(
    "gradcam++",
    "Grad-CAM++",
    layer_policy="any",
    cam_style=True,
    library="vis_core",
    summary="Grad-CAM with pixel-wise weights, better for several instances of a class.",
    finds_top=True,
)
def gradcam_pp(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **_) -> RawMap:
    activation, gradient, target = activation_and_gradient(handle, inputs, layer, target)
    a, g = activation.double(), gradient.double()
    g2, g3 = g**2, g**3
    sum_a = a.sum(dim=(2, 3), keepdim=True)
    alpha = torch.where(g != 0, g2 / (2 * g2 + sum_a * g3 + 1e-6), torch.zeros_like(g))
    weights = (alpha * g.clamp(min=0)).sum(dim=(2, 3), keepdim=True)
    return RawMap((weights * a).sum(dim=1)[0].float().numpy(), target)


@register(
    "layercam",
    "Layer-CAM",
    layer_policy="any",
    cam_style=True,
    library="vis_core",
    summary="Each position's feature maps weighted by their own positive gradients: finer detail.",
    finds_top=True,
)
def layercam(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str, **_) -> RawMap:
    activation, gradient, target = activation_and_gradient(handle, inputs, layer, target)
    return RawMap((gradient.clamp(min=0) * activation).sum(dim=1)[0].numpy(), target)


@register(
    "scorecam",
    "Score-CAM",
    layer_policy="any",
    cam_style=True,
    speed="long",
    first_agreement=0.9,
    stages=True,
    passes=lambda handle, layer, options: (1.0 + handle.layer(layer).channels, 0.0),
    library="vis_core",
    summary="Each feature map used as a mask on the image; weighted by how much the masked image scores.",
)
def scorecam(
    handle: ModelHandle,
    inputs: torch.Tensor,
    target: int,
    layer: str,
    *,
    progressive: bool = False,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    **_,
) -> Iterator[RawMap]:
    """Score-CAM (Wang et al. 2020): the class score of the image masked by each of the layer's
    (normalised, upsampled) feature maps, softmaxed over channels, weights the maps.

    Progressive: the channels are scored in the order of their Grad-CAM contribution (mean
    gradient times mean activation, one backward pass), and a map over the channels scored so
    far is yielded after 16, then 4x as many, and so on: the softmax is dominated by the few
    channels that keep the class's evidence, which come first in that order. The last stage
    scores every channel and is exactly Score-CAM."""
    if progressive:
        activation, gradient, _ = activation_and_gradient(handle, inputs, layer, target)
        contribution = gradient.mean(dim=(2, 3))[0] * activation.mean(dim=(2, 3))[0]
        order = torch.argsort(contribution, descending=True)
    else:
        with (
            handle.guard() as model,
            torch.no_grad(),
            capture(model, [layer], stop_when_done=True, modules=handle.modules) as record,
        ):
            run_forward(model, inputs)
        activation = record.outputs[layer]
        order = torch.arange(activation.shape[1])
    masks = F.interpolate(activation, size=inputs.shape[-2:], mode="bilinear", align_corners=True)[0]
    flat = masks.reshape(masks.shape[0], -1)
    low, high = flat.min(dim=1).values, flat.max(dim=1).values
    masks = (masks - low[:, None, None]) / (high - low + 1e-8)[:, None, None]
    total = masks.shape[0]
    scores = torch.empty(total)
    show_at = SCORECAM_FIRST if progressive else total
    done = 0
    while done < total:
        if should_stop is not None and should_stop():
            raise Stopped("Score-CAM was stopped.")
        end = min(total, done + SCORECAM_BATCH, show_at if show_at > done else total)
        chosen = order[done:end]
        with handle.guard() as model, torch.no_grad():  # per batch: other long work can take turns
            scores[chosen] = model(inputs * masks[chosen, None])[:, target].float()
        done = end
        if progress is not None:
            progress(done, total)
        if done == show_at and done < total:
            scored = order[:done]
            weights = torch.softmax(scores[scored], dim=0)
            values = (weights[:, None, None] * activation[0, scored]).sum(dim=0).numpy()
            yield RawMap(
                values,
                target,
                approximation=f"Score-CAM over the {done} of {total} channels with the most Grad-CAM evidence",
            )
            show_at *= 4
    weights = torch.softmax(scores, dim=0)
    yield RawMap((weights[:, None, None] * activation[0]).sum(dim=0).numpy(), target)


def upsampled_gradcam(handle: ModelHandle, inputs: torch.Tensor, target: int | None, layer: str) -> RawMap:
    """Grad-CAM's positive part at the input's resolution (for guided Grad-CAM)."""
    from .registry import upsample

    result = gradcam(handle, inputs, target, layer)
    return RawMap(upsample(np.maximum(result.values, 0), tuple(inputs.shape[-2:])), result.target)
