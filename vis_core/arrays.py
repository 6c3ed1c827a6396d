"""The engine's two numeric conversions, in one place.

``to_uint8``: a float picture in [0, 1] to 8-bit pixels (clipped, rounded). ``normalise``:
[0, 1] image tensors to a model's input space with its per-channel mean and standard deviation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] (anything outside is clipped) as uint8 0..255."""
    return np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def normalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(images - mean) / std`` per channel, for ``(N, C, H, W)`` tensors."""
    shape = (1, -1, 1, 1)
    mean_t = torch.as_tensor(mean, device=images.device, dtype=images.dtype).view(shape)
    std_t = torch.as_tensor(std, device=images.device, dtype=images.dtype).view(shape)
    return (images - mean_t) / std_t
