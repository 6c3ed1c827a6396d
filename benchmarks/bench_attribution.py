"""Grad-CAM at the last feature layer of the default model, against the peers.

Same model, image, layer and class for all; timed interleaved in one process:

* ``vis_core``: ``attribute_tensor(handle, x, "gradcam")`` (Captum's LayerGradCam inside our
  guard, plus upsampling and placing the map on the image), given the class;
* ``vis_core_top``: the same without a class, the common case: it explains the top prediction,
  which it finds in the same forward pass;
* ``captum``: ``LayerGradCam(model, layer).attribute(x, target)`` called directly;
* ``pytorch_grad_cam``: ``GradCAM(model, [layer])(x, targets)`` (it calls ``.backward()`` on a
  model whose parameters require gradients, so it pays for weight gradients too);
* ``forward_backward``: a full forward and backward pass to the input, the yardstick.

Targets: vis_core at most 1.1x Captum and at most 0.5x pytorch-grad-cam; vis_core_top at most
1.1x Captum given the class.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch

import vis_core
from vis_core.attribution import attribute_tensor

from .common import interleaved

LAYER = "features.18"


def run(device: torch.device, repeats: int) -> dict[str, Any]:
    from captum.attr import LayerGradCam
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    warnings.filterwarnings("ignore")
    handle = vis_core.load_model(device=device)
    image = vis_core.sample_image("chelsea")
    x = handle.preprocess(image)
    target = vis_core.predict(handle, image).indices[0]

    captum_model = copy.deepcopy(handle.model)
    captum_layer = dict(captum_model.named_modules())[LAYER]
    gradcam_model = copy.deepcopy(handle.model)
    for parameter in gradcam_model.parameters():
        parameter.requires_grad_(True)
    grad_cam = GradCAM(model=gradcam_model, target_layers=[dict(gradcam_model.named_modules())[LAYER]])
    targets = [ClassifierOutputTarget(target)]
    plain = copy.deepcopy(handle.model)

    def ours() -> None:
        attribute_tensor(handle, x, "gradcam", target=target, layer=LAYER)

    def ours_top() -> None:
        attribute_tensor(handle, x, "gradcam", layer=LAYER)

    def captum() -> None:
        LayerGradCam(captum_model, captum_layer).attribute(
            x.clone().requires_grad_(True), target=target, relu_attributions=True
        )

    def peer() -> None:
        grad_cam(input_tensor=x.clone(), targets=targets)

    def forward_backward() -> None:
        inputs = x.clone().requires_grad_(True)
        torch.autograd.grad(plain(inputs)[0, target], inputs)

    timings = interleaved(
        {
            "forward_backward": forward_backward,
            "vis_core": ours,
            "vis_core_top": ours_top,
            "captum": captum,
            "pytorch_grad_cam": peer,
        },
        device,
        repeats * 2,  # a short operation: more samples for a stable median
    )
    grad_cam.__exit__(None, None, None)
    median = {name: values["median_ms"] for name, values in timings.items()}
    ratios = {
        "vis_core_vs_captum": round(median["vis_core"] / median["captum"], 3),
        "vis_core_top_vs_captum": round(median["vis_core_top"] / median["captum"], 3),
        "vis_core_vs_pytorch_grad_cam": round(median["vis_core"] / median["pytorch_grad_cam"], 3),
        "vis_core_vs_forward_backward": round(median["vis_core"] / median["forward_backward"], 3),
        "captum_vs_forward_backward": round(median["captum"] / median["forward_backward"], 3),
        "pytorch_grad_cam_vs_forward_backward": round(median["pytorch_grad_cam"] / median["forward_backward"], 3),
    }
    return {
        "model": handle.key,
        "layer": LAYER,
        "image": "skimage chelsea",
        "target": int(target),
        "repeats": repeats,
        "timings": timings,
        "ratios": ratios,
        "targets": {
            "vis_core_vs_captum": "<= 1.1",
            "vis_core_top_vs_captum": "<= 1.1",
            "vis_core_vs_pytorch_grad_cam": "<= 0.5",
        },
        "meets_target": ratios["vis_core_vs_captum"] <= 1.1
        and ratios["vis_core_top_vs_captum"] <= 1.1
        and ratios["vis_core_vs_pytorch_grad_cam"] <= 0.5,
    }
