"""Small image datasets for the training lab.

* ``digits``: scikit-learn's bundled handwritten digits (1,797 real 8x8 scans, 10 classes),
  upsampled to 28x28 so they fit the original notebook's MNIST architecture. Offline.
* ``shapes``: a synthetic set made here, seeded: circles, squares, triangles, crosses,
  stripes and checkerboards at random positions, sizes and angles, with noise. Offline.
* ``mnist``, ``fashion-mnist``, ``cifar10``: torchvision's datasets, downloaded on first
  use into :func:`data_root`; without a network a clear :class:`DatasetError` says so.

Every dataset comes back as float tensors in [0, 1] with a seeded, stratified train/test
split (for the bundled ones; torchvision's have their own official split).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import VisCoreError

DATASETS: tuple[str, ...] = ("digits", "shapes", "mnist", "fashion-mnist", "cifar10")
OFFLINE_DATASETS: tuple[str, ...] = ("digits", "shapes")
#: Training images, channels, side and classes of each dataset (seed-independent), so what a run
#: will write can be estimated before anything is loaded or downloaded (tests check them).
DATASET_SHAPES: dict[str, tuple[int, int, int, int]] = {
    "digits": (1438, 1, 28, 10),
    "shapes": (1920, 1, 28, 6),
    "mnist": (60_000, 1, 28, 10),
    "fashion-mnist": (60_000, 1, 28, 10),
    "cifar10": (50_000, 3, 32, 10),
}

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "stripes", "checkerboard")
FASHION_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
CIFAR_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


class DatasetError(VisCoreError, ValueError):
    """A dataset is unknown or cannot be obtained (e.g. no network for a download)."""


@dataclass(frozen=True)
class Dataset:
    """Images as ``(N, C, H, W)`` float32 tensors in [0, 1] with int64 labels.

    Attributes:
        name: dataset name (one of :data:`DATASETS`).
        train_x, train_y, test_x, test_y: the split.
        classes: class names, index-aligned with the labels.
        description: where the data came from and how it was split, in words.
    """

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    classes: tuple[str, ...]
    description: str

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def size(self) -> int:
        return int(self.train_x.shape[-1])

    def normalization(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and standard deviation of the training images."""
        mean = self.train_x.mean(dim=(0, 2, 3))
        std = self.train_x.std(dim=(0, 2, 3)).clamp_min(1e-6)
        return tuple(round(float(v), 6) for v in mean), tuple(round(float(v), 6) for v in std)


def data_root() -> Path:
    """Where downloaded datasets are kept (``$VIS_CORE_DATA`` or ``~/.cache/vis_core/datasets``)."""
    return Path(os.environ.get("VIS_CORE_DATA", Path.home() / ".cache" / "vis_core" / "datasets"))


def stratified_split(labels: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with the same class proportions, shuffled by ``seed``."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        indices = np.flatnonzero(labels == label)
        rng.shuffle(indices)
        cut = max(1, round(len(indices) * test_fraction))
        test.extend(indices[:cut])
        train.extend(indices[cut:])
    return rng.permutation(np.array(train)), rng.permutation(np.array(test))


def _split(name: str, images: torch.Tensor, labels: np.ndarray, classes, seed: int, what: str) -> Dataset:
    train, test = stratified_split(labels, 0.2, seed)
    y = torch.as_tensor(labels, dtype=torch.int64)
    return Dataset(
        name=name,
        train_x=images[train].contiguous(),
        train_y=y[train].contiguous(),
        test_x=images[test].contiguous(),
        test_y=y[test].contiguous(),
        classes=tuple(classes),
        description=f"{what}; stratified 80/20 train/test split with seed {seed} "
        f"({len(train)} training, {len(test)} test images)",
    )


def _digits_table() -> np.ndarray:
    """scikit-learn's ``digits.csv.gz`` (64 pixels and the label per row), read directly:
    importing scikit-learn itself is far slower than reading this one file."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("scikit-learn is not installed, so the digits dataset is unavailable.")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
    if not path.is_file():  # a future layout: fall back to the public loader
        from sklearn.datasets import load_digits as sklearn_digits

        bunch = sklearn_digits()
        return np.column_stack([bunch.data, bunch.target])
    return np.loadtxt(path, delimiter=",", dtype=np.float32)


def load_digits(seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits, upsampled (bilinear) to 28x28."""
    table = _digits_table()
    images = torch.as_tensor(table[:, :64].reshape(-1, 1, 8, 8), dtype=torch.float32) / 16.0
    images = F.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False).clamp_(0.0, 1.0)
    return _split(
        "digits",
        images,
        table[:, 64].astype(np.int64),
        [str(d) for d in range(10)],
        seed,
        "scikit-learn's 1,797 handwritten digits (8x8 scans, upsampled to 28x28)",
    )


def make_shapes(seed: int = 0, per_class: int = 400, size: int = 28) -> Dataset:
    """A synthetic set of shapes and textures, drawn anti-aliased at 2x and downsampled."""
    rng = np.random.default_rng(seed)
    scale = 2
    grid = (np.arange(size * scale) + 0.5) / scale
    yy, xx = np.meshgrid(grid, grid, indexing="ij")
    images, labels = [], []
    for label, kind in enumerate(SHAPE_CLASSES):
        for _ in range(per_class):
            mask = _draw(kind, rng, xx, yy, size)
            picture = mask.reshape(size, scale, size, scale).mean(axis=(1, 3))
            contrast = rng.uniform(0.6, 1.0)
            picture = picture * contrast + rng.normal(0.0, 0.06, picture.shape)
            images.append(np.clip(picture, 0.0, 1.0))
            labels.append(label)
    tensor = torch.as_tensor(np.stack(images), dtype=torch.float32).unsqueeze(1)
    return _split(
        "shapes",
        tensor,
        np.array(labels),
        SHAPE_CLASSES,
        seed,
        f"{len(labels)} generated 28x28 images of {len(SHAPE_CLASSES)} shapes and textures (seed {seed})",
    )


def _draw(kind: str, rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, size: int) -> np.ndarray:
    angle = rng.uniform(0, np.pi)
    cx, cy = rng.uniform(size * 0.35, size * 0.65, 2)
    radius = rng.uniform(size * 0.18, size * 0.32)
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    if kind == "circle":
        return ((u**2 + v**2) <= radius**2).astype(np.float64)
    if kind == "square":
        return ((np.abs(u) <= radius * 0.8) & (np.abs(v) <= radius * 0.8)).astype(np.float64)
    if kind == "triangle":
        inside = np.ones_like(u, dtype=bool)
        for k in range(3):  # three half-planes at 120 degrees
            theta = 2 * np.pi * k / 3
            inside &= (u * np.cos(theta) + v * np.sin(theta)) <= radius * 0.5
        return inside.astype(np.float64)
    if kind == "cross":
        arm = radius * 0.3
        return (((np.abs(u) <= arm) & (np.abs(v) <= radius)) | ((np.abs(v) <= arm) & (np.abs(u) <= radius))).astype(
            np.float64
        )
    period = rng.uniform(4.0, 7.0)
    phase = rng.uniform(0, 2 * np.pi)
    if kind == "stripes":
        return (np.sin(2 * np.pi * u / period + phase) > 0).astype(np.float64)
    if kind == "checkerboard":
        return ((np.sin(2 * np.pi * u / period + phase) * np.sin(2 * np.pi * v / period)) > 0).astype(np.float64)
    raise DatasetError(f"Unknown shape {kind!r}")


def _torchvision(name: str, seed: int) -> Dataset:
    import torchvision

    builders: dict[str, tuple[Callable, tuple[str, ...] | None]] = {
        "mnist": (torchvision.datasets.MNIST, tuple(str(d) for d in range(10))),
        "fashion-mnist": (torchvision.datasets.FashionMNIST, FASHION_CLASSES),
        "cifar10": (torchvision.datasets.CIFAR10, CIFAR_CLASSES),
    }
    builder, classes = builders[name]
    root = data_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
        train = builder(str(root), train=True, download=True)
        test = builder(str(root), train=False, download=True)
    except Exception as exc:
        raise DatasetError(
            f"The {name} dataset could not be downloaded ({type(exc).__name__}: {' '.join(str(exc).split())[:100]}). "
            "Offline, train on 'digits' or 'shapes', which need no download."
        ) from exc

    def tensors(split) -> tuple[torch.Tensor, torch.Tensor]:
        data = torch.as_tensor(np.asarray(split.data))
        data = data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)
        return data.float().div_(255.0).contiguous(), torch.as_tensor(np.asarray(split.targets), dtype=torch.int64)

    train_x, train_y = tensors(train)
    test_x, test_y = tensors(test)
    return Dataset(
        name=name,
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        classes=classes,
        description=f"torchvision's {name} with its official split ({len(train_y)} training, {len(test_y)} test)",
    )


def load_dataset(name: str, seed: int = 0) -> Dataset:
    """Load one of :data:`DATASETS` (see the module docstring)."""
    if name == "digits":
        return load_digits(seed)
    if name == "shapes":
        return make_shapes(seed)
    if name in DATASETS:
        return _torchvision(name, seed)
    raise DatasetError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
