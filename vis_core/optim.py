"""The ascent loop shared by feature visualisation, deep dream and feature inversion.

:func:`ascend` maximises an objective (:mod:`vis_core.objectives`) over an image
parameterisation (:mod:`vis_core.param`), seen through random transforms
(:mod:`vis_core.transforms`), with Adam. The forward pass stops after the deepest layer the
objective reads (hooks raise ``StopForward``): unlike lucent, which runs the whole network
every step and leaves its hooks on the model, we never pay for the classifier unless a class
is the objective, and the hooks go on once per loop. The network sees the requested size
every step.

The loop runs on :func:`rendering_twin`: the long-work twin's model with each BatchNorm folded
into the convolution before it (:func:`vis_core.surgery.fold_batchnorm`). It computes the same
function to float rounding (1e-4 relative at every block, tested), but on a CPU a 32-image step
at 128 px spent a quarter of its time in BatchNorm's backward pass and a tenth in its forward:
the folded copy takes about 0.7x the time per step.

We write this ourselves: lucent (the maintained-looking choice) has been unmaintained since
2021, runs the full network and leaves hooks behind; captum.optim is not released on PyPI.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F

from . import surgery
from .errors import ParameterError, VisCoreError
from .hooks import capture, run_forward
from .models import ModelHandle
from .objectives import LOGITS, Objective
from .param import ImageParam
from .transforms import Transform

#: Server-side caps: whatever a page or a request asks, no render runs longer, larger or wider.
MAX_STEPS = 2048
MAX_SIZE = 1024
MAX_BATCH = 64
#: The largest seed: a torch.Generator takes 64 bits (a larger one overflowed inside torch).
MAX_SEED = 2**63 - 1


def check_caps(
    *, steps: int | None = None, size: int | None = None, batch: int | None = None, seed: int | None = None
) -> None:
    """Refuse extreme parameters with a clear message (server-side, whatever the UI sent)."""
    if seed is not None and (isinstance(seed, bool) or not 0 <= int(seed) <= MAX_SEED):
        raise ParameterError(f"seed must be a whole number from 0 to {MAX_SEED}, got {str(seed)[:40]}.")
    if steps is not None and not 1 <= int(steps) <= MAX_STEPS:
        raise ParameterError(f"steps must be between 1 and {MAX_STEPS}, got {steps}.")
    if size is not None and not 16 <= int(size) <= MAX_SIZE:
        raise ParameterError(f"size must be between 16 and {MAX_SIZE} pixels, got {size}.")
    if batch is not None and not 1 <= int(batch) <= MAX_BATCH:
        raise ParameterError(f"at most {MAX_BATCH} images at once, got {batch}.")


_FOLDED: weakref.WeakKeyDictionary[ModelHandle, dict[frozenset[str], ModelHandle]] = weakref.WeakKeyDictionary()
_FOLDABLE: weakref.WeakKeyDictionary[ModelHandle, frozenset[str]] = weakref.WeakKeyDictionary()
_FOLDING = threading.Lock()


def rendering_twin(handle: ModelHandle, layers: Iterable[str] = ()) -> ModelHandle:
    """The long-work twin of ``handle`` with BatchNorm folded (see the module docstring).

    A convolution named in ``layers`` keeps its own output (folding would show it the
    BatchNorm's), so the copy depends on which of ``layers`` are foldable convolutions: usually
    none (blocks, activations), so one copy per handle. Made once and kept while the handle
    lives; like the twin it has its own lock and makes way for clicks on ``handle``.
    """
    twin = handle.for_long_work()
    with _FOLDING:
        copies = _FOLDED.setdefault(twin, {})
        if frozenset() not in copies:
            copies[frozenset()], _FOLDABLE[twin] = _fold(twin, ())
        keep = frozenset(layers) & _FOLDABLE[twin]
        if keep not in copies:
            if len(copies) >= 4:  # bounded memory: drop the oldest copy that keeps a convolution
                copies.pop(next(key for key in copies if key))
            copies[keep] = _fold(twin, keep)[0]
        return copies[keep]


def _fold(twin: ModelHandle, keep: Iterable[str]) -> tuple[ModelHandle, frozenset[str]]:
    model = copy.deepcopy(twin.model)
    convs = surgery.fold_batchnorm(model, keep=keep)
    folded = dataclasses.replace(twin, model=model, lock=threading.RLock())
    folded._long_work = folded  # a long-work handle: its guard makes way for clicks
    folded._clicks = twin._clicks
    return folded, frozenset(convs)


class Stopped(VisCoreError):
    """Raised inside :func:`ascend` when ``should_stop()`` returns True."""


@contextmanager
def reading(handle: ModelHandle, layers: frozenset[str]) -> Iterator[Callable[[torch.Tensor], dict[str, torch.Tensor]]]:
    """Hooks on ``layers`` for a whole loop; yields ``read(inputs) -> activations``.

    ``read`` runs the forward pass, stopping after the deepest layer (the whole network only
    when the logits are asked for). The hooks go on once, not once per step."""
    named = [layer for layer in layers if layer != LOGITS]
    for layer in named:
        handle.layer(layer)
    model = handle.model
    with capture(
        model,
        named,
        clone=False,
        detach=False,
        stop_when_done=LOGITS not in layers,
        out_of_place=handle.needs_out_of_place(named),
        modules=handle.modules,
    ) as record:

        def read(inputs: torch.Tensor) -> dict[str, torch.Tensor]:
            record.reset()
            logits = run_forward(model, fast_layout(inputs))
            result = dict(record.outputs)
            if LOGITS in layers:
                result[LOGITS] = logits
            return result

        yield read


def fast_layout(inputs: torch.Tensor) -> torch.Tensor:
    """Images in the memory layout the device's convolutions run fastest in: channels-last on a
    CPU (oneDNN's native layout; the shared model's weights stay as they are), else unchanged."""
    # Kept for the feature visualisation target (benchmarks/bench_featurevis.py): without it a
    # step costs more than the 1.15x a bare forward and backward pass it is allowed.
    if inputs.device.type == "cpu" and inputs.dim() == 4:
        return inputs.contiguous(memory_format=torch.channels_last)
    return inputs


def activations(handle: ModelHandle, inputs: torch.Tensor, layers: frozenset[str]) -> dict[str, torch.Tensor]:
    """Outputs of ``layers`` (and the logits if asked), stopping after the deepest layer."""
    with reading(handle, layers) as read:
        return read(inputs)


def ascend(
    handle: ModelHandle,
    objective: Objective,
    param: ImageParam,
    *,
    steps: int,
    lr: float = 0.05,
    transforms: Sequence[Transform] = (),
    generator: torch.Generator,
    regulariser: Callable[[torch.Tensor], torch.Tensor] | None = None,
    on_step: Callable[[int, int, torch.Tensor | None], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    preview_every: int = 16,
) -> tuple[torch.Tensor, list[float]]:
    """Maximise ``objective`` (minus ``regulariser(images)``) over ``param`` with Adam.

    Returns the final images ``(B, C, H, W)`` in [0, 1] and the mean objective per step.
    ``on_step(step, total, preview)`` gets a detached copy of the images every
    ``preview_every`` steps (None otherwise).
    """
    check_caps(steps=steps)
    handle = rendering_twin(handle, objective.layers)  # never holds the lock a click waits for
    param = param.to(handle.device)
    variables = list(param.parameters())
    optimizer = torch.optim.Adam(variables, lr=lr)
    history: list[float] = []
    with handle.guard(), torch.enable_grad(), reading(handle, objective.layers) as read:
        for step in range(1, int(steps) + 1):
            if should_stop is not None and should_stop():
                raise Stopped
            handle.make_way()  # a click on the shared handle goes first (see ModelHandle.make_way)
            optimizer.zero_grad(set_to_none=True)
            images = param()
            transformed = images
            for transform in transforms:
                transformed = transform(transformed, generator)
            if transformed.shape[-2:] != images.shape[-2:]:  # the network always sees the requested size
                transformed = F.interpolate(transformed, size=images.shape[-2:], mode="bilinear", align_corners=False)
            scores = objective(read(handle.normalise(transformed)))
            loss = -scores.sum()
            if regulariser is not None:
                loss = loss + regulariser(images)
            # autograd.grad, not backward(): the shared model's parameters never get a .grad
            for variable, gradient in zip(variables, torch.autograd.grad(loss, variables)):
                variable.grad = gradient
            optimizer.step()
            history.append(float(scores.detach().mean()))
            if on_step is not None:
                preview = images.detach().cpu() if step % preview_every == 0 or step == steps else None
                on_step(step, int(steps), preview)
        with torch.no_grad():
            final = param().detach().cpu()
    return final, history


def to_numpy_images(images: torch.Tensor) -> list:
    """``(B, C, H, W)`` in [0, 1] to a list of ``(H, W, 3)`` float32 arrays."""
    images = images.detach().float().clamp(0, 1)
    if images.shape[1] == 1:
        images = images.repeat(1, 3, 1, 1)
    return [image.permute(1, 2, 0).numpy().astype("float32") for image in images]
