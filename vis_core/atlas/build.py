"""Building an atlas: every unit of the chosen layers, resumable, on one machine or on Ray.

:func:`build_atlas` plans the work from what the store already holds (a unit is done when its
row exists; a layer's collection pass when its state says so), runs the collection pass for
the layers that still need one (committed per batch), then the render chunks of the units not
built yet; each finished chunk is written with its units' examples and statistics in one
transaction. Started again after any interruption (Stop, an error, SIGKILL), it picks up where
the store says and redoes nothing that was written.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ParameterError
from ..models import ModelHandle
from ..optim import check_caps
from . import collection as collections
from .examples import BATCH, PassState, Patcher
from .executors import EXECUTORS, Executor, make_executor
from .renders import MAX_RENDERS, RenderJob, jobs_for
from .store import AtlasError, Store, UnitEntry, building

MAX_TOP_K = 64
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class AtlasSummary:
    """What one :func:`build_atlas` call did.

    Attributes:
        units: units built in this call; skipped: units that were already in the atlas.
        seconds: wall time; executor: ``local`` or ``ray``.
        bad_images: files of the collection the image loader refused (skipped).
        layers: the layers asked for; path: the atlas folder.
    """

    units: int
    skipped: int
    seconds: float
    executor: str
    bad_images: int
    layers: tuple[str, ...]
    path: Path = field(default=Path("."))


def atlases_dir() -> Path:
    """The folder atlases live in: ``$VIS_CORE_ATLASES``, else ``atlases/`` in the project
    checkout (or in the working directory for an installed package), as :func:`vis_core.runs_dir`."""
    if configured := os.environ.get("VIS_CORE_ATLASES"):
        return Path(configured)
    checkout = Path(__file__).resolve().parents[2]
    return checkout / "atlases" if (checkout / "pyproject.toml").is_file() else Path.cwd() / "atlases"


def atlas_path(handle: ModelHandle, root: str | os.PathLike | None = None) -> Path:
    """The folder of ``handle``'s atlas: ``root`` (default :func:`atlases_dir`) / a safe name of its key."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", handle.key).strip("-.")[:150] or "model"
    return Path(atlases_dir() if root is None else root) / slug


def _check(
    handle: ModelHandle, layers: Sequence[str], steps: int, size: int, top_k: int, renders: int, seed: int
) -> list[str]:
    if isinstance(layers, str):
        layers = [layers]
    names = list(dict.fromkeys(layers))
    if not names:
        raise ParameterError("Choose at least one layer for the atlas.")
    for name in names:
        if not handle.layer(name).is_spatial:
            raise ParameterError(f"{name} has no spatial map; an atlas takes convolutional layers.")
    check_caps(steps=steps, size=size, seed=seed)
    if not 1 <= int(top_k) <= MAX_TOP_K:
        raise ParameterError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}.")
    if not 1 <= int(renders) <= MAX_RENDERS:
        raise ParameterError(f"renders must be between 1 and {MAX_RENDERS}, got {renders}.")
    return names


def build_atlas(
    handle: ModelHandle,
    *,
    layers: Sequence[str],
    images: str | os.PathLike,
    out: str | os.PathLike,
    steps: int = 256,
    size: int = 128,
    top_k: int = 9,
    renders: int = 1,
    executor: str = "local",
    address: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AtlasSummary:
    """Build (or finish) the atlas of ``layers`` in the folder ``out``.

    Raises:
        ParameterError: a layer without a spatial map, settings out of range, a bad collection.
        AtlasError: ``out`` holds another model's atlas, or one with other settings or images.
        vis_core.optim.Stopped: ``should_stop()`` said so; what was written stays, and a later
            call resumes from there.
    """
    start = time.perf_counter()
    names = _check(handle, layers, steps, size, top_k, renders, seed)
    if executor not in EXECUTORS:
        raise ParameterError(f"Unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}.")
    images_list = collections.resolve(images)
    settings = {"steps": int(steps), "size": int(size), "top_k": int(top_k), "renders": int(renders), "seed": int(seed)}
    model = {"hash": handle.state_hash, "key": handle.key, "name": handle.name}
    report = progress or (lambda done, total, message: None)
    with building(out) as store:
        store.claim(model, settings, images_list.describe())
        channels = {name: handle.layers[name].output_shape[0] for name in names}
        store.add_layers(channels)
        done = {name: store.built(name) for name in names}
        total = sum(channels.values())
        skipped = sum(len(built) for built in done.values())
        jobs = [
            job
            for name in names
            for job in jobs_for(name, channels[name], seed=seed, steps=steps, size=size, renders=renders)
            if not set(job.channels) <= done[name]
        ]
        built, bad = 0, 0
        if jobs:
            report(skipped, total, "Starting")
            runner = make_executor(executor, handle, address)
            try:
                wanted = list(dict.fromkeys(job.layer for job in jobs))
                states, bad = _collect(
                    runner, store, handle, wanted, images_list, int(top_k), (skipped, total, report), should_stop
                )
                patcher = Patcher(handle.for_long_work(), images_list.refs)
                for job, pictures in runner.render(jobs, should_stop):
                    entries = _entries(job, pictures, states[job.layer], patcher, done[job.layer])
                    store.write_units(entries)
                    built += len(entries)
                    report(skipped + built, total, f"{job.layer}: channels {job.channels[0]}-{job.channels[-1]}")
            finally:
                runner.close()
        else:
            bad = int(store.meta()["collection"].get("bad_images") or 0)
        report(skipped + built, total, "Done")
    return AtlasSummary(built, skipped, time.perf_counter() - start, executor, bad, tuple(names), Path(out))


def _collect(
    runner: Executor,
    store: Store,
    handle: ModelHandle,
    layers: list[str],
    images: collections.Collection,
    top_k: int,
    reporting: tuple[int, int, Progress],
    should_stop: Callable[[], bool] | None,
) -> tuple[dict[str, PassState], int]:
    """The collection pass for ``layers`` (resumed where each stopped); their final states."""
    states: dict[str, PassState] = {}
    starts: dict[str, int] = {}
    for name in layers:
        next_batch, finished, blob = store.pass_progress(name)
        _, height, width = handle.layers[name].output_shape
        channels = handle.layers[name].output_shape[0]
        states[name] = PassState.from_bytes(blob) if blob else PassState(channels, top_k, height * width)
        starts[name] = len(images.refs) if finished else next_batch * BATCH
    first = min(starts.values())
    batches = [(at, images.refs[at : at + BATCH]) for at in range(first, len(images.refs), BATCH)]
    count = -(-len(images.refs) // BATCH)
    skipped, total, report = reporting
    reading = [name for name in layers if starts[name] < len(images.refs)]  # finished passes are not redone
    for (at, _), result in zip(batches, runner.collect(batches, reading, should_stop)):
        updated = [name for name in layers if starts[name] <= at]
        for name in updated:
            states[name].update(result, name)
        last = at + BATCH >= len(images.refs)
        store.save_passes((name, at // BATCH + 1, last, states[name].to_bytes()) for name in updated)
        report(skipped, total, f"Collection pass: batch {at // BATCH + 1} of {count}")
    used, bad = (int(v) for v in next(iter(states.values())).counts[:2])
    if used == 0:
        raise AtlasError(f"None of the {len(images.refs)} files of {images.source!r} is a usable image.")
    store.record_collection_counts(used, bad)
    return states, bad


def _entries(
    job: RenderJob, pictures: list[list], state: PassState, patcher: Patcher, done: set[int]
) -> list[UnitEntry]:
    entries = []
    for channel, renders in zip(job.channels, pictures):
        if channel in done:
            continue
        examples, patches = patcher.examples(job.layer, channel, state)
        entries.append(UnitEntry(job.layer, channel, renders, examples, patches, state.stats(channel)))
    return entries
