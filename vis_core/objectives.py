"""Objectives for gradient ascent on images: what :func:`vis_core.optim.ascend` maximises.

Each objective names the layers it reads (so the forward pass can stop after the deepest one)
and returns one score per batch element, to be *maximised*. They compose with ``+ - *`` (as in
lucent and captum.optim): ``channel("features.10", 5) + 1e2 * diversity("features.10")``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: The pseudo-layer naming the network's output; reading it runs the whole network.
LOGITS = "<logits>"

Scores = Callable[[dict[str, torch.Tensor]], torch.Tensor]


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


def class_logit(index: int | Sequence[int]) -> Objective:
    """The logit of a class (runs the whole network); a list gives each batch element its own class."""
    if isinstance(index, int):
        return Objective(frozenset([LOGITS]), lambda a: a[LOGITS][:, index], f"logit {index}")
    indices = list(index)

    def score(a: dict[str, torch.Tensor]) -> torch.Tensor:
        chosen = torch.as_tensor(indices, device=a[LOGITS].device)
        return a[LOGITS][torch.arange(len(indices), device=chosen.device), chosen]

    return Objective(frozenset([LOGITS]), score, f"logits {indices}")


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
