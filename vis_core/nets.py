"""The training lab's two small networks, built for a dataset's shape.

``notebook``: the original notebook's LeCun-style network (conv 5x5x32, pool, conv 5x5x64,
pool, dense 1024, dropout, dense). ``tinyvgg``: two VGG blocks with batch normalisation and
global average pooling.

Initialisation (:data:`INITS`): ``glorot`` is Keras' default, the original notebook's (Glorot
uniform weights, zero biases); ``pytorch`` is PyTorch's own default (Kaiming uniform with
``a=sqrt(5)``, about 2.4x wider for the first layer's 5x5 kernels). The narrower start lets the
first layer's kernels travel further from their random start in a demo-length run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn

from .errors import ParameterError


def notebook_cnn(channels: int, size: int, classes: int) -> nn.Module:
    """The original notebook's network: conv 5x5x32, pool, conv 5x5x64, pool, dense 1024,
    dropout 0.5, dense ``classes`` ('same' padding, as in Keras)."""
    flat = 64 * (size // 4) * (size // 4)
    return nn.Sequential(
        OrderedDict(
            [
                ("conv1", nn.Conv2d(channels, 32, 5, padding=2)),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("conv2", nn.Conv2d(32, 64, 5, padding=2)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
                ("flatten", nn.Flatten()),
                ("fc1", nn.Linear(flat, 1024)),
                ("relu3", nn.ReLU()),
                ("dropout", nn.Dropout(0.5)),
                ("fc2", nn.Linear(1024, classes)),
            ]
        )
    )


def tiny_vgg(channels: int, size: int, classes: int) -> nn.Module:
    """Two VGG blocks of two 3x3 convolutions with batch norm, then global average pooling."""

    def block(index: int, cin: int, cout: int) -> list[tuple[str, nn.Module]]:
        return [
            (f"conv{index}a", nn.Conv2d(cin, cout, 3, padding=1)),
            (f"bn{index}a", nn.BatchNorm2d(cout)),
            (f"relu{index}a", nn.ReLU()),
            (f"conv{index}b", nn.Conv2d(cout, cout, 3, padding=1)),
            (f"bn{index}b", nn.BatchNorm2d(cout)),
            (f"relu{index}b", nn.ReLU()),
            (f"pool{index}", nn.MaxPool2d(2)),
        ]

    layers = block(1, channels, 16) + block(2, 16, 32)
    layers += [("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()), ("fc", nn.Linear(32, classes))]
    return nn.Sequential(OrderedDict(layers))


ARCHITECTURES: dict[str, Callable[[int, int, int], nn.Module]] = {
    "notebook": notebook_cnn,
    "tinyvgg": tiny_vgg,
}


#: Weight initialisations :func:`build_model` offers.
INITS: tuple[str, ...] = ("faint", "glorot", "pytorch")
#: How much fainter ``faint`` starts the first convolution than Glorot would.
FAINT = 0.1


def check_init(init: str) -> str:
    """``init`` when it is one of :data:`INITS`, else a ParameterError listing them."""
    if init not in INITS:
        raise ParameterError(f"Unknown initialisation {init!r}; choose one of {', '.join(INITS)}.")
    return init


def initialise(model: nn.Module, init: str) -> nn.Module:
    """Re-initialise the convolution and dense layers in place (``pytorch``: leave them as built)."""
    if check_init(init) in ("glorot", "faint"):
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    if init == "faint":
        first = next(module for module in model.modules() if isinstance(module, nn.Conv2d))
        with torch.no_grad():
            first.weight.mul_(FAINT)
    return model


def check_arch(arch: str) -> str:
    """``arch`` when it is one of :data:`ARCHITECTURES`, else a ParameterError listing them."""
    if arch not in ARCHITECTURES:
        raise ParameterError(f"Unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}.")
    return arch


def build_model(arch: str, channels: int, size: int, classes: int, init: str = "pytorch") -> nn.Module:
    """Build one of :data:`ARCHITECTURES` for the dataset's shape, initialised by ``init``
    (draws from torch's global generator: seed it first)."""
    return initialise(ARCHITECTURES[check_arch(arch)](channels, size, classes), init)
