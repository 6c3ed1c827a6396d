"""Changing a network's modules: the few operations several parts of the engine need.

Finding the first convolution (the lab's filter history, own weights with a 1-channel input),
replacing a submodule by its dotted name (projection's linearised twin, own weights), and
resetting BatchNorm statistics (randomised blocks in the sanity check, receptive fields), and
folding eval-mode BatchNorm into the convolution before it (the atlas's renders).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


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


def fold_batchnorm(model: nn.Module, keep: Iterable[str] = ()) -> list[str]:
    """Fold every eval-mode ``BatchNorm2d`` that directly follows a ``Conv2d`` in an
    ``nn.Sequential`` into that convolution (torch's ``fuse_conv_bn_eval``), in place, and switch
    every in-place activation off; returns the dotted names of the convolutions folded into.

    The BatchNorm's place holds an ``nn.Identity``, so every module keeps its dotted name and a
    hook on the BatchNorm still sees its output (the folded convolution's, equal up to float
    rounding); a hook on the convolution would see the BatchNorm's output instead of its own, so
    convolutions named in ``keep`` (the layers a caller reads) are left as they are.
    A Sequential is the only place where "conv then BatchNorm" is certain without tracing the
    forward code; torchvision's MobileNets, EfficientNets, VGG-BN and RegNets build
    every such pair that way (ResNet's blocks call ``bn1(conv1(x))`` in code: those stay).
    On a CPU a BatchNorm's backward pass cost about a quarter of a feature-visualisation step
    and in-place ReLU6 on channels-last tensors a copy each; both go.
    """
    keep = set(keep)
    folded: list[str] = []
    for prefix, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for first, second in itertools.pairwise(names):
            conv, norm = module._modules[first], module._modules[second]
            if (
                f"{prefix}.{first}".lstrip(".") not in keep
                and isinstance(conv, nn.Conv2d)
                and isinstance(norm, nn.BatchNorm2d)
                and not norm.training
                and norm.track_running_stats
                and norm.running_mean is not None
                and conv.out_channels == norm.num_features
            ):
                fused = fuse_conv_bn_eval(conv.eval(), norm)
                fused.requires_grad_(False)
                module._modules[first], module._modules[second] = fused, nn.Identity()
                folded.append(f"{prefix}.{first}".lstrip("."))
    for module in model.modules():
        if getattr(module, "inplace", False) is True:
            module.inplace = False
    return folded
