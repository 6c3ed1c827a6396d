"""How far to trust an attribution map: faithfulness curves and a sanity check.

* Deletion and insertion (Petsiuk et al. 2018, RISE): remove the pixels a map ranks highest
  first and watch the class probability fall; or start from a substrate and insert them. As
  in RISE, deletion replaces pixels with zeros of the normalised input (the mean colour, a
  flat grey) and insertion starts from a blurred copy; both substrates are named options and
  every result records the ones it used (a blurred deletion substrate keeps the shapes a CNN
  recognises, and made saliency look worse than a random map). A faithful map makes deletion
  fall fast (small area under the curve) and insertion rise fast (large area). Next to the
  methods, a random map (the mean over :data:`RANDOM_SEEDS` seeds) is the baseline any map
  must beat; every curve of every map runs in one batched pass.
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
from .surgery import reset_batchnorm
from .transforms import gaussian_blur

MAX_STEPS = 100
#: Substrates: what deleted pixels become, or what inserted pixels are placed on.
SUBSTRATES = ("zero", "blur")
#: Random maps averaged for the baseline.
RANDOM_SEEDS = 3
#: Images per forward pass when the curves are computed (bounds memory, not the result).
BATCH = 64


@dataclass(frozen=True)
class Faithfulness:
    """Deletion and insertion curves of one map.

    Attributes:
        fractions: share of pixels removed (deletion) or inserted (insertion) at each step.
        deletion, insertion: the class probability at each step.
        deletion_auc, insertion_auc: areas under the curves (trapezoid rule on [0, 1]).
        deletion_substrate, insertion_substrate: what deleted pixels became and what pixels
            were inserted onto (one of :data:`SUBSTRATES`).
    """

    method: str
    target: int
    fractions: np.ndarray
    deletion: np.ndarray
    insertion: np.ndarray
    deletion_auc: float
    insertion_auc: float
    deletion_substrate: str = "zero"
    insertion_substrate: str = "blur"


@dataclass(frozen=True)
class FaithfulnessReport:
    """Deletion/insertion curves of several methods and of the random baseline, for one class.

    Attributes:
        curves: one per method, in the order asked.
        random: the mean curves of :data:`RANDOM_SEEDS` random maps (method ``"random"``).
    """

    curves: tuple[Faithfulness, ...]
    random: Faithfulness

    @property
    def target(self) -> int:
        return self.random.target

    def beats_random(self, curve: Faithfulness) -> tuple[bool, bool]:
        """Whether ``curve`` deletes the evidence faster (lower deletion AUC) and restores it
        faster (higher insertion AUC) than a random map."""
        return curve.deletion_auc < self.random.deletion_auc, curve.insertion_auc > self.random.insertion_auc

    def verdict(self, curve: Faithfulness) -> str:
        """One line in words, e.g. ``deletes the evidence faster than random: yes; restores it faster: no``."""
        deletes, restores = self.beats_random(curve)
        return (
            f"deletes the evidence faster than random: {'yes' if deletes else 'no'}; "
            f"restores it faster than random: {'yes' if restores else 'no'}"
        )


def _substrate(inputs: torch.Tensor, kind: str) -> torch.Tensor:
    """``zero``: zeros of the normalised input, the mean colour (RISE's deletion substrate);
    ``blur``: a heavily blurred copy, sigma about 1/20 of the size. RISE inserts onto a blurred
    image too, with a milder blur (an 11-tap kernel, sigma about 1 pixel); with so mild a blur
    every map's insertion curve starts near the photo's own score and the maps barely differ."""
    if kind == "zero":
        return torch.zeros_like(inputs)
    if kind == "blur":
        return gaussian_blur(inputs, max(1.0, inputs.shape[-1] / 20), padding="replicate")
    raise ParameterError(f"Unknown substrate {kind!r}; choose one of {', '.join(SUBSTRATES)}.")


def _curves(
    handle: ModelHandle,
    inputs: torch.Tensor,
    maps: Sequence[np.ndarray],
    target: int,
    steps: int,
    deletion_substrate: str,
    insertion_substrate: str,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(fractions, deletion, insertion)`` for each map, every image of every curve in one
    batched pass (chunks of :data:`BATCH` images)."""
    steps = max(2, min(int(steps), MAX_STEPS))
    height, width = inputs.shape[-2:]
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = torch.as_tensor(np.round(fractions * height * width).astype(np.int64), device=inputs.device)
    deleted_onto = _substrate(inputs, deletion_substrate)
    inserted_onto = _substrate(inputs, insertion_substrate)
    batch = []
    for saliency in maps:
        if saliency.shape != (height, width):
            raise ParameterError(f"The map is {saliency.shape}, the input {(height, width)}.")
        order = np.argsort(-np.nan_to_num(saliency, nan=-np.inf).ravel(), kind="stable")
        ranks = np.empty(order.size, dtype=np.int64)
        ranks[order] = np.arange(order.size)
        ranks_t = torch.as_tensor(ranks.reshape(height, width), device=inputs.device)
        masks = (ranks_t[None] < counts[:, None, None]).to(inputs.dtype)[:, None]  # 1 = salient pixel
        batch.append(inputs * (1 - masks) + deleted_onto * masks)
        batch.append(inserted_onto * (1 - masks) + inputs * masks)
    images = torch.cat(batch)
    with handle.guard() as model, torch.no_grad():
        probabilities = torch.cat(
            [torch.softmax(model(images[i : i + BATCH]), dim=1)[:, target] for i in range(0, len(images), BATCH)]
        )
    per_curve = probabilities.float().cpu().numpy().reshape(len(maps), 2, steps + 1)
    return [(fractions, deletion, insertion) for deletion, insertion in per_curve]


def _faithfulness(
    method: str, target: int, fractions: np.ndarray, deletion: np.ndarray, insertion: np.ndarray, substrates
) -> Faithfulness:
    return Faithfulness(
        method,
        target,
        fractions,
        deletion,
        insertion,
        float(np.trapezoid(deletion, fractions)),
        float(np.trapezoid(insertion, fractions)),
        *substrates,
    )


def deletion_insertion(
    handle: ModelHandle,
    inputs: torch.Tensor,
    saliency: np.ndarray,
    target: int,
    *,
    steps: int = 24,
    method: str = "",
    deletion_substrate: str = "zero",
    insertion_substrate: str = "blur",
) -> Faithfulness:
    """Deletion and insertion curves for a map over the model input (``(h, w)``)."""
    substrates = (deletion_substrate, insertion_substrate)
    ((fractions, deletion, insertion),) = _curves(handle, inputs, [saliency], target, steps, *substrates)
    return _faithfulness(method, target, fractions, deletion, insertion, substrates)


def faithfulness(
    handle: ModelHandle,
    image: Image.Image,
    methods: Sequence[str],
    *,
    target: int | str | None = None,
    layer: str | None = None,
    steps: int = 24,
    deletion_substrate: str = "zero",
    insertion_substrate: str = "blur",
) -> FaithfulnessReport:
    """Deletion/insertion curves of several methods on one image and class, beside the curves
    of a random map (the mean over :data:`RANDOM_SEEDS` seeds), all in one batched pass."""
    handle = handle.for_long_work()  # hundreds of forward passes: not on the lock a click waits for
    inputs = handle.preprocess(image)
    index = resolve_target(handle, target, inputs)
    maps = []
    for method in methods:
        attribution = attribute_tensor(handle, inputs, method, target=index, layer=layer)
        maps.append(np.abs(attribution.model_map) if attribution.signed else attribution.model_map)
    shape = tuple(inputs.shape[-2:])
    maps += [np.random.default_rng(seed).random(shape) for seed in range(RANDOM_SEEDS)]
    substrates = (deletion_substrate, insertion_substrate)
    curves = _curves(handle, inputs, maps, index, steps, *substrates)
    results = tuple(_faithfulness(m, index, *curve, substrates) for m, curve in zip(methods, curves))
    random = curves[len(methods) :]
    mean_deletion = np.mean([deletion for _, deletion, _ in random], axis=0)
    mean_insertion = np.mean([insertion for _, _, insertion in random], axis=0)
    baseline = _faithfulness("random", index, curves[0][0], mean_deletion, mean_insertion, substrates)
    return FaithfulnessReport(results, baseline)


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
    reset_batchnorm(block)
