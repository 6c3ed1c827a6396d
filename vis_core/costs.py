"""How long a piece of work will take on this machine: a measured cost model, and the cap on
the work one request may ask for.

The unit is a *pass*: the model run once on one image at its input size. :func:`pass_seconds`
times a small batch of forward, and forward-and-backward, passes once per model (on its
long-work twin, so no click waits for it); every kind of work counts its passes and scales
them by its pixels, so an estimate is the passes it needs times what a pass costs here:

* attribution methods: ``Method.passes`` (Score-CAM: one per channel; occlusion: one per
  patch position; integrated gradients and SmoothGrad: one forward and backward per step or
  sample);
* optimisation (feature visualisation, deep dream, reconstruction): steps x batch x
  (pixels / the model's input pixels), summed over octaves, each with a backward pass.

:data:`MAX_WORK` caps one request, in forward-and-backward passes at the model's input size:
work past it is refused before it starts with a message that says what to reduce.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import ParameterError
from .models import ModelHandle

#: Most work one request may ask for, in forward-and-backward passes at the model's input size
#: (about three minutes of a 2-core CPU for MobileNetV2 at 224 px).
MAX_WORK = 4096
#: Most work one job a viewer starts in one click may ask for (Present, which computes every slide
#: ahead; an atlas build from the dashboard): four requests' worth, about twelve minutes of a
#: 2-core CPU for MobileNetV2. The command line and the Python API have no such cap.
MAX_JOB_WORK = 4 * MAX_WORK
#: Images per timed batch when calibrating.
_BATCH = 4

_TIMES: dict[tuple[str, str], PassTimes] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class PassTimes:
    """Seconds per image at the model's input size: forward only, and forward and backward."""

    forward: float
    forward_backward: float


def pass_seconds(handle: ModelHandle) -> PassTimes:
    """Measured once per model and device (the best of two timed batches, after a warm-up)."""
    key = (handle.key, str(handle.device))
    with _LOCK:
        if key in _TIMES:
            return _TIMES[key]
    twin = handle.for_long_work()
    channels = twin.input_channels
    inputs = torch.zeros(_BATCH, channels, *twin.input_size, device=twin.device)
    forward, both = [], []
    with twin.guard() as model:
        for repeat in range(3):
            start = time.perf_counter()
            with torch.no_grad():
                model(inputs)
            middle = time.perf_counter()
            x = inputs.clone().requires_grad_(True)
            with torch.enable_grad():
                torch.autograd.grad(model(x).sum(), x)
            end = time.perf_counter()
            if repeat:  # the first is a warm-up
                forward.append((middle - start) / _BATCH)
                both.append((end - middle) / _BATCH)
    times = PassTimes(min(forward), min(both))
    with _LOCK:
        _TIMES[key] = times
    return times


def work_of_images(handle: ModelHandle, shapes: Sequence[tuple[int, int]], steps: int, batch: int = 1) -> float:
    """Forward-and-backward passes, at the model's input size, of ``steps`` optimisation steps on
    ``batch`` images at each of ``shapes`` (height, width), e.g. the octaves of a dream."""
    height, width = handle.input_size
    pixels = sum(h * w for h, w in shapes) / float(height * width)
    return float(steps) * batch * pixels


def check_work(work: float, what: str, reduce: str) -> None:
    """Refuse work over :data:`MAX_WORK`, saying what to reduce."""
    if work > MAX_WORK:
        raise ParameterError(
            f"{what} would take {work:,.0f} passes of the model, more than the {MAX_WORK:,} one request may use. "
            f"Reduce {reduce}."
        )


def seconds_for(handle: ModelHandle, forward: float = 0.0, forward_backward: float = 0.0) -> float:
    """Estimated seconds for that many passes on this machine."""
    times = pass_seconds(handle)
    return forward * times.forward + forward_backward * times.forward_backward


def estimate_attribution(handle: ModelHandle, method: str, layer: str | None = None, **options) -> float:
    """Estimated seconds for the exact map of ``method`` (see ``Method.passes``)."""
    from .attribution import METHODS, default_layer

    spec = METHODS[method]
    used = default_layer(handle, layer) if spec.uses_layer else None
    forward, both = spec.passes(handle, used, options)
    return seconds_for(handle, forward, both)


def clear() -> None:
    """Forget the measured times (tests)."""
    with _LOCK:
        _TIMES.clear()
