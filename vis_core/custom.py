"""Your own model: a weights file for a torchvision architecture, or a trusted factory.

Uploaded weights never execute code: ``.safetensors`` files are read with safetensors, and
``.pt``/``.pth`` files with ``torch.load(..., weights_only=True)``, which refuses any pickle
that holds more than tensors and plain containers. Nothing else is unpickled and
``torch.jit.load`` is never used (``THREATS.md``). The class count comes from the shape of
the classifier's weight; a first convolution with one input channel makes a greyscale model.

For programmers there is a trusted path: ``package.module:function`` names a function of
their own that returns an ``nn.Module``, or a ``dict`` with ``model`` and optionally
``labels``, ``input_size``, ``resize_size``, ``mean``, ``std`` and ``grayscale``. That code is
theirs, imported and run as any Python import would be.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from .errors import ModelError

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
#: Largest weights file accepted (bytes): enough for any torchvision classifier but ViT-H.
MAX_WEIGHTS_BYTES = 1024 * 1024 * 1024
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state_dict from ``.safetensors`` or ``.pt``/``.pth`` without running any code.

    Raises:
        ModelError: the file is missing, too large, of another kind, or holds anything but tensors.
    """
    file = Path(path)
    if file.suffix.lower() not in WEIGHT_SUFFIXES:
        raise ModelError(f"{file.name}: weights must be a .safetensors, .pt or .pth file.")
    try:
        size = file.stat().st_size
    except OSError as exc:
        raise ModelError(f"Cannot read the weights file {file.name}: {exc.strerror or exc}.") from exc
    if size > MAX_WEIGHTS_BYTES:
        raise ModelError(f"{file.name} is {size / 2**20:.0f} MB; the limit is {MAX_WEIGHTS_BYTES / 2**20:.0f} MB.")
    if file.suffix.lower() == ".safetensors":
        try:
            from safetensors.torch import load_file

            state = load_file(str(file), device="cpu")
        except Exception as exc:
            raise ModelError(f"{file.name} is not a valid safetensors file ({str(exc)[:100]}).") from exc
    else:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(
                f"{file.name} was refused: it is not a plain state_dict of tensors (a pickle that would create "
                f"objects or run code is never loaded). Save it with torch.save(model.state_dict(), ...). "
                f"({type(exc).__name__})"
            ) from exc
    return _as_state_dict(state, file.name)


def _as_state_dict(state: Any, name: str) -> dict[str, torch.Tensor]:
    if isinstance(state, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not state:
        raise ModelError(f"{name} does not hold a state_dict (a mapping from parameter names to tensors).")
    cleaned = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ModelError(f"{name}: entry {key!r} is not a tensor.")
        cleaned[key.removeprefix("module.")] = value
    return cleaned


def _classes_from(model: nn.Module, state: Mapping[str, torch.Tensor]) -> int:
    """The class count: the output size of the architecture's last Linear (or Conv2d) in ``state``."""
    heads = [name for name, module in model.named_modules() if isinstance(module, (nn.Linear, nn.Conv2d))]
    if not heads or f"{heads[-1]}.weight" not in state:
        raise ModelError(
            f"The weights have no {heads[-1] if heads else 'classifier'}.weight, the classifier "
            "of this architecture. Is it the right architecture?"
        )
    return int(state[f"{heads[-1]}.weight"].shape[0])


def _first_conv(model: nn.Module) -> tuple[str, nn.Conv2d] | None:
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    return None


def build_from_weights(arch: str, state: Mapping[str, torch.Tensor]) -> tuple[nn.Module, bool, int]:
    """A torchvision ``arch`` shaped to fit ``state`` (class count, 1-channel input), loaded.

    Returns the model, whether it takes greyscale input, and its class count.

    Raises:
        ModelError: unknown architecture, or weights that do not fit it (naming what differs).
    """
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ModelError(f"Unknown architecture {arch!r}; use a torchvision classification model name.")
    kwargs: dict[str, Any] = {}
    if arch in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    classes = _classes_from(torchvision.models.get_model(arch, weights=None, **kwargs), state)
    kwargs["num_classes"] = classes
    try:
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    except Exception as exc:
        raise ModelError(f"Cannot build {arch} with {classes} classes: {str(exc)[:100]}") from exc
    grayscale = False
    first = _first_conv(model)
    if first is not None:
        name, conv = first
        key = f"{name}.weight"
        if key in state and state[key].dim() == 4 and state[key].shape[1] == 1 and conv.in_channels == 3:
            replacement = nn.Conv2d(
                1,
                conv.out_channels,
                conv.kernel_size,
                conv.stride,
                conv.padding,
                conv.dilation,
                conv.groups,
                conv.bias is not None,
            )
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            setattr(parent, name.rsplit(".", 1)[-1], replacement)
            grayscale = True
    expected = model.state_dict()
    wrong = [k for k, v in state.items() if k in expected and expected[k].shape != v.shape]
    if wrong:
        result = model.load_state_dict({k: v for k, v in state.items() if k not in wrong}, strict=False)
    else:
        result = model.load_state_dict(dict(state), strict=False)
    if result.missing_keys or result.unexpected_keys or wrong:
        parts = []
        if result.missing_keys:
            parts.append(f"missing {len(result.missing_keys)} (e.g. {', '.join(result.missing_keys[:3])})")
        if result.unexpected_keys:
            parts.append(f"unexpected {len(result.unexpected_keys)} (e.g. {', '.join(result.unexpected_keys[:3])})")
        if wrong:
            parts.append(f"wrong shape for {len(wrong)} (e.g. {', '.join(wrong[:3])})")
        raise ModelError(f"These weights do not fit {arch}: " + "; ".join(parts) + ". Is it the right architecture?")
    return model, grayscale, classes


def read_labels(source: str | os.PathLike | Sequence[str] | None, classes: int) -> tuple[str, ...]:
    """Class names from a list, a text file (one per line) or a JSON list; numbered if None."""
    if source is None:
        return tuple(f"class {i}" for i in range(classes))
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file():
        text = Path(source).read_text(encoding="utf-8", errors="replace")
        if Path(source).suffix.lower() == ".json":
            try:
                labels = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ModelError(f"The class names file is not valid JSON: {exc}.") from exc
            if isinstance(labels, Mapping):  # {"0": "cat", ...}
                labels = [labels[key] for key in sorted(labels, key=lambda k: int(k))]
        else:
            labels = [line.strip() for line in text.splitlines() if line.strip()]
    else:
        labels = list(source)  # type: ignore[arg-type]
    labels = [str(label) for label in labels]
    if len(labels) != classes:
        raise ModelError(f"{len(labels)} class names were given, but the model has {classes} classes.")
    return tuple(labels)


def call_factory(spec: str) -> dict[str, Any]:
    """Import ``package.module:function``, call it, and normalise what it returns."""
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ModelError(f"{spec!r} is not of the form package.module:function.")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"Cannot import {spec}: {exc}.") from exc
    built = function()
    if isinstance(built, nn.Module):
        built = {"model": built}
    if not isinstance(built, Mapping) or not isinstance(built.get("model"), nn.Module):
        raise ModelError(f"{spec} must return an nn.Module or a dict with a 'model' entry.")
    return dict(built)
