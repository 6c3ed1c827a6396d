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

Both come in stages too (:func:`faithfulness_stages`, :func:`sanity_stages`), for a viewer who
should see something within seconds: a quick first version (``exact`` False, ``approximation``
saying what it leaves out), then the exact result. The first faithfulness curves sample
:data:`FIRST_STEPS` shares of pixels instead of every step; the first sanity check randomises
the whole network but compares the maps after only :data:`FIRST_POINTS` of its steps (the
values it shows are the exact ones at those steps, the fully randomised end included).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from .attribution import METHODS, attribute_tensor, resolve_target
from .errors import ParameterError
from .models import ModelHandle
from .optim import Stopped
from .surgery import reset_batchnorm
from .transforms import gaussian_blur

MAX_STEPS = 100
#: Substrates: what deleted pixels become, or what inserted pixels are placed on.
SUBSTRATES = ("zero", "blur")
#: Random maps averaged for the baseline.
RANDOM_SEEDS = 3
#: Images per forward pass when the curves are computed (bounds memory, not the result).
BATCH = 64
#: Steps of the quick first faithfulness curves (the full ones have ``steps``, 24 by default).
FIRST_STEPS = 6
#: Random maps of the quick first version's baseline (the exact one averages RANDOM_SEEDS): with
#: four methods the first version then needs 63 images (one batch) instead of 73. Measured on
#: coffee, four methods, this 2-core CPU: first version 2.35 s (3 maps: 2.6 s; 1 map: 1.9 s, but
#: one map's areas strayed up to 0.115 from the mean of three, on the greyscale camera).
FIRST_RANDOM_SEEDS = 2
#: Steps of the cascade the quick first sanity check compares maps at (the last one included).
FIRST_POINTS = 3
#: How close the quick first faithfulness curves are to the exact ones on the sample photos
#: (held by tests/test_evidence.py, stated on the page): the area under every curve within
#: ``FIRST_AUC_ERROR`` of the exact one's, and its Pearson r with the exact curve (the quick one
#: interpolated linearly) at least ``FIRST_AGREEMENT``. Measured over the five sample photos, four
#: methods and the random baseline: AUC within 0.056 and r >= 0.72 with 6 steps (4 steps: 0.098
#: and 0.61; 8 steps: 0.039 and 0.80). The r is modest because low-probability curves are jagged
#: between the points a quick version skips; the areas, which the verdicts compare, are close.
FIRST_AGREEMENT = 0.7
FIRST_AUC_ERROR = 0.06


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
        exact: False for a quick first version (:func:`faithfulness_stages`).
        approximation: what a quick version leaves out (None when exact).
    """

    curves: tuple[Faithfulness, ...]
    random: Faithfulness
    exact: bool = True
    approximation: str | None = None

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
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    known: dict[tuple, float] | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``(fractions, deletion, insertion)`` for each map, in batched passes (chunks of
    :data:`BATCH` images; ``progress(done, total)`` after each chunk, ``should_stop`` polled
    before each).

    Each distinct image is run once: every curve starts or ends at the photo itself or at a
    substrate, the same for all maps; and ``known`` (class probability by image, filled in
    here) lets a later call on the same input, maps and substrates reuse what an earlier one
    computed, e.g. the full curves reuse a quick first version's points."""
    steps = max(2, min(int(steps), MAX_STEPS))
    height, width = inputs.shape[-2:]
    pixels = height * width
    fractions = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fractions * pixels).astype(np.int64)
    known = {} if known is None else known
    substrates = {
        "deletion": _substrate(inputs, deletion_substrate),
        "insertion": _substrate(inputs, insertion_substrate),
    }
    ranks: list[torch.Tensor] = []
    for saliency in maps:
        if saliency.shape != (height, width):
            raise ParameterError(f"The map is {saliency.shape}, the input {(height, width)}.")
        order = np.argsort(-np.nan_to_num(saliency, nan=-np.inf).ravel(), kind="stable")
        rank = np.empty(order.size, dtype=np.int64)
        rank[order] = np.arange(order.size)
        ranks.append(torch.as_tensor(rank.reshape(height, width), device=inputs.device))

    def key(kind: str, index: int, count: int) -> tuple:
        if count == 0:  # nothing deleted yet: the photo; nothing inserted yet: the substrate
            return ("photo",) if kind == "deletion" else ("substrate", "insertion")
        if count == pixels:
            return ("substrate", "deletion") if kind == "deletion" else ("photo",)
        return (kind, index, int(count))

    def image(image_key: tuple) -> torch.Tensor:
        if image_key == ("photo",):
            return inputs[0]
        if image_key[0] == "substrate":
            return substrates[image_key[1]][0]
        kind, index, count = image_key
        mask = (ranks[index] < count).to(inputs.dtype)[None]  # 1 = among the most salient pixels
        if kind == "deletion":
            return inputs[0] * (1 - mask) + substrates["deletion"][0] * mask
        return substrates["insertion"][0] * (1 - mask) + inputs[0] * mask

    wanted = [
        key(kind, index, count) for index in range(len(maps)) for kind in ("deletion", "insertion") for count in counts
    ]
    missing = list(dict.fromkeys(k for k in wanted if k not in known))
    with handle.guard() as model, torch.no_grad():
        for start in range(0, len(missing), BATCH):
            if should_stop is not None and should_stop():
                raise Stopped("The faithfulness curves were stopped.")
            chunk = missing[start : start + BATCH]
            probabilities = torch.softmax(model(torch.stack([image(k) for k in chunk])), dim=1)[:, target]
            known.update(zip(chunk, probabilities.float().cpu().tolist()))
            if progress is not None:
                progress(min(start + BATCH, len(missing)), len(missing))
    per_curve = np.asarray([known[k] for k in wanted], dtype=np.float32).reshape(len(maps), 2, steps + 1)
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
    options = dict(target=target, layer=layer, deletion_substrate=deletion_substrate)
    stages = faithfulness_stages(
        handle,
        image,
        methods,
        steps=steps,
        first_steps=MAX_STEPS + 1,
        **options,
        insertion_substrate=insertion_substrate,
    )
    (report,) = stages
    return report


def faithfulness_stages(
    handle: ModelHandle,
    image: Image.Image,
    methods: Sequence[str],
    *,
    target: int | str | None = None,
    layer: str | None = None,
    steps: int = 24,
    first_steps: int = FIRST_STEPS,
    deletion_substrate: str = "zero",
    insertion_substrate: str = "blur",
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Iterator[FaithfulnessReport]:
    """:func:`faithfulness`, progressively: the same maps' curves on ``first_steps`` shares of
    pixels first, against :data:`FIRST_RANDOM_SEEDS` random maps (``exact`` False; a few times
    fewer forward passes), then on all ``steps`` (``exact`` True). With ``first_steps >= steps``
    only the exact report comes. ``progress`` counts the images of the exact curves;
    ``should_stop`` raises :class:`Stopped` between chunks."""
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
    steps = max(2, min(int(steps), MAX_STEPS))
    known: dict[tuple, float] = {}  # the full curves reuse the quick ones' points
    if int(first_steps) < steps:
        first = max(2, int(first_steps))
        quick_maps = maps[: len(methods) + FIRST_RANDOM_SEEDS]
        curves = _curves(handle, inputs, quick_maps, index, first, *substrates, should_stop=should_stop, known=known)
        approximation = (
            f"curves through {first + 1} shares of pixels instead of {steps + 1}, against the mean of "
            f"{FIRST_RANDOM_SEEDS} random maps instead of {RANDOM_SEEDS}"
        )
        yield _report(methods, index, curves, substrates, exact=False, approximation=approximation)
    curves = _curves(
        handle, inputs, maps, index, steps, *substrates, progress=progress, should_stop=should_stop, known=known
    )
    yield _report(methods, index, curves, substrates)


def _report(methods, index, curves, substrates, *, exact=True, approximation=None) -> FaithfulnessReport:
    """The methods' curves and the mean of the random maps' (the curves after the methods')."""
    results = tuple(_faithfulness(m, index, *curve, substrates) for m, curve in zip(methods, curves))
    random = curves[len(methods) :]
    mean_deletion = np.mean([deletion for _, deletion, _ in random], axis=0)
    mean_insertion = np.mean([insertion for _, _, insertion in random], axis=0)
    baseline = _faithfulness("random", index, curves[0][0], mean_deletion, mean_insertion, substrates)
    return FaithfulnessReport(results, baseline, exact, approximation)


# ----------------------------------------------------------------- sanity check
@dataclass(frozen=True)
class SanityCheck:
    """Similarity of each method's map to its original as layers are randomised.

    Attributes:
        steps: the layers randomised so far at each step ("" for the original model).
        spearman: method -> rank correlation per step (1.0 at step 0).
        ssim: method -> structural similarity per step.
        exact: False for a version that compares the maps at only some steps of the cascade
            (:func:`sanity_stages`); the values it has are the exact ones at those steps.
        approximation: which steps a partial version has (None when exact).
    """

    steps: list[str]
    spearman: dict[str, list[float]]
    ssim: dict[str, list[float]]
    exact: bool = True
    approximation: str | None = None


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
    *_, check = sanity_stages(
        handle, image, methods, target=target, layer=layer, seed=seed, progress=progress, max_steps=max_steps, first=0
    )
    return check


def sanity_stages(
    handle: ModelHandle,
    image: Image.Image,
    methods: Sequence[str],
    *,
    target: int | str | None = None,
    layer: str | None = None,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    max_steps: int | None = None,
    first: int = FIRST_POINTS,
    every: int = 4,
) -> Iterator[SanityCheck]:
    """:func:`sanity_check`, progressively. First the whole cascade is run with the maps compared
    at only ``first`` of its steps, evenly spaced, the last (everything randomised) included:
    exact values at those steps, so the end point and the verdict are final at once. Then the
    cascade runs again on a fresh copy (the same seeded weights, so the same maps) filling in the
    other steps, a partial result every ``every`` steps, the exact check last. ``first=0``: the
    exact check alone. ``progress(done, total)`` counts compared steps; ``should_stop`` raises
    :class:`Stopped` between steps."""
    for method in methods:
        if method not in METHODS:
            raise ParameterError(f"Unknown method {method!r}.")
    inputs = handle.preprocess(image)
    index = resolve_target(handle, target, inputs)
    cam_layer = layer or handle.last_spatial_layer()
    order = randomisation_order(handle)[: max_steps or None]
    total = len(order)

    def maps(twin: ModelHandle) -> dict[str, np.ndarray]:
        return {m: np.abs(attribute_tensor(twin, inputs, m, target=index, layer=cam_layer).model_map) for m in methods}

    compared: dict[int, dict[str, tuple[float, float]]] = {}  # step -> method -> (spearman, ssim)

    def cascade(at: set[int]):
        """Randomise block after block from a fresh copy; compare the maps at the steps in ``at``."""
        twin = _private_copy(handle)
        original = maps(twin)
        generator = torch.Generator().manual_seed(seed)
        for step, block in enumerate(order, start=1):
            _reinitialise(twin.modules[block], generator)
            if step in at and step not in compared:
                if should_stop is not None and should_stop():
                    raise Stopped("The sanity check was stopped.")
                current = maps(twin)
                compared[step] = {
                    m: (_spearman(original[m], current[m]), _ssim(original[m], current[m])) for m in methods
                }
                if progress is not None:
                    progress(len(compared), total)
                yield step

    def result(exact: bool) -> SanityCheck:
        steps = sorted(compared)
        check = SanityCheck(
            steps=["", *(order[step - 1] for step in steps)],
            spearman={m: [1.0, *(compared[step][m][0] for step in steps)] for m in methods},
            ssim={m: [1.0, *(compared[step][m][1] for step in steps)] for m in methods},
            exact=exact,
            approximation=None if exact else f"the maps compared after {len(steps)} of the {total} randomisation steps",
        )
        return check

    if 0 < first < total:
        points = {round(total * k / first) for k in range(1, first + 1)}
        for _ in cascade(points):
            pass
        yield result(exact=False)
    for step in cascade(set(range(1, total + 1))):
        if step % every == 0 and len(compared) < total:
            yield result(exact=False)
    yield result(exact=True)


def _private_copy(handle: ModelHandle) -> ModelHandle:
    """A copy of the model to randomise, sharing nothing with ``handle``."""
    with handle.lock:
        twin_model = copy.deepcopy(handle.model)
    return ModelHandle(
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
