"""How far to trust an attribution map: faithfulness curves and a sanity check.

* Deletion and insertion (Petsiuk et al. 2018, RISE): remove the pixels a map ranks highest
  first (replacing them with a blurred copy) and watch the class probability fall; or start
  from the blurred image and insert them. A faithful map makes deletion fall fast (small
  area under the curve) and insertion rise fast (large area). All steps of a curve run as
  one batch.
* Cascading randomisation (Adebayo et al. 2018, "Sanity checks for saliency maps"): the
  weights are re-initialised from the top layer down, on a private copy of the model, and
  each method's map is compared with the original by Spearman rank correlation and SSIM.
  A method whose map barely changes while the model is destroyed is not explaining the
  model (guided backpropagation is the classic failure).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from .attribution import METHODS, attribute_tensor, resolve_target
from .errors import ParameterError
from .models import ModelHandle
from .optim import gaussian_blur

MAX_STEPS = 100


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one map.

    Attributes:
        fractions: share of pixels removed (deletion) or inserted (insertion) at each step.
        deletion, insertion: the class probability at each step.
        deletion_auc, insertion_auc: areas under the curves (trapezoid rule on [0, 1]).
    """

    method: str
    target: int
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float


def _blurred(inputs: torch.Tensor) -> torch.Tensor:
    """A heavily blurred copy (Gaussian, sigma about 1/20 of the size), RISE's substrate."""
    return gaussian_blur(inputs, max(1.0, inputs.shape[-1] / 20), padding="replicate")


def deletion_insertion(
    handle: ModelHandle,
    inputs: torch.Tensor,
    saliency: np.ndarray,
    target: int,
    *,
    steps: int = 24,
    method: str = "",
) -> Faithfulness:
    """Deletion and insertion curves for a map over the model input (``(h, w)``)."""
    steps = max(2, min(int(steps), MAX_STEPS))
    height, width = inputs.shape[-2:]
    if saliency.shape != (height, width):
        raise ParameterError(f"The map is {saliency.shape}, the input {(height, width)}.")
    order = np.argsort(-np.nan_to_num(saliency, nan=-np.inf).ravel(), kind="stable")
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * order.size).astype(int)
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(order.size)
    ranks_t = torch.as_tensor(ranks.reshape(height, width), device=inputs.device)
    masks = torch.stack([(ranks_t < count) for count in counts]).to(inputs.dtype)[:, None]  # 1 = salient pixel
    substrate = _blurred(inputs)
    deleted = inputs * (1 - masks) + substrate * masks
    inserted = substrate * (1 - masks) + inputs * masks
    with handle.guard() as model, torch.no_grad():
        probabilities = torch.softmax(model(torch.cat([deleted, inserted])), dim=1)[:, target].float().cpu().numpy()
    deletion, insertion = probabilities[: steps + 1], probabilities[steps + 1 :]
    return Faithfulness(
        method,
        target,
        fractions,
        deletion,
        insertion,
        float(np.trapezoid(deletion, fractions)),
        float(np.trapezoid(insertion, fractions)),
    )


def faithfulness(
    handle: ModelHandle,
    image: Image.Image,
    methods: Sequence[str],
    *,
    target: int | str | None = None,
    layer: str | None = None,
    steps: int = 24,
) -> list[Faithfulness]:
    """Deletion/insertion curves of several methods on one image and class."""
    inputs = handle.preprocess(image)
    index = resolve_target(handle, target, inputs)
    results = []
    for method in methods:
        attribution = attribute_tensor(handle, inputs, method, target=index, layer=layer)
        saliency = np.abs(attribution.model_map) if attribution.signed else attribution.model_map
        results.append(deletion_insertion(handle, inputs, saliency, index, steps=steps, method=method))
    return results


# ----------------------------------------------------------------- sanity check
@dataclass(frozen=True)
class SanityCheck:
    """Similarity of each method's map to its original as layers are randomised.

    Attributes:
        steps: the layers randomised so far at each step ("" for the original model).
        spearman: method -> rank correlation per step (1.0 at step 0).
        ssim: method -> structural similarity per step.
    """

    steps: list[str]
    spearman: dict[str, list[float]]
    ssim: dict[str, list[float]]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(spearmanr(a.ravel(), b.ravel()).statistic)


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    def unit(x: np.ndarray) -> np.ndarray:
        span = np.ptp(x)
        return (x - x.min()) / span if span > 0 else np.zeros_like(x)

    return float(structural_similarity(unit(a), unit(b), data_range=1.0))


def randomisation_order(handle: ModelHandle) -> list[str]:
    """Blocks with parameters, from the output back to the input."""
    blocks = [info.name for info in handle.blocks() if info.params > 0]
    return list(reversed(blocks))


def sanity_check(
    handle: ModelHandle,
    image: Image.Image,
    methods: Sequence[str],
    *,
    target: int | str | None = None,
    layer: str | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    max_steps: int | None = None,
) -> SanityCheck:
    """Cascading randomisation of the weights, top layer first, on a private copy."""
    for method in methods:
        if method not in METHODS:
            raise ParameterError(f"Unknown method {method!r}.")
    inputs = handle.preprocess(image)
    index = resolve_target(handle, target, inputs)
    with handle.lock:
        twin_model = copy.deepcopy(handle.model)
    twin = ModelHandle(
        name=f"{handle.name} (randomised copy)",
        model=twin_model,
        labels=handle.labels,
        input_size=handle.input_size,
        resize_size=handle.resize_size,
        mean=handle.mean,
        std=handle.std,
        device=handle.device,
        weights="randomised",
        grayscale=handle.grayscale,
    )
    cam_layer = layer or handle.last_spatial_layer()

    def maps() -> dict[str, np.ndarray]:
        return {m: np.abs(attribute_tensor(twin, inputs, m, target=index, layer=cam_layer).model_map) for m in methods}

    original = maps()
    order = randomisation_order(twin)[: max_steps or None]
    result = SanityCheck(steps=[""], spearman={m: [1.0] for m in methods}, ssim={m: [1.0] for m in methods})
    generator = torch.Generator().manual_seed(seed)
    for step, block in enumerate(order, start=1):
        _reinitialise(twin.modules[block], generator)
        current = maps()
        result.steps.append(block)
        for method in methods:
            result.spearman[method].append(_spearman(original[method], current[method]))
            result.ssim[method].append(_ssim(original[method], current[method]))
        if progress is not None:
            progress(step, len(order))
    return result


def _reinitialise(block: nn.Module, generator: torch.Generator) -> None:
    """Random weights for every parameter of a block (Kaiming-like scale), seeded."""
    with torch.no_grad():
        for name, parameter in block.named_parameters():
            if parameter.dim() > 1:
                fan_in = parameter[0].numel()
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            elif name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.copy_(1.0 + 0.1 * torch.randn(parameter.shape, generator=generator))
        for module in block.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_var is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
