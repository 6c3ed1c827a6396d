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

The same machinery serves any work that comes in stages (:func:`shared`): the evidence on the
activation-maps page, faithfulness curves (:func:`faithfulness`) and the sanity check
(:func:`sanity`), each a quick first version then the exact result
(:func:`vis_core.metrics.faithfulness_stages`, :func:`vis_core.metrics.sanity_stages`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

import vis_core
from dashboard.work.shelf import Shelf
from vis_core import ModelHandle
from vis_core.optim import Stopped

#: Seconds without anyone asking after which a refinement stops.
WATCH_SECONDS = 6.0
#: Refinements kept (finished ones are the cache of exact maps).
MAX_KEPT = 64

Key = tuple  # (model, photo, method, class, layer) for a map; other work leads with its kind
#: ``stages(progress, should_stop)``: an iterator of results, each with ``.exact``, the exact one last.
Stages = Callable[[Callable[[int, int], None], Callable[[], bool]], Iterator[Any]]


@dataclass
class Refinement:
    """One map (or other staged work) being refined: its latest stage, and how far the work is."""

    key: Key
    latest: Any = None  # a vis_core.Attribution for a map
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


_SHELF: Shelf[Refinement] = Shelf(MAX_KEPT)


def refinement(
    handle: ModelHandle, image_key: str, image: Image.Image, method: str, target: int, layer: str | None
) -> Refinement:
    """The shared refinement of this map, started if nobody has (or the last one was abandoned)."""

    def stages(progress, should_stop):
        return vis_core.attribute_stages(
            handle, image, method, target=target, layer=layer, progress=progress, should_stop=should_stop
        )

    return shared((handle.key, image_key, method, target, layer), stages, name=method)


def faithfulness(
    handle: ModelHandle, image_key: str, image: Image.Image, methods: Sequence[str], target: int, layer: str | None
) -> Refinement:
    """Deletion/insertion curves of ``methods``, quick ones first (shared like a map)."""
    from vis_core.metrics import faithfulness_stages

    def stages(progress, should_stop):
        return faithfulness_stages(
            handle, image, list(methods), target=target, layer=layer, progress=progress, should_stop=should_stop
        )

    return shared(("faithfulness", handle.key, image_key, tuple(methods), target, layer), stages, name="faithfulness")


def sanity(
    handle: ModelHandle, image_key: str, image: Image.Image, methods: Sequence[str], target: int, layer: str | None
) -> Refinement:
    """The cascading randomisation check of ``methods``, its end point first (shared like a map)."""
    from vis_core.metrics import sanity_stages

    def stages(progress, should_stop):
        return sanity_stages(
            handle, image, list(methods), target=target, layer=layer, progress=progress, should_stop=should_stop
        )

    return shared(("sanity", handle.key, image_key, tuple(methods), target, layer), stages, name="sanity")


def shared(key: Key, stages: Stages, *, name: str = "work") -> Refinement:
    """The shared refinement under ``key``, started in a background thread if nobody has (or
    the last one was abandoned); ``stages`` is called once, in that thread."""
    with _SHELF.lock:
        current = _SHELF.get(key)
        if current is None or current.stopped:
            current = _SHELF.put(key, Refinement(key))
            _SHELF.start(current, _work, current, stages, name=f"refine-{name}")
        current.seen = time.monotonic()
    return current


def _work(refinement: Refinement, stages: Stages) -> None:
    def progress(done: int, total: int) -> None:
        refinement.fraction = done / max(1, total)

    def abandoned() -> bool:
        return _SHELF.stopping() or time.monotonic() - refinement.seen > WATCH_SECONDS

    try:
        for stage in stages(progress, abandoned):
            refinement.latest = stage
            refinement.first.set()
            if not stage.exact and abandoned():
                raise Stopped("Nobody is watching this work any more.")
        refinement.finished = True
    except Stopped:
        refinement.stopped = True
    except vis_core.VisCoreError as exc:
        refinement.error = exc
    finally:
        refinement.first.set()


def clear(timeout: float = 120.0) -> None:
    """Stop the work in progress (waiting for it up to ``timeout`` s) and forget every kept map
    (tests call this between runs; it also runs at exit)."""
    _SHELF.clear(timeout)
