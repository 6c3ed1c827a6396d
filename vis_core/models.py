"""The model handle: an eval-mode model with its preprocessing, labels, layer index and guard.

A :class:`ModelHandle` is what every technique receives. It carries the eval-mode model, the
preprocessing of its weights (resize, centre crop, normalise, as torchvision's
``weights.transforms()``), the class labels, the device, the layer index
(:mod:`vis_core.layers`) and a lock. Handles are made by :mod:`vis_core.loading`.

The same handle is shared by every dashboard session and thread, so every engine call on it
runs inside :meth:`ModelHandle.guard`: the lock is held, training flags and
``requires_grad`` are restored afterwards, every ``param.grad`` is left ``None`` and any hook
a technique forgot is removed, on a normal exit and after an exception.

Long work (feature visualisation, deep dream, reconstruction, the slow attribution methods and
the faithfulness curves) runs on :meth:`ModelHandle.for_long_work`: a twin handle with its own
copy of the model and its own lock, made once. A minute-long render then never holds the lock
that a click's feature maps or prediction wait for; the twin has the same weights, so results
equal those on the handle itself, and its guard keeps the same promises.

A twin also makes way for clicks. Its own lock keeps long work from blocking a click, but on a
CPU both still share the cores: a click's forward pass beside a Score-CAM batch ran about twice
as slow. So the handle counts the calls in progress on it (:class:`Clicks`), and long work calls
:meth:`ModelHandle.make_way` between its steps (the twin's guard does at every entry, and the
optimisation loops at every step): while a click is being served, and for a short quiet spell
after it (a page makes several calls in a row), the long work waits, at most
:data:`MAKE_WAY_SECONDS` at a time so a stream of clicks cannot starve it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from . import arrays
from .errors import ModelError, ParameterError, ResourceError
from .hooks import removing_new_hooks, suggest
from .layers import LayerInfo, build_layer_index

#: Images more elongated than this are centre-cropped to this aspect ratio before resizing,
#: so a 3x10000 strip cannot turn into a gigapixel tensor. Normal photos are unaffected.
MAX_ASPECT_RATIO = 4.0

#: Long work waits at most this long, per step, for clicks in progress to finish.
MAKE_WAY_SECONDS = 3.0
#: ... and until no click has run for this long (the calls of one page run follow each other).
QUIET_SECONDS = 0.25


class Clicks:
    """The calls in progress on an interactive handle, for its long-work twin to make way for."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._last_end = float("-inf")

    @contextmanager
    def running(self) -> Iterator[None]:
        with self._changed:
            self._running += 1
        try:
            yield
        finally:
            with self._changed:
                self._running -= 1
                self._last_end = time.monotonic()
                self._changed.notify_all()

    def wait_quiet(self) -> float:
        """Wait until no call runs and none ended in the last :data:`QUIET_SECONDS`, at most
        :data:`MAKE_WAY_SECONDS`; returns the seconds waited."""
        quiet, most = QUIET_SECONDS, MAKE_WAY_SECONDS
        start = time.monotonic()
        deadline = start + most
        with self._changed:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    break
                if self._running:
                    self._changed.wait(deadline - now)
                    continue
                calm_at = self._last_end + quiet
                if now >= calm_at:
                    break
                self._changed.wait(min(calm_at, deadline) - now)
        return time.monotonic() - start


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
    _clicks: Clicks = field(default_factory=Clicks, init=False, repr=False)

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
        """Modules with a boolean ``inplace`` flag (ReLU, Dropout...): the guard restores it."""
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
                    twin._clicks = self._clicks  # the twin makes way for this handle's calls
                    self._long_work = twin
        return self._long_work

    def __getstate__(self) -> dict:
        """Pickled (to reach Ray workers) without the lock, the twin and the cached properties."""
        skip = ("lock", "_long_work", "_clicks")
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in skip}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, lock=threading.RLock(), _long_work=None, _clicks=Clicks())

    # ----------------------------------------------------------- preprocessing
    def model_view(self, image: Image.Image) -> Image.Image:
        """The image as the model sees it: resized and centre-cropped, before normalising."""
        image = image.convert("RGB")
        box = aspect_box(image.size)
        if box != (0, 0, *image.size):
            image = image.crop(box)
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
        offset_x, offset_y, right, bottom = aspect_box(size)
        width, height = right - offset_x, bottom - offset_y
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

    def spatial_blocks(self) -> list[str]:
        """The blocks whose output is a ``(C, H, W)`` map, in execution order (CAM layers, atlas
        layers, the strip of reconstructions, the tour's depths all choose among these)."""
        return [info.name for info in self.blocks() if info.is_spatial]

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
    @property
    def is_long_work(self) -> bool:
        """Whether this is a long-work twin (see :meth:`for_long_work`)."""
        return self._long_work is self

    def make_way(self) -> float:
        """On a long-work twin: wait while clicks are served on the handle it twins (see the module
        docstring); elsewhere nothing. Returns the seconds waited."""
        return self._clicks.wait_quiet() if self.is_long_work else 0.0

    @contextmanager
    def guard(self) -> Iterator[nn.Module]:
        """Hold the lock and leave the model exactly as found, whatever happens inside.

        Restores every module's ``training`` and ``inplace`` flags and every parameter's
        ``requires_grad``, sets every ``param.grad`` to ``None`` and removes hooks added
        inside the block.
        """
        modules = tuple(self.modules.values())
        if self.is_long_work:
            self.make_way()
            counting = contextlib.nullcontext()
        else:
            counting = self._clicks.running()
        with counting, self.lock, removing_new_hooks(modules):
            switchable = self._switchable
            parameters = self._parameters
            training = [module.training for module in modules]
            inplace = [module.inplace for module in switchable]
            requires_grad = [parameter.requires_grad for parameter in parameters]
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


def aspect_box(size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of the centred part of an image of ``size`` (width, height)
    that is at most :data:`MAX_ASPECT_RATIO` times longer than wide: the whole image if it is."""
    width, height = size
    if max(width, height) <= MAX_ASPECT_RATIO * min(width, height):
        return 0, 0, width, height
    keep = max(1, int(MAX_ASPECT_RATIO * min(width, height)))
    if width > height:
        left = (width - keep) // 2
        return left, 0, left + keep, height
    top = (height - keep) // 2
    return 0, top, width, top + keep


def state_dict_hash(model: nn.Module) -> str:
    """SHA-256 over every tensor of the state_dict (names, shapes and bytes)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()
