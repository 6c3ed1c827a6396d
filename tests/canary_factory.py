"""A model factory that must never be reached from the dashboard: importing this module writes a
canary file (its path in ``$VIS_CORE_TEST_CANARY``), so a test can prove nothing imported it."""

import os
from pathlib import Path

from torch import nn

if os.environ.get("VIS_CORE_TEST_CANARY"):
    Path(os.environ["VIS_CORE_TEST_CANARY"]).write_text("imported")


def build() -> nn.Module:
    if os.environ.get("VIS_CORE_TEST_CANARY"):
        Path(os.environ["VIS_CORE_TEST_CANARY"]).write_text("called")
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
