"""Attribution maps that refine while the viewer watches, shared by every viewer.

A method that refines (``Method.refines``: Score-CAM, occlusion, integrated gradients) runs in a
background thread through :func:`vis_core.attribute_stages`: a first
picture within seconds, better ones after it, the exact map last. Every session asking for the
same map (model, photo, method, class, layer) shares one :class:`Refinement`; pages draw its
latest stage and poll while it refines, so the work goes on across reruns (moving a slider does
not start it over). Nobody asking for :data:`WATCH_SECONDS` stops it: an abandoned Score-CAM
does not hold the CPU. Finished maps are kept (the newest :data:`MAX_KEPT`).

The work runs on the model's long-work twin (``ModelHandle.for_long_work``), so feature maps,
predictions and the click-speed methods never wait for it.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from PIL import Image

import vis_core
from vis_core import ModelHandle
from vis_core.optim import Stopped

#: Seconds without anyone asking after which a refinement stops.
WATCH_SECONDS = 6.0
#: Refinements kept (finished ones are the cache of exact maps).
MAX_KEPT = 64

Key = tuple[str, str, str, int, str | None]


@dataclass
class Refinement:
    """One map being refined: its latest stage, and how far the work is."""

    key: Key
    latest: vis_core.Attribution | None = None
    error: vis_core.VisCoreError | None = None
    fraction: float = 0.0
    finished: bool = False
    stopped: bool = False
    seen: float = field(default_factory=time.monotonic)
    first: threading.Event = field(default_factory=threading.Event, repr=False)
    thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        """The exact map is here, or the work ended with an error."""
        return self.finished or self.error is not None

    def wait_first(self, timeout: float | None = None) -> bool:
        """Block until the first picture (or an error or a stop) is here; waiting counts as
        watching. False if ``timeout`` seconds passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.first.wait(0.25):
            self.seen = time.monotonic()
            if deadline is not None and time.monotonic() > deadline:
                return False
        return True


_LOCK = threading.Lock()
_SHUTDOWN = threading.Event()
_ALL: OrderedDict[Key, Refinement] = OrderedDict()


def refinement(
    handle: ModelHandle, image_key: str, image: Image.Image, method: str, target: int, layer: str | None
) -> Refinement:
    """The shared refinement of this map, started if nobody has (or the last one was abandoned)."""
    key = (handle.key, image_key, method, target, layer)
    with _LOCK:
        current = _ALL.get(key)
        if current is None or current.stopped:
            current = Refinement(key)
            _ALL[key] = current
            current.thread = threading.Thread(
                target=_work, args=(current, handle, image, method, target, layer), name=f"refine-{method}", daemon=True
            )
            current.thread.start()
            while len(_ALL) > MAX_KEPT:
                _ALL.popitem(last=False)
        _ALL.move_to_end(key)
        current.seen = time.monotonic()
    return current


def _work(
    refinement: Refinement, handle: ModelHandle, image: Image.Image, method: str, target: int, layer: str | None
) -> None:
    def progress(done: int, total: int) -> None:
        refinement.fraction = done / max(1, total)

    def abandoned() -> bool:
        return _SHUTDOWN.is_set() or time.monotonic() - refinement.seen > WATCH_SECONDS

    try:
        for stage in vis_core.attribute_stages(
            handle, image, method, target=target, layer=layer, progress=progress, should_stop=abandoned
        ):
            refinement.latest = stage
            refinement.first.set()
            if not stage.exact and abandoned():
                raise Stopped("Nobody is watching this map any more.")
        refinement.finished = True
    except Stopped:
        refinement.stopped = True
    except vis_core.VisCoreError as exc:
        refinement.error = exc
    finally:
        refinement.first.set()


def clear(timeout: float = 120.0) -> None:
    """Stop the work in progress (waiting for it up to ``timeout`` s) and forget every kept map.
    Tests call this between runs; it also runs at exit, since torch must not be running in a
    thread while the interpreter shuts down."""
    _SHUTDOWN.set()
    with _LOCK:
        threads = [r.thread for r in _ALL.values() if r.thread is not None]
        _ALL.clear()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    _SHUTDOWN.clear()


atexit.register(clear)
