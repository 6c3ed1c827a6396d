"""Changing a network's modules: the few operations several parts of the engine need.

Finding the first convolution (the lab's filter history, own weights with a 1-channel input),
replacing a submodule by its dotted name (projection's linearised twin, own weights), and
resetting BatchNorm statistics (randomised blocks in the sanity check, receptive fields).
"""

from __future__ import annotations

import torch
from torch import nn


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    """The first ``nn.Conv2d`` in module order, with its dotted name; None if there is none."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    return None


def replace_module(model: nn.Module, name: str, replacement: nn.Module) -> None:
    """Put ``replacement`` where the submodule called ``name`` (dotted) is."""
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, replacement)


def reset_batchnorm(model: nn.Module) -> None:
    """Running mean 0 and variance 1 in every BatchNorm that tracks statistics."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.running_var is not None:
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
