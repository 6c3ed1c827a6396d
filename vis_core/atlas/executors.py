"""Where the work of a build runs. Two executors, one interface:

* ``local`` (:class:`LocalExecutor`): in this process, on the handle's long-work twin
  (:meth:`vis_core.ModelHandle.for_long_work`), so a build never holds the lock a viewer's
  click waits for; batches and chunks one after the other.
* ``ray`` (:class:`vis_core.atlas.ray_executor.RayExecutor`): Ray Data for the collection pass
  and Ray tasks for the render chunks, on a local Ray or a cluster. Imported only when asked
  for, so ``import vis_core`` never imports Ray.

An executor gets fixed units of work (image batches, render chunks; see
:mod:`vis_core.atlas.examples` and :mod:`vis_core.atlas.renders`) and yields their results;
the build writes them. The collection pass yields batches in order, the renders in any order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np

from ..errors import ParameterError
from ..models import ModelHandle
from ..optim import Stopped
from .examples import BatchResult, run_batch
from .renders import RenderJob, render_job

EXECUTORS: tuple[str, ...] = ("local", "ray")

#: ``(first, refs)``: a batch's position in the collection and its image references.
Batch = tuple[int, Sequence[str]]
StopCheck = Callable[[], bool] | None


class Executor(Protocol):
    name: str

    def collect(self, batches: Sequence[Batch], layers: Sequence[str], should_stop: StopCheck) -> Iterator[BatchResult]:
        """Each batch's numbers, in the order of ``batches``."""
        ...

    def render(
        self, jobs: Sequence[RenderJob], should_stop: StopCheck
    ) -> Iterator[tuple[RenderJob, list[list[np.ndarray]]]]:
        """Each chunk with its pictures, in any order."""
        ...

    def close(self) -> None: ...


class LocalExecutor:
    """In this process, batched, on the long-work twin."""

    name = "local"

    def __init__(self, handle: ModelHandle) -> None:
        self.handle = handle.for_long_work()

    def collect(self, batches: Sequence[Batch], layers: Sequence[str], should_stop: StopCheck) -> Iterator[BatchResult]:
        for first, refs in batches:
            if should_stop is not None and should_stop():
                raise Stopped
            yield run_batch(self.handle, refs, first, layers)

    def render(
        self, jobs: Sequence[RenderJob], should_stop: StopCheck
    ) -> Iterator[tuple[RenderJob, list[list[np.ndarray]]]]:
        for job in jobs:
            if should_stop is not None and should_stop():
                raise Stopped
            yield job, render_job(self.handle, job, should_stop)

    def close(self) -> None:
        pass


def make_executor(name: str, handle: ModelHandle, address: str | None) -> Executor:
    if name == "local":
        if address is not None:
            raise ParameterError("An address is for the 'ray' executor; the local one runs in this process.")
        return LocalExecutor(handle)
    if name == "ray":
        from .ray_executor import RayExecutor  # Ray is imported only here

        return RayExecutor(handle, address)
    raise ParameterError(f"Unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}.")
