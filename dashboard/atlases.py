"""The model's atlas, for every page: find it, and show one filter's entry small; and, for a model
without one, a filter's strongest patches of the bundled sample photos (:func:`sample_pass`).

An atlas (``vis_core.build_atlas``) lives in one folder per model, ``vis_core.atlas_path(handle)``.
:func:`find` opens it through :func:`dashboard.cache.atlas`, keyed by the folder and the newest
modification time of its files, so a build in progress shows its new units on the next run
(SQLite in WAL mode writes to ``-wal`` first: the folder's newest file is what moves). A model
without an atlas costs one ``stat`` of a folder that is not there: the pages that show an
entry beside their map (Feature maps, Projection) show nothing and do not wait.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

import vis_core
from dashboard import cache, escape
from vis_core import ModelHandle
from vis_core.atlas.collection import resolve
from vis_core.atlas.examples import BATCH, PassState, Patcher, run_batch

#: Dataset examples shown beside a map on the other pages (the Atlas page shows them all).
EXAMPLES_BESIDE_A_MAP = 3
#: Patches kept per filter when they come from the sample photos (at most one per photo).
SAMPLE_TOP_K = 5


@dataclass(frozen=True)
class Patch:
    """A filter's strongest response on one photo: the photo's name, the activation, where in the
    layer's map (``(y, x)``) and the patch of the photo that position sees (``(h, w, 3)`` uint8)."""

    source: str
    activation: float
    position: tuple[int, int]
    patch: np.ndarray


def stamp(path: Path) -> int | None:
    """The newest modification time (ns) of the atlas folder's database files (the database and its
    write-ahead log; not SQLite's shared-memory index, which readers touch); None when there are none."""
    try:
        times = [entry.stat().st_mtime_ns for entry in path.iterdir() if not entry.name.endswith("-shm")]
    except OSError:  # no folder: no atlas (or it went while we looked)
        return None
    return max(times, default=None)


def lookup(handle: ModelHandle) -> tuple[vis_core.Atlas | None, str | None]:
    """The model's atlas (a ``vis_core.Atlas``) and None, or None and why there is none to show:
    ``""`` when the model has no atlas folder, else a sentence (not readable yet, damaged, or
    built from other weights under the same name; checked once per version of the atlas)."""
    path = vis_core.atlas_path(handle)
    modified = stamp(path)
    if modified is None:
        return None, ""
    try:
        atlas = cache.atlas(str(path), modified, handle.key, handle)
    except vis_core.VisCoreError as exc:  # a build that has not written its first record, or a damaged folder
        return None, str(exc)
    if atlas is None:
        return None, "The atlas in this model's folder was built from other weights, so it is not shown."
    return atlas, None


def find(handle: ModelHandle) -> vis_core.Atlas | None:
    """The model's atlas (a ``vis_core.Atlas``), or None when there is none to show."""
    return lookup(handle)[0]


def source_name(source: str) -> str:
    """A dataset example's source as a viewer reads it: the file's name, not the server's folders."""
    return Path(source).name or source


def example_caption(example) -> str:
    """An example's photo and the filter's activation on it, as Markdown that shows them as they are."""
    return escape.markdown(f"{source_name(example.source)} · {example.activation:.2f}")


def show_entry(handle: ModelHandle, layer: str, channel: int) -> None:
    """Beside a filter's map: its render and its top dataset examples, small, when the model's
    atlas holds that filter; nothing otherwise."""
    atlas = find(handle)
    unit = atlas.unit(layer, channel) if atlas is not None else None
    if unit is None:
        return
    st.caption(f"What filter {channel} looks for (from the atlas)")
    pictures = [unit.render] + [example.patch for example in unit.examples[:EXAMPLES_BESIDE_A_MAP]]
    captions = ["its feature visualisation"] + [example_caption(e) for e in unit.examples[:EXAMPLES_BESIDE_A_MAP]]
    st.image(pictures, caption=captions, width=96, clamp=True)


def sample_pass(handle: ModelHandle, layer: str, top_k: int = SAMPLE_TOP_K) -> tuple[Patcher, PassState]:
    """The atlas's collection pass over the bundled sample photos for one layer, in memory: every
    filter's top ``top_k`` photos (at most one patch per photo), and the patch cutter. The same
    code as an atlas build (``vis_core.atlas.examples``), without a store."""
    collection = resolve("sample")
    channels, height, width = handle.layers[layer].output_shape
    state = PassState(channels, top_k, height * width)
    for first in range(0, len(collection.refs), BATCH):
        state.update(run_batch(handle, collection.refs[first : first + BATCH], first, [layer]), layer)
    return Patcher(handle, collection.refs), state


def sample_patches(patcher: Patcher, state: PassState, layer: str, channel: int) -> list[Patch]:
    """One filter's strongest patches of the sample photos, strongest first."""
    examples, patches = patcher.examples(layer, channel, state)
    return [
        Patch(example["source"], float(example["activation"]), tuple(example["position"]), patch)
        for example, patch in zip(examples, patches)
    ]
