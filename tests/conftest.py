"""Shared fixtures: the real default model, and tiny models that trip visualisers."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

import vis_core
from tests.support.apptest import clear_caches  # noqa: F401 - a fixture for the AppTest modules
from vis_core import ModelHandle


@pytest.fixture(autouse=True)
def _private_atlases(tmp_path_factory, monkeypatch):
    """Every test sees an empty atlases folder of its own unless it builds one: an atlas a user
    built in this checkout must not change what the pages show under test."""
    import os

    if "VIS_CORE_ATLASES" not in os.environ:
        monkeypatch.setenv("VIS_CORE_ATLASES", str(tmp_path_factory.mktemp("atlases")))


@pytest.fixture(scope="session")
def handle() -> ModelHandle:
    """The real default model (MobileNetV2, offline weights), shared like the dashboard does."""
    return vis_core.load_model(device="cpu")


@pytest.fixture(scope="session")
def cat() -> Image.Image:
    return vis_core.sample_image("chelsea")


class ReusedReLUNet(nn.Module):
    """In-place ReLU module reused three times, an in-place functional ReLU, BatchNorm, no pooling."""

    def __init__(self, in_channels: int = 3, size: int = 32, classes: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.conv3 = nn.Conv2d(8, 6, 3, stride=2, padding=1)
        self.head = nn.Linear(6 * (size // 2) * (size // 2), classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.conv2(x))
        x = torch.relu_(self.conv3(x))  # functional and in place: overwrites conv3's output
        x = self.relu(x - 0.1)
        return self.head(x.flatten(1))


def sequential_net(in_channels: int = 3) -> nn.Sequential:
    """A plain Sequential with in-place ReLUs and global pooling."""
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(inplace=True),
        nn.Conv2d(8, 16, 3, padding=1, stride=2),
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 5),
    )


def make_handle(model: nn.Module, *, size: int = 32, grayscale: bool = False, classes: int = 4) -> ModelHandle:
    torch.manual_seed(0)
    for module in model.modules():  # non-trivial BatchNorm statistics
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    channels = 1 if grayscale else 3
    return ModelHandle(
        name=type(model).__name__,
        model=model,
        labels=tuple(f"class {i}" for i in range(classes)),
        input_size=(size, size),
        resize_size=size,
        mean=(0.5,) * channels,
        std=(0.25,) * channels,
        device=torch.device("cpu"),
        weights="test",
        grayscale=grayscale,
    )


@pytest.fixture(params=["reused-rgb-32", "reused-gray-32", "sequential-rgb-48"])
def tiny(request) -> ModelHandle:
    torch.manual_seed(1)
    if request.param == "reused-rgb-32":
        return make_handle(ReusedReLUNet(3, 32), size=32)
    if request.param == "reused-gray-32":
        return make_handle(ReusedReLUNet(1, 32), size=32, grayscale=True)
    return make_handle(sequential_net(3), size=48, classes=5)
