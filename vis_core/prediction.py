"""Prediction: the top classes of an image, from one guarded forward pass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .errors import ModelError
from .hooks import run_forward
from .models import ModelHandle


@dataclass(frozen=True)
class Prediction:
    """Top-k classes for one image.

    Attributes:
        indices: class indices, most probable first.
        labels: their names.
        probabilities: softmax probabilities.
    """

    indices: tuple[int, ...]
    labels: tuple[str, ...]
    probabilities: tuple[float, ...]

    @property
    def is_finite(self) -> bool:
        """False when the model's outputs were not numbers (NaN or infinite weights): then no
        class can be named and the probabilities mean nothing."""
        return all(np.isfinite(self.probabilities))


def predict(handle: ModelHandle, image: Image.Image, k: int = 5) -> Prediction:
    """Top-``k`` classes of ``image`` (softmax over the logits)."""
    logits = _logits(handle, handle.preprocess(image))
    return top_k(handle, logits, k)


def top_k(handle: ModelHandle, logits: np.ndarray, k: int = 5) -> Prediction:
    """Turn a logit vector into a :class:`Prediction`."""
    logits64 = logits.astype(np.float64)
    probabilities = np.exp(logits64 - logits64.max())
    probabilities /= probabilities.sum()
    k = max(1, min(int(k), probabilities.size))
    best = np.argsort(-probabilities, kind="stable")[:k]
    labels = tuple(handle.labels[i] if i < len(handle.labels) else f"class {i}" for i in best)
    return Prediction(tuple(int(i) for i in best), labels, tuple(float(probabilities[i]) for i in best))


def _logits(handle: ModelHandle, inputs: torch.Tensor) -> np.ndarray:
    with handle.guard() as model, torch.no_grad():
        output = run_forward(model, inputs)
    if output is None:
        raise ModelError("The forward pass was interrupted.")
    return output.detach().float().cpu().reshape(-1).numpy()
