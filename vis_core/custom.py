"""Your own model: a weights file for a torchvision architecture, or a trusted factory.

Uploaded weights never execute code: ``.safetensors`` files are read with safetensors, and
``.pt``/``.pth`` files with ``torch.load(..., weights_only=True)``, which refuses any pickle
that holds more than tensors and plain containers. Nothing else is unpickled, and
``torch.jit.load`` (which runs the code stored in the file) is never used. The class count
comes from the shape of the classifier's weight; a first convolution with one input channel
makes a greyscale model.

Sizes are checked before anything is materialised, because a small file can declare huge
tensors: a compressed ``.pt`` archive may unpack to gigabytes, a stride-0 tensor may claim a
200,000 x 1,280 classifier from one stored number. Before ``torch.load`` the archive's
unpacked size is held against the architecture's budget (:func:`weights_budget`: its own
size with :data:`MAX_CLASSES` classes); afterwards every tensor must be backed by a storage at
least as large as itself, and the class count must lie in 1..:data:`MAX_CLASSES`.

For programmers there is a trusted path: ``package.module:function`` names a function of
their own that returns an ``nn.Module``, or a ``dict`` with ``model`` and optionally
``labels``, ``input_size``, ``resize_size``, ``mean``, ``std`` and ``grayscale``. That code is
theirs, imported and run as any Python import would be, and only ever through
:func:`call_factory` (``vis_core.load_factory``): no model *name* is ever imported, so nothing
a dashboard viewer sends can reach it.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import threading
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from . import surgery
from .errors import ModelError

WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth")
#: Largest weights file accepted (bytes): enough for any torchvision classifier but ViT-H.
MAX_WEIGHTS_BYTES = 1024 * 1024 * 1024
#: Most classes a classifier may have (ImageNet-21k has 21,843): a weights file declaring more is
#: refused before the model is built, since the classifier's size grows with it.
MAX_CLASSES = 22_000
#: Longest class-names file accepted (bytes); JSON nested too deeply to parse is refused as invalid.
MAX_LABELS_BYTES = 4 * 1024 * 1024
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=64)
def weights_budget(arch: str) -> int:
    """The most bytes a state_dict for ``arch`` may unpack to: the architecture's own state with
    :data:`MAX_CLASSES` classes (built on the meta device, so nothing is allocated), plus 1 MB."""
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ModelError(f"Unknown architecture {arch!r}; use a torchvision classification model name.")
    try:
        with torch.device("meta"):
            model = torchvision.models.get_model(arch, weights=None, **_arch_kwargs(arch, MAX_CLASSES))
    except Exception as exc:
        raise ModelError(f"Cannot build {arch}: {str(exc)[:100]}") from exc
    state = model.state_dict().values()
    return sum(tensor.numel() * tensor.element_size() for tensor in state) + 2**20


def _arch_kwargs(arch: str, classes: int) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"num_classes": classes}
    if arch in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    return kwargs


def _check_archive(file: Path, budget: int) -> None:
    """Refuse a ``torch.save`` zip archive whose entries unpack to more than ``budget`` bytes."""
    if not zipfile.is_zipfile(file):
        return  # the legacy format is not compressed: it cannot hold more than its own size
    try:
        with zipfile.ZipFile(file) as archive:
            unpacked = sum(entry.file_size for entry in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise ModelError(f"{file.name} is a damaged archive ({str(exc)[:80]}).") from exc
    if unpacked > budget:
        raise ModelError(
            f"{file.name} unpacks to {unpacked / 2**20:,.0f} MB, more than any weights for this architecture "
            f"can need ({budget / 2**20:,.0f} MB with up to {MAX_CLASSES:,} classes); it was not loaded."
        )


def _check_sizes(state: Mapping[str, torch.Tensor], name: str, budget: int) -> None:
    """Every tensor backed by real storage (no stride-0 or overlapping views), all within ``budget``."""
    total = 0
    for key, tensor in state.items():
        logical = tensor.numel() * tensor.element_size()
        if logical > tensor.untyped_storage().nbytes():
            raise ModelError(
                f"{name}: {key!r} declares {tuple(tensor.shape)} but stores only "
                f"{tensor.untyped_storage().nbytes():,} bytes (a stride-0 or overlapping view); it was not loaded."
            )
        total += logical
    if total > budget:
        raise ModelError(
            f"{name} holds {total / 2**20:,.0f} MB of tensors, more than any weights for this architecture can need "
            f"({budget / 2**20:,.0f} MB with up to {MAX_CLASSES:,} classes)."
        )


def read_state_dict(path: str | os.PathLike, arch: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state_dict from ``.safetensors`` or ``.pt``/``.pth`` without running any code.

    Args:
        path: the weights file.
        arch: the torchvision architecture it is for; its :func:`weights_budget` caps what the
            file may declare (without it, :data:`MAX_WEIGHTS_BYTES`).

    Raises:
        ModelError: the file is missing, too large (on disk or in what it declares), of another
            kind, or holds anything but tensors.
    """
    file = Path(path)
    budget = min(MAX_WEIGHTS_BYTES, weights_budget(arch)) if arch else MAX_WEIGHTS_BYTES
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
        _check_archive(file, budget)
        try:
            state = torch.load(file, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise ModelError(
                f"{file.name} was refused: it is not a plain state_dict of tensors (a pickle that would create "
                f"objects or run code is never loaded). Save it with torch.save(model.state_dict(), ...). "
                f"({type(exc).__name__})"
            ) from exc
    cleaned = _as_state_dict(state, file.name)
    _check_sizes(cleaned, file.name, budget)
    return cleaned


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
    weight = state[f"{heads[-1]}.weight"]
    classes = int(weight.shape[0]) if weight.dim() >= 2 else 0
    if not 1 <= classes <= MAX_CLASSES:
        raise ModelError(
            f"The classifier {heads[-1]}.weight has shape {tuple(weight.shape)}: a classifier needs between 1 and "
            f"{MAX_CLASSES:,} classes (one row each)."
        )
    return classes


def build_from_weights(arch: str, state: Mapping[str, torch.Tensor]) -> tuple[nn.Module, bool, int]:
    """A torchvision ``arch`` shaped to fit ``state`` (class count, 1-channel input), loaded.

    Returns the model, whether it takes greyscale input, and its class count.

    Raises:
        ModelError: unknown architecture, or weights that do not fit it (naming what differs).
    """
    if arch not in torchvision.models.list_models(module=torchvision.models):
        raise ModelError(f"Unknown architecture {arch!r}; use a torchvision classification model name.")
    with torch.device("meta"):  # only the module names are needed here: allocate nothing
        skeleton = torchvision.models.get_model(arch, weights=None, **_arch_kwargs(arch, 1000))
    classes = _classes_from(skeleton, state)
    try:
        model = torchvision.models.get_model(arch, weights=None, **_arch_kwargs(arch, classes))
    except Exception as exc:
        raise ModelError(f"Cannot build {arch} with {classes} classes: {str(exc)[:100]}") from exc
    grayscale = False
    first = surgery.first_conv(model)
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
            surgery.replace_module(model, name, replacement)
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
    """Class names from a list, a text file (one per line) or a JSON file; numbered if None.

    A JSON file holds a list of names, or an object from class index to name
    (``{"0": "cat", ...}``). A string is a path, never a list of characters.

    Raises:
        ModelError: the file is missing or not of that form, or the count differs from ``classes``.
    """
    if source is None:
        return tuple(f"class {i}" for i in range(classes))
    if isinstance(source, (str, os.PathLike)):
        labels = _labels_from_file(Path(source))
    elif isinstance(source, Sequence):
        labels = list(source)
    else:
        raise ModelError("Class names must be a list of names or a .txt/.json file.")
    if not all(isinstance(label, (str, int, float)) and not isinstance(label, bool) for label in labels):
        raise ModelError("Class names must be plain names (text), one per class.")
    labels = [str(label) for label in labels]
    if len(labels) != classes:
        raise ModelError(f"{len(labels)} class names were given, but the model has {classes} classes.")
    return tuple(labels)


def _labels_from_file(path: Path) -> list:
    if not path.is_file():
        raise ModelError(f"There is no class names file {path.name!r}; give a .txt (one per line) or .json file.")
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise ModelError(f"The class names file is larger than {MAX_LABELS_BYTES // 2**20} MB.")
    text = path.read_text(encoding="utf-8", errors="replace")
    if path.suffix.lower() != ".json":
        return [line.strip() for line in text.splitlines() if line.strip()]
    try:
        labels = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ModelError(f"The class names file is not valid JSON ({str(exc)[:80]}).") from exc
    if isinstance(labels, Mapping):  # {"0": "cat", ...}
        try:
            order = sorted(labels, key=int)
        except ValueError:
            raise ModelError('A JSON object of class names needs class numbers as keys: {"0": "cat", ...}.') from None
        labels = [labels[key] for key in order]
    if not isinstance(labels, list):
        raise ModelError('The class names JSON must be a list of names or an object {"0": "cat", ...}.')
    return labels


_factory_call = threading.local()


def call_factory(spec: str) -> dict[str, Any]:
    """Import ``package.module:function``, call it, and normalise what it returns.

    Trusted code only: reached from ``vis_core.load_factory`` (the CLI's ``--model`` and the
    factory named when the dashboard is started), never from a model name.
    """
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise ModelError(f"{spec!r} is not of the form package.module:function.")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as exc:
        raise ModelError(f"Cannot import {spec}: {exc}.") from exc
    if not callable(function):
        raise ModelError(f"{spec} is not a function.")
    if getattr(_factory_call, "active", False):
        # Not a ModelError on purpose: a factory that re-enters the CLI (vis_core.cli:main) must not
        # have each nested level report it; the outermost call turns it into one ModelError.
        raise RecursionError(f"{spec} loads another model factory while one is being loaded")
    _factory_call.active = True
    try:
        built = function()
    except Exception as exc:
        raise ModelError(f"{spec}() failed: {type(exc).__name__}: {str(exc)[:200]}") from exc
    finally:
        _factory_call.active = False
    if isinstance(built, nn.Module):
        built = {"model": built}
    if not isinstance(built, Mapping) or not isinstance(built.get("model"), nn.Module):
        raise ModelError(f"{spec} must return an nn.Module or a dict with a 'model' entry.")
    return dict(built)
