"""Turning arrays into pictures without a plotting library (for the CLI and downloads).

Plotly draws the interactive figures in the dashboard; files written by the CLI are plain
PNGs made here with numpy and Pillow, so the engine stays free of UI dependencies.
The colour map is viridis (van der Walt & Smith, 2015), interpolated from 9 of its anchors.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .arrays import to_uint8

_VIRIDIS_ANCHORS = np.array(
    [
        (68, 1, 84),
        (71, 44, 122),
        (59, 81, 139),
        (44, 113, 142),
        (33, 144, 141),
        (39, 173, 129),
        (92, 200, 99),
        (170, 220, 50),
        (253, 231, 37),
    ],
    dtype=np.float64,
)
_POSITIONS = np.linspace(0.0, 1.0, len(_VIRIDIS_ANCHORS))
VIRIDIS_LUT: np.ndarray = (
    np.stack([np.interp(np.linspace(0, 1, 256), _POSITIONS, _VIRIDIS_ANCHORS[:, c]) for c in range(3)], axis=1)
    .round()
    .astype(np.uint8)
)


def normalize(array: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by min..max; constant or non-finite input gives zeros."""
    array = np.nan_to_num(np.asarray(array, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(array.min()), float(array.max())
    if high - low < 1e-12:
        return np.zeros_like(array)
    return (array - low) / (high - low)


def colorize(array: np.ndarray) -> np.ndarray:
    """A 2-D array as an ``(H, W, 3)`` uint8 viridis image, scaled by its own range."""
    return VIRIDIS_LUT[to_uint8(normalize(array))]


def upscale(rgb: np.ndarray, min_side: int) -> np.ndarray:
    """Nearest-neighbour enlarge so the shorter side is at least ``min_side`` pixels."""
    height, width = rgb.shape[:2]
    factor = max(1, math.ceil(min_side / max(1, min(height, width))))
    return rgb.repeat(factor, axis=0).repeat(factor, axis=1)


def grid(tiles: Sequence[np.ndarray], columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Lay equally sized ``(H, W, 3)`` tiles in a grid with white padding."""
    if not tiles:
        raise ValueError("grid() needs at least one tile")
    columns = columns or math.ceil(math.sqrt(len(tiles)))
    rows = math.ceil(len(tiles) / columns)
    height, width = tiles[0].shape[:2]
    canvas = np.full((rows * (height + pad) + pad, columns * (width + pad) + pad, 3), 255, dtype=np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        top, left = pad + row * (height + pad), pad + column * (width + pad)
        canvas[top : top + height, left : left + width] = tile
    return canvas


def channel_grid(activations: np.ndarray, min_tile: int = 48) -> np.ndarray:
    """Every channel of a ``(C, H, W)`` activation, each scaled by its own range, in a grid."""
    tiles = [upscale(colorize(channel), min_tile) for channel in activations]
    return grid(tiles)


def save_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write an ``(H, W, 3)`` uint8 array as PNG, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, format="PNG")
    return path
