"""Models: loading, preprocessing, the layer index, and the guard around shared use.

A :class:`ModelHandle` is what every technique receives. It carries the eval-mode model, the
preprocessing of its weights (resize, centre crop, normalise, as torchvision's
``weights.transforms()``), the class labels, the device, an index of layers built from one
dry forward pass (qualified names as in ``named_modules()``, output shapes, parameter
counts), and a lock.

The same handle is shared by every dashboard session and thread, so every engine call on it
runs inside :meth:`ModelHandle.guard`: the lock is held, training flags and
``requires_grad`` are restored afterwards, every ``param.grad`` is left ``None`` and any hook
a technique forgot is removed, on a normal exit and after an exception.

Long work (feature visualisation, deep dream, reconstruction, the slow attribution methods and
the faithfulness curves) runs on :meth:`ModelHandle.for_long_work`: a twin handle with its own
copy of the model and its own lock, made once. A minute-long render then never holds the lock
that a click's feature maps or prediction wait for; the twin has the same weights, so results
equal those on the handle itself, and its guard keeps the same promises.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn
from torch.utils.hooks import RemovableHandle
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from . import arrays, custom
from . import weights as weights_io
from .errors import ModelError, ParameterError, ResourceError
from .hooks import capture, hook_count, run_forward, suggest

#: The model used when none is named: it is the one whose weights ship for offline use.
DEFAULT_MODEL = "mobilenet_v2"
#: Weights used for :data:`DEFAULT_MODEL` when none are named (the offline checkpoint).
DEFAULT_WEIGHTS = {"mobilenet_v2": "IMAGENET1K_V1"}

#: Images more elongated than this are centre-cropped to this aspect ratio before resizing,
#: so a 3x10000 strip cannot turn into a gigapixel tensor. Normal photos are unaffected.
MAX_ASPECT_RATIO = 4.0

_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)


@dataclass(frozen=True)
class LayerInfo:
    """One entry of a model's layer index.

    Attributes:
        name: qualified module name, as in ``named_modules()`` (e.g. ``features.10``).
        type_name: the module's class name.
        output_shape: output shape of the first call, without the batch dimension.
        params: number of parameters of the module and its children.
        order: position in execution order during the dry forward pass.
        block: the top-level block the layer belongs to (itself, for a block).
        is_block: whether it is a block: the first module below the root that is not a
            plain container (``Sequential``/``ModuleList``/``ModuleDict``).
        calls: how many times the module runs per forward pass (a reused ReLU runs several).
        overwritten_in_place: whether a later in-place operation modifies its output even
            with in-place modules switched off (an in-place functional call such as
            ``torch.relu_``): captures must clone it.
        needs_out_of_place: whether a later module with an ``inplace`` flag
            (``nn.ReLU(inplace=True)`` after a BatchNorm...) modifies its output: a capture of
            it must run such modules out of place. Captures of other layers need not, and
            save the extra memory traffic.
        alias_of: for a plain ``nn.Sequential`` (forward not overridden), the descendant
            whose output *is* its output (its last child, resolved recursively): capturing
            that one captures both, with one hook instead of two.
    """

    name: str
    type_name: str
    output_shape: tuple[int, ...]
    params: int
    order: int
    block: str
    is_block: bool
    calls: int = 1
    overwritten_in_place: bool = False
    needs_out_of_place: bool = False
    alias_of: str | None = None

    @property
    def channels(self) -> int:
        """Number of channels (first non-batch dimension), 1 for scalars."""
        return self.output_shape[0] if self.output_shape else 1

    @property
    def is_spatial(self) -> bool:
        """Whether the output is a (C, H, W) feature map."""
        return len(self.output_shape) == 3

    @property
    def shape_text(self) -> str:
        """The output shape as ``64×14×14``."""
        return "×".join(str(s) for s in self.output_shape)


@dataclass(eq=False)
class ModelHandle:
    """An eval-mode model with everything a technique needs to use it safely.

    Attributes:
        name: model name (torchvision builder name, or a user-given name).
        model: the network, in eval mode, parameters with ``requires_grad=False``.
        labels: class names, index-aligned with the logits.
        input_size: ``(height, width)`` of the model's input after cropping.
        resize_size: the shorter side an image is resized to before the centre crop.
        mean: per-channel normalisation mean.
        std: per-channel normalisation standard deviation.
        device: where the model lives.
        weights: a description of the weights (e.g. ``MobileNet_V2_Weights.IMAGENET1K_V1``).
        grayscale: whether the model takes one input channel.
        interpolation: resize interpolation.
        layers: the layer index, in execution order.
        lock: held by :meth:`guard` for every engine call.
    """

    name: str
    model: nn.Module
    labels: tuple[str, ...]
    input_size: tuple[int, int]
    resize_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    device: torch.device
    weights: str = ""
    grayscale: bool = False
    interpolation: InterpolationMode = InterpolationMode.BILINEAR
    layers: dict[str, LayerInfo] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _long_work: ModelHandle | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        if not self.layers:
            self.layers = build_layer_index(self)

    # ----------------------------------------------------------------- identity
    @cached_property
    def key(self) -> str:
        """A string identifying the model for cache keys: name, weights, and a digest of everything
        else that shapes a result (class names, input and resize size, mean/std, greyscale,
        interpolation), so two handles with the same weights but other labels or sizes never
        share a cached result."""
        shaping = repr(
            (self.labels, self.input_size, self.resize_size, self.mean, self.std, self.grayscale, self.interpolation)
        )
        return f"{self.name}:{self.weights}:{hashlib.sha256(shaping.encode()).hexdigest()[:12]}"

    @cached_property
    def state_hash(self) -> str:
        """SHA-256 of the state_dict at load time (tests compare against it)."""
        return state_dict_hash(self.model)

    @cached_property
    def modules(self) -> dict[str, nn.Module]:
        """``dict(model.named_modules())``, computed once (the module tree never changes)."""
        return dict(self.model.named_modules())

    @cached_property
    def _parameters(self) -> tuple[nn.Parameter, ...]:
        return tuple(self.model.parameters())

    @cached_property
    def _switchable(self) -> tuple[nn.Module, ...]:
        """Modules with a boolean ``inplace`` flag (ReLU, Dropout...): the guard restores it.

        Found once: ``getattr(module, "inplace", None)`` on every module of every engine call
        went through ``nn.Module.__getattr__`` and an AttributeError for most of them.
        """
        return tuple(m for m in self.modules.values() if isinstance(m.__dict__.get("inplace"), bool))

    @property
    def input_channels(self) -> int:
        """Number of channels the model expects (1 for grayscale models, else 3)."""
        return 1 if self.grayscale else 3

    def for_long_work(self) -> ModelHandle:
        """The handle long jobs run on: same weights and settings, its own model copy and lock.

        Made once, on first use, from the model as the guard leaves it (the copy is taken under
        this handle's lock); the twin of a twin is itself. Costs one more copy of the weights.
        """
        if self._long_work is None:
            with self.lock:
                if self._long_work is None:
                    twin = dataclasses.replace(self, model=copy.deepcopy(self.model), lock=threading.RLock())
                    twin._long_work = twin
                    self._long_work = twin
        return self._long_work

    # ----------------------------------------------------------- preprocessing
    def model_view(self, image: Image.Image) -> Image.Image:
        """The image as the model sees it: resized and centre-cropped, before normalising."""
        image = _limit_aspect(image.convert("RGB"))
        resized = TF.resize(image, [self.resize_size], interpolation=self.interpolation, antialias=True)
        return TF.center_crop(resized, list(self.input_size))

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's ``(1, C, H, W)`` input tensor for a PIL image, on the model's device."""
        view = self.model_view(image)
        if self.grayscale:
            view = view.convert("L")
        tensor = TF.pil_to_tensor(view).to(torch.float32).div_(255.0)
        tensor = TF.normalize(tensor, list(self.mean), list(self.std))
        return tensor.unsqueeze(0).to(self.device)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3 or 1, H, W)`` images in [0, 1] to the model's input space; a greyscale model
        gets the mean of three channels."""
        if self.grayscale and images.shape[1] == 3:
            images = images.mean(dim=1, keepdim=True)
        return arrays.normalise(images, self.mean, self.std)

    def crop_box(self, size: tuple[int, int]) -> tuple[float, float, float, float]:
        """``(left, top, right, bottom)``, in pixels of an image of ``size`` (width, height),
        of the region :meth:`model_view` shows the model."""
        width, height = size
        offset_x = offset_y = 0
        if max(width, height) > MAX_ASPECT_RATIO * min(width, height):
            keep = max(1, int(MAX_ASPECT_RATIO * min(width, height)))
            if width > height:
                offset_x, width = (width - keep) // 2, keep
            else:
                offset_y, height = (height - keep) // 2, keep
        short, long = min(width, height), max(width, height)
        new_short, new_long = self.resize_size, int(self.resize_size * long / short)
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
        crop_h, crop_w = self.input_size
        top, left = int(round((new_h - crop_h) / 2.0)), int(round((new_w - crop_w) / 2.0))
        scale_x, scale_y = width / new_w, height / new_h
        return (
            offset_x + left * scale_x,
            offset_y + top * scale_y,
            offset_x + (left + crop_w) * scale_x,
            offset_y + (top + crop_h) * scale_y,
        )

    def to_image_space(self, model_map: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """A map over the model's input, stretched back onto an image of ``size`` (width,
        height); zero outside the region the model sees."""
        width, height = size
        left, top, right, bottom = self.crop_box(size)
        x0, y0 = max(0, int(round(left))), max(0, int(round(top)))
        x1, y1 = min(width, max(x0 + 1, int(round(right)))), min(height, max(y0 + 1, int(round(bottom))))
        result = np.zeros((height, width), dtype=np.float32)
        tensor = torch.as_tensor(np.ascontiguousarray(model_map, dtype=np.float32))[None, None]
        resized = torch.nn.functional.interpolate(tensor, size=(y1 - y0, x1 - x0), mode="bilinear", align_corners=False)
        result[y0:y1, x0:x1] = resized[0, 0].numpy()
        return result

    # ------------------------------------------------------------------ layers
    def layer(self, name: str) -> LayerInfo:
        """The index entry of ``name``, or a :class:`ParameterError` with suggestions."""
        try:
            return self.layers[name]
        except KeyError:
            raise ParameterError(f"Unknown layer {name!r} in {self.name}. {suggest(name, list(self.layers))}") from None

    def needs_out_of_place(self, names: Iterable[str]) -> bool:
        """Whether capturing ``names`` needs in-place modules switched off (see :class:`LayerInfo`)."""
        return any(self.layers[name].needs_out_of_place for name in names if name in self.layers)

    def check_channel(self, layer: str, channel: int) -> int:
        """Validate a channel index for ``layer``; returns it."""
        info = self.layer(layer)
        if not 0 <= channel < info.channels:
            raise ParameterError(
                f"Channel {channel} is out of range for {layer} ({info.channels} channels: 0..{info.channels - 1})."
            )
        return channel

    def blocks(self) -> list[LayerInfo]:
        """The block-level layers in execution order (a good default list for menus)."""
        return [info for info in self.layers.values() if info.is_block]

    def last_spatial_layer(self) -> str:
        """Name of the last block whose output is a spatial feature map (more than 1x1)."""

        def spatial(info: LayerInfo) -> bool:
            return info.is_spatial and info.output_shape[1] * info.output_shape[2] > 1

        names = [info.name for info in self.blocks() if spatial(info)] or [
            info.name for info in self.layers.values() if spatial(info)
        ]
        if not names:
            raise ModelError(f"{self.name} has no layer with a spatial (C, H, W) output.")
        return names[-1]

    # ------------------------------------------------------------------- guard
    @contextmanager
    def guard(self) -> Iterator[nn.Module]:
        """Hold the lock and leave the model exactly as found, whatever happens inside.

        Restores every module's ``training`` and ``inplace`` flags and every parameter's
        ``requires_grad``, sets every ``param.grad`` to ``None`` and removes hooks added
        inside the block.
        """
        with self.lock:
            modules = tuple(self.modules.values())
            switchable = self._switchable
            parameters = self._parameters
            training = [module.training for module in modules]
            inplace = [module.inplace for module in switchable]
            requires_grad = [parameter.requires_grad for parameter in parameters]
            first_new_hook_id = RemovableHandle.next_id  # hook ids only grow
            try:
                yield self.model
            except RuntimeError as exc:
                if not _out_of_memory(exc):
                    raise
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()  # give the failed request's blocks back for the next one
                raise ResourceError(
                    f"The {self.device.type.upper()} ran out of memory for this request. Try a smaller image "
                    "size, fewer steps, octaves or filters at once, or the CPU; the model is unharmed."
                ) from exc
            finally:  # write only what changed: this runs on every engine call
                for module, flag in zip(modules, training):
                    if module.training != flag:
                        module.training = flag
                    _remove_hooks_since(module, first_new_hook_id)
                for module, flag in zip(switchable, inplace):
                    if module.inplace != flag:
                        module.inplace = flag
                for parameter, flag in zip(parameters, requires_grad):
                    if parameter.grad is not None:
                        parameter.grad = None
                    if parameter.requires_grad != flag:
                        parameter.requires_grad_(flag)


def _out_of_memory(exc: BaseException) -> bool:
    """A device allocator failure: CUDA's OutOfMemoryError, or the CPU allocator's RuntimeError."""
    return isinstance(exc, torch.OutOfMemoryError) or "can't allocate memory" in str(exc)


_HOOK_DICTS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")


def _remove_hooks_since(module: nn.Module, first_id: int) -> None:
    """Remove hooks registered on ``module`` with an id of at least ``first_id``."""
    for attr in _HOOK_DICTS:
        hooks = module.__dict__.get(attr)
        if not hooks:
            continue
        for key in [k for k in hooks if k >= first_id]:
            del hooks[key]
            for extra in (
                "_forward_hooks_with_kwargs",
                "_forward_hooks_always_called",
                "_forward_pre_hooks_with_kwargs",
            ):
                getattr(module, extra, {}).pop(key, None)


def _limit_aspect(image: Image.Image) -> Image.Image:
    width, height = image.size
    long_side, short_side = max(width, height), min(width, height)
    if long_side <= MAX_ASPECT_RATIO * short_side:
        return image
    keep = max(1, int(MAX_ASPECT_RATIO * short_side))
    if width > height:
        left = (width - keep) // 2
        return image.crop((left, 0, left + keep, height))
    top = (height - keep) // 2
    return image.crop((0, top, width, top + keep))


def state_dict_hash(model: nn.Module) -> str:
    """SHA-256 over every tensor of the state_dict (names, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _block_names(model: nn.Module) -> dict[str, str]:
    """Map every module name to its block (first non-container module below the root)."""
    blocks: dict[str, str] = {}

    def walk(module: nn.Module, prefix: str, block: str | None) -> None:
        for child_name, child in module.named_children():
            name = f"{prefix}.{child_name}" if prefix else child_name
            child_block = block
            if child_block is None and type(child) not in _CONTAINERS:
                child_block = name
            blocks[name] = child_block or name
            walk(child, name, child_block)

    walk(model, "", None)
    return blocks


def build_layer_index(handle: ModelHandle) -> dict[str, LayerInfo]:
    """Index every module that returns a tensor, from one dry forward pass on zeros."""
    model = handle.model
    names = [name for name, _ in model.named_modules() if name]
    blocks = _block_names(model)
    modules = dict(model.named_modules())
    height, width = handle.input_size
    dry_input = torch.zeros(1, handle.input_channels, height, width, device=handle.device)
    order: dict[str, int] = {}

    def record_order(name: str):
        def hook(module: nn.Module, inputs: object, output: object) -> None:
            order.setdefault(name, len(order))

        return hook

    with handle.guard(), torch.no_grad():
        order_hooks = [modules[name].register_forward_hook(record_order(name)) for name in names]
        try:
            with capture(model, names, clone=False) as record:
                model(dry_input)
            overwritten = set(record.overwritten())
            with capture(model, names, clone=False, out_of_place=False) as in_place_record:
                model(dry_input)
            overwritten_by_modules = set(in_place_record.overwritten()) - overwritten
        except Exception as exc:
            raise ModelError(
                f"A test forward pass of {handle.name} on a {handle.input_channels}x{height}x{width} input failed: "
                f"{type(exc).__name__}: {str(exc)[:200]}"
            ) from exc
        finally:
            for hook in order_hooks:
                hook.remove()

    aliases = _sequential_aliases(modules, set(record.outputs))
    index: dict[str, LayerInfo] = {}
    for name in sorted(record.outputs, key=lambda n: order[n]):
        module = modules[name]
        index[name] = LayerInfo(
            name=name,
            type_name=type(module).__name__,
            output_shape=tuple(record.outputs[name].shape[1:]),
            params=sum(parameter.numel() for parameter in module.parameters()),
            order=order[name],
            block=blocks.get(name, name),
            is_block=blocks.get(name) == name and type(module) not in _CONTAINERS,
            calls=record.calls.get(name, 1),
            overwritten_in_place=name in overwritten,
            needs_out_of_place=name in overwritten_by_modules,
            alias_of=aliases.get(name),
        )
    return index


def _sequential_aliases(modules: dict[str, nn.Module], captured: set[str]) -> dict[str, str]:
    """Map each plain Sequential to the descendant that produces its output."""
    aliases: dict[str, str] = {}

    def resolve(name: str) -> str | None:
        module = modules[name]
        if not isinstance(module, nn.Sequential) or type(module).forward is not nn.Sequential.forward:
            return None
        children = [child for child, _ in module.named_children()]
        if not children:
            return None
        last = f"{name}.{children[-1]}" if name else children[-1]
        if last not in captured:
            return None
        return resolve(last) or last

    for name in captured:
        target = resolve(name)
        if target is not None:
            aliases[name] = target
    return aliases


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


@dataclass(frozen=True)
class Prediction:
    """Top-k classes for one image.

    Attributes:
        indices: class indices, most probable first.
        labels: their names.
        probabilities: softmax probabilities.
    """

    indices: tuple[int, ...]
    labels: tuple[str, ...]
    probabilities: tuple[float, ...]

    @property
    def is_finite(self) -> bool:
        """False when the model's outputs were not numbers (NaN or infinite weights): then no
        class can be named and the probabilities mean nothing."""
        return all(np.isfinite(self.probabilities))


def predict(handle: ModelHandle, image: Image.Image, k: int = 5) -> Prediction:
    """Top-``k`` classes of ``image`` (softmax over the logits)."""
    logits = _logits(handle, handle.preprocess(image))
    return top_k(handle, logits, k)


def top_k(handle: ModelHandle, logits: np.ndarray, k: int = 5) -> Prediction:
    """Turn a logit vector into a :class:`Prediction`."""
    logits64 = logits.astype(np.float64)
    probabilities = np.exp(logits64 - logits64.max())
    probabilities /= probabilities.sum()
    k = max(1, min(int(k), probabilities.size))
    best = np.argsort(-probabilities, kind="stable")[:k]
    labels = tuple(handle.labels[i] if i < len(handle.labels) else f"class {i}" for i in best)
    return Prediction(tuple(int(i) for i in best), labels, tuple(float(probabilities[i]) for i in best))


def _logits(handle: ModelHandle, inputs: torch.Tensor) -> np.ndarray:
    with handle.guard() as model, torch.no_grad():
        output = run_forward(model, inputs)
    if output is None:
        raise ModelError("The forward pass was interrupted.")
    return output.detach().float().cpu().reshape(-1).numpy()


__all__ = [
    "DEFAULT_MODEL",
    "LayerInfo",
    "ModelHandle",
    "Prediction",
    "build_layer_index",
    "classification_models",
    "hook_count",
    "load_factory",
    "load_model",
    "predict",
    "resolve_device",
    "state_dict_hash",
    "top_k",
]
