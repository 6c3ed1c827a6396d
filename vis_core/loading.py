"""Loading a model as a :class:`~vis_core.models.ModelHandle`, and choosing its device.

Three ways in: a torchvision classifier by name with its pretrained weights (resolved offline
first, see :mod:`vis_core.weights`); a torchvision architecture with your own weights file (read
without running code, see :mod:`vis_core.custom`); or your own trusted code,
``package.module:function``, through :func:`load_factory`. A model name never imports code.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from . import custom
from . import weights as weights_io
from .errors import ModelError, ParameterError
from .hooks import suggest
from .models import ModelHandle

#: The model used when none is named: it is the one whose weights ship for offline use.
DEFAULT_MODEL = "mobilenet_v2"
#: Weights used for :data:`DEFAULT_MODEL` when none are named (the offline checkpoint).
DEFAULT_WEIGHTS = {"mobilenet_v2": "IMAGENET1K_V1"}


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else Apple's MPS, else the CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ParameterError(f"Unknown device {device!r}; use auto, cpu or cuda.") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ParameterError("CUDA was requested but no CUDA GPU is available; use --device cpu or auto.")
    return resolved


def classification_models() -> list[str]:
    """Names of torchvision's classification models (``torchvision.models.list_models``)."""
    return torchvision.models.list_models(module=torchvision.models)


def resolve_weights(name: str, weights: str | torchvision.models.WeightsEnum | None) -> torchvision.models.WeightsEnum:
    """The weights enum member for ``name``: given, by member name, or the default."""
    if name not in classification_models():
        raise ModelError(f"Unknown model {name!r}. {suggest(name, classification_models())}")
    enum = torchvision.models.get_model_weights(name)
    if weights is None:
        weights = DEFAULT_WEIGHTS.get(name, "DEFAULT")
    if isinstance(weights, torchvision.models.WeightsEnum):
        if not isinstance(weights, enum):
            raise ModelError(f"{weights} are not weights for {name}; choose one of {', '.join(enum.__members__)}.")
        return weights
    key = str(weights).split(".")[-1]
    if key not in enum.__members__:
        raise ModelError(f"Unknown weights {weights!r} for {name}; choose one of {', '.join(enum.__members__)}.")
    return enum[key]


def _builder_kwargs(name: str, weights: torchvision.models.WeightsEnum) -> dict[str, Any]:
    """The constructor arguments torchvision's builders set when given these weights."""
    kwargs: dict[str, Any] = {"num_classes": len(weights.meta["categories"])}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(transform_input=True, aux_logits=True, init_weights=False)
    if name.startswith("vit_"):
        kwargs["image_size"] = weights.meta["min_size"][0]
    if name == "maxvit_t":
        kwargs["input_size"] = weights.meta["min_size"]
    return kwargs


def load_model(
    name: str | None = None,
    *,
    weights: str | os.PathLike | torchvision.models.WeightsEnum | None = None,
    device: str | torch.device = "auto",
    labels: str | os.PathLike | Sequence[str] | None = None,
    input_size: int | None = None,
    resize_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> ModelHandle:
    """Load a classification model as a :class:`ModelHandle`.

    Two ways:

    * a torchvision model by name with pretrained weights (default: the offline MobileNetV2);
    * a torchvision architecture with *your* weights: ``weights`` is a path to a
      ``.safetensors`` or ``.pt``/``.pth`` state_dict (read safely, see :mod:`vis_core.custom`),
      with optional ``labels`` (list, .txt or .json), ``input_size``, ``resize_size``,
      ``mean`` and ``std``.

    A name never imports code: your own code is loaded with :func:`load_factory`.

    Args:
        name: a name from ``torchvision.models.list_models()``.
        weights: a weights enum member or its name (``"IMAGENET1K_V1"``, ``"DEFAULT"``), or a
            path to a weights file.
        device: ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, or a torch.device.

    Raises:
        ModelError: unknown model or weights; weights that are refused or do not fit (the
            message names the reason); pretrained weights that can be neither found on disk
            nor downloaded (the message names the offline default).
    """
    name = name or DEFAULT_MODEL
    if not isinstance(name, str) or ":" in name:
        raise ModelError(
            f"{str(name)[:100]!r} is not a model name. Your own code (package.module:function) is loaded with "
            "vis_core.load_factory, or --model on the command line."
        )
    resolved_device = resolve_device(device)
    if weights is not None and _is_path(weights):
        return _from_file(name, Path(weights), resolved_device, labels, input_size, resize_size, mean, std)
    available = classification_models()
    if name not in available:
        raise ModelError(f"Unknown model {name!r}. {suggest(name, available)}")
    weight_enum = resolve_weights(name, weights)
    state_dict = weights_io.load_state_dict(weight_enum)
    model = torchvision.models.get_model(name, weights=None, **_builder_kwargs(name, weight_enum))
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise ModelError(f"The weights do not fit {name}: {str(exc)[:200]}") from exc
    if name == "googlenet":
        model.aux_logits, model.aux1, model.aux2 = False, None, None
    elif name == "inception_v3":
        model.aux_logits, model.AuxLogits = False, None
    transforms = weight_enum.transforms()
    crop = transforms.crop_size[0]
    return ModelHandle(
        name=name,
        model=model.to(resolved_device),
        labels=tuple(weight_enum.meta["categories"]),
        input_size=(crop, crop),
        resize_size=transforms.resize_size[0],
        mean=tuple(transforms.mean),
        std=tuple(transforms.std),
        device=resolved_device,
        weights=str(weight_enum),
        interpolation=transforms.interpolation,
    )


def _is_path(weights: object) -> bool:
    if isinstance(weights, os.PathLike):
        return True
    return isinstance(weights, str) and (weights.lower().endswith(custom.WEIGHT_SUFFIXES) or os.sep in weights)


def _default_resize(size: int) -> int:
    return size if size < 64 else int(round(size / 0.875))


def _from_file(arch: str, path: Path, device: torch.device, labels, input_size, resize_size, mean, std) -> ModelHandle:
    state = custom.read_state_dict(path, arch)
    model, grayscale, classes = custom.build_from_weights(arch, state)
    size = int(input_size or 224)
    channels = 1 if grayscale else 3
    mean = tuple(mean) if mean is not None else ((0.449,) if grayscale else custom.IMAGENET_MEAN)
    std = tuple(std) if std is not None else ((0.226,) if grayscale else custom.IMAGENET_STD)
    if len(mean) != channels or len(std) != channels:
        raise ModelError(
            f"mean and std need {channels} value(s) for this {'greyscale' if grayscale else 'colour'} model."
        )
    digest = weights_io.sha256_of(path)[:12]
    return ModelHandle(
        name=f"{arch} ({path.name})",
        model=model.to(device),
        labels=custom.read_labels(labels, classes),
        input_size=(size, size),
        resize_size=int(resize_size or _default_resize(size)),
        mean=mean,
        std=std,
        device=device,
        weights=f"file {path.name} sha256:{digest}",
        grayscale=grayscale,
    )


def load_factory(spec: str, *, device: str | torch.device = "auto") -> ModelHandle:
    """Import and call your own trusted code, ``package.module:function``, as a :class:`ModelHandle`.

    The function returns an ``nn.Module``, or a dict with ``model`` and optionally ``labels``,
    ``input_size``, ``resize_size``, ``mean``, ``std`` and ``grayscale``. This is the one engine
    call that imports code by name; it is meant for the person running the program (the CLI's
    ``--model``, ``VIS_CORE_MODEL`` when the dashboard starts), never for a name a viewer sent.

    Raises:
        ModelError: the spec is malformed, cannot be imported, fails, or returns no model.
    """
    return _from_factory(spec, resolve_device(device))


def _from_factory(spec: str, device: torch.device) -> ModelHandle:
    built = custom.call_factory(spec)
    model: nn.Module = built["model"].eval()
    grayscale = bool(built.get("grayscale", False))
    size = int(built.get("input_size", 224))
    channels = 1 if grayscale else 3
    with torch.no_grad():
        try:
            classes = int(model(torch.zeros(1, channels, size, size)).reshape(1, -1).shape[1])
        except Exception as exc:
            raise ModelError(f"{spec}: a test forward pass on a {channels}x{size}x{size} input failed: {exc}") from exc
    if not 1 <= classes <= custom.MAX_CLASSES:
        raise ModelError(f"{spec}: the model gives {classes} outputs; a classifier needs 1 to {custom.MAX_CLASSES:,}.")
    return ModelHandle(
        name=spec,
        model=model.to(device),
        labels=custom.read_labels(built.get("labels"), classes),
        input_size=(size, size),
        resize_size=int(built.get("resize_size", _default_resize(size))),
        mean=tuple(built.get("mean", (0.449,) if grayscale else custom.IMAGENET_MEAN)),
        std=tuple(built.get("std", (0.226,) if grayscale else custom.IMAGENET_STD)),
        device=device,
        weights=f"factory {spec}",
        grayscale=grayscale,
    )
