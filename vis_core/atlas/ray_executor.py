"""The ``ray`` executor: the collection pass on Ray Data, the renders as Ray tasks.

* The pass: one dataset row per image batch (the same fixed batches as the local executor),
  ``map_batches`` with :class:`_BatchActor`, which unpickles the model once per actor and
  decodes, preprocesses and measures its batches. Rows come back in order
  (``preserve_order``), so the build commits batch after batch as it does locally. The
  images are read where the actor runs: on a cluster, a folder must be visible to every node
  (a shared file system), or use ``sample``/``imagenette``.
* The renders: one task per chunk (:mod:`vis_core.atlas.renders`), all submitted at once,
  gathered as they finish; Stop cancels what has not finished.

The model travels once, as a pickled :class:`~vis_core.ModelHandle` in Ray's object store.
Every worker computes with as many torch threads as the calling process (Ray would give it
one): on a CPU the thread count changes the last bits of a convolution, and with it which of
two close activations ranks first and, after hundreds of steps, a render's pixels. So the
same machine gives the same atlas on both executors; Ray schedules each worker on one CPU.
``address=None`` starts a local Ray of 2 CPUs (and stops it afterwards); an address (for
example ``ray://head:10001`` or ``auto``) joins a running cluster, which is left running.
This module imports Ray; nothing else in the engine does.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from ..errors import ParameterError, VisCoreError
from ..models import ModelHandle
from ..optim import Stopped
from .examples import BatchResult, run_batch
from .executors import Batch, StopCheck
from .renders import RenderJob, render_jobs

#: CPUs of the Ray this executor starts when no address is given.
LOCAL_CPUS = 2
_POLL_SECONDS = 0.25


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ParameterError("The ray executor needs Ray: pip install 'ray[data]>=2.40'.") from exc
    return ray


class _BatchActor:
    """A Ray Data actor: the model, unpickled once, measures one image batch per row."""

    def __init__(self, handle: ModelHandle, layers: Sequence[str], threads: int) -> None:
        torch.set_num_threads(threads)
        self.handle = handle
        self.layers = list(layers)

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        payloads = []
        for first, refs in zip(rows["first"], rows["refs"]):
            result = run_batch(self.handle, [str(ref) for ref in refs], int(first), self.layers)
            payloads.append(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
        return {"first": np.asarray(rows["first"]), "payload": np.array(payloads, dtype=object)}


def _render_task(handle: ModelHandle, jobs: list[RenderJob], threads: int) -> list[list[list[np.ndarray]]]:
    torch.set_num_threads(threads)
    return render_jobs(handle, jobs)


class RayExecutor:
    name = "ray"

    def __init__(self, handle: ModelHandle, address: str | None) -> None:
        ray = self.ray = _import_ray()
        self.started = False
        if not ray.is_initialized():
            options = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
            try:
                if address is None:
                    ray.init(num_cpus=LOCAL_CPUS, **options)
                    self.started = True
                else:
                    ray.init(address=address, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ParameterError(f"Cannot start or join Ray at {address or 'a local Ray'}: {exc}") from exc
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # batches are committed in order
        context.enable_progress_bars = False  # the build reports progress itself
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        self.gpus = 1 if handle.device.type == "cuda" else 0
        self.handle_ref = ray.put(handle)
        self.handle = handle
        self.threads = torch.get_num_threads()

    def _cpus(self) -> int:
        return max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def collect(self, batches: Sequence[Batch], layers: Sequence[str], should_stop: StopCheck) -> Iterator[BatchResult]:
        if not batches:
            return
        ray = self.ray
        items = [{"first": int(first), "refs": [str(ref) for ref in refs]} for first, refs in batches]
        actors = max(1, min(len(items), self._cpus()))
        if self.gpus:  # one GPU per actor
            actors = max(1, min(actors, int(self.ray.cluster_resources().get("GPU", 1))))
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            _BatchActor,
            fn_constructor_kwargs={"handle": self.handle, "layers": list(layers), "threads": self.threads},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=1,
            num_gpus=self.gpus,
        )
        for row in self._rows(dataset):
            if should_stop is not None and should_stop():
                raise Stopped
            yield pickle.loads(row["payload"])

    def _rows(self, dataset) -> Iterator[dict]:
        try:
            yield from dataset.iter_rows()
        except Exception as exc:
            raise _cause(exc) from exc

    def render(
        self, jobs: Sequence[RenderJob], should_stop: StopCheck
    ) -> Iterator[tuple[RenderJob, list[list[np.ndarray]]]]:
        ray = self.ray
        task = ray.remote(num_cpus=1, num_gpus=self.gpus, max_retries=0)(_render_task)
        pending = {task.remote(self.handle_ref, [job], self.threads): job for job in jobs}
        try:
            while pending:
                if should_stop is not None and should_stop():
                    raise Stopped
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_SECONDS)
                for ref in ready:
                    job = pending.pop(ref)
                    try:
                        (pictures,) = ray.get(ref)
                    except Exception as exc:
                        raise _cause(exc) from exc
                    yield job, pictures
        finally:
            for ref in pending:
                ray.cancel(ref, force=True)

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()


def _cause(exc: BaseException) -> BaseException:
    """The engine's own error inside a Ray error, so a bad input reads the same as locally."""
    seen = exc
    for _ in range(8):
        cause = getattr(seen, "cause", None) or seen.__cause__
        if cause is None:
            break
        if isinstance(cause, VisCoreError):
            return cause
        seen = cause
    return exc
