"""The model's atlas, for every page: find it, and show one filter's entry small (a model without
one gets a filter's strongest patches of the bundled sample photos from the engine:
``vis_core.atlas.samples``).

An atlas (``vis_core.build_atlas``) lives in one folder per model, ``vis_core.atlas_path(handle)``.
:func:`find` opens it through :func:`dashboard.data.cache.atlas`, keyed by the folder and the newest
modification time of its files, so a build in progress shows its new units on the next run
(SQLite in WAL mode writes to ``-wal`` first: the folder's newest file is what moves). A model
without an atlas costs one ``stat`` of a folder that is not there: the pages that show an
entry beside their map (Feature maps, Projection) show nothing and do not wait.

What is read is checked by the engine (``vis_core.atlas.checks``): a damaged atlas is a sentence
from :func:`lookup`, and a damaged entry of one filter a ``vis_core.AtlasUnitError`` that
:func:`entry` turns into a sentence for the page, while every other filter still shows. A model's
folder that is a link out of the atlases folder is not opened.
"""

from __future__ import annotations

import re
from pathlib import Path

import streamlit as st

import vis_core
from dashboard.data import cache
from dashboard.words import escape
from vis_core import ModelHandle

#: Dataset examples shown beside a map on the other pages (the Atlas page shows them all).
EXAMPLES_BESIDE_A_MAP = 3


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
    if not inside_atlases(path):
        return None, (
            "This model's atlas folder is a link to a place outside the atlases folder, so it is not opened. "
            "Copy the atlas into the atlases folder instead of linking it."
        )
    try:
        atlas = cache.atlas(str(path), modified, handle.key, handle)
    except vis_core.VisCoreError as exc:  # a build that has not written its first record, or a damaged folder
        return None, public(exc)
    if atlas is None:
        return None, "The atlas in this model's folder was built from other weights, so it is not shown."
    return atlas, None


#: A quoted absolute path (it may hold spaces), then a bare one (a slash not inside a word: not "I/O").
_QUOTED = re.compile(r"""(['"])((?:[A-Za-z]:\\|/)[^'"]*)\1""")
_BARE = re.compile(r"""(?<![\w.])(?:[A-Za-z]:\\|/)(?:[^\s'"/\\]+[/\\])*[^\s'"/\\,;:)]*""")


def public(message: object) -> str:
    """An engine's message about an atlas, for viewers: the server's folders left out (a path
    becomes the name of its last part: ``'/srv/app/atlases/m/atlas.sqlite'`` -> ``'atlas.sqlite'``)."""

    def name(path: str) -> str:
        return re.split(r"[/\\]", path.rstrip("/\\"))[-1] or "the folder"

    text = _QUOTED.sub(lambda found: f"'{name(found[2])}'", str(message))
    return _BARE.sub(lambda found: name(found[0]), text)


def inside_atlases(path: Path) -> bool:
    """Whether the folder ``path`` is in the atlases folder itself, not linked there from elsewhere."""
    try:
        return not path.is_symlink() and path.resolve().is_relative_to(vis_core.atlases_dir().resolve())
    except OSError:  # a link loop
        return False


def entry(atlas: vis_core.Atlas | None, layer: str, channel: int) -> tuple[vis_core.atlas.Unit | None, str | None]:
    """One filter's atlas entry, its render and patches decoded, and None; or None and why it cannot
    be shown (a damaged entry, named, or a database another program holds locked); ``(None, None)``
    when the atlas does not hold that filter (yet). Every other filter still reads."""
    if atlas is None:
        return None, None
    try:
        unit = atlas.unit(layer, channel)
        if unit is not None:
            decoded = unit.renders, [example.patch for example in unit.examples]  # decoded here, where it is caught
            del decoded
    except vis_core.AtlasError as exc:
        return None, public(exc)
    return unit, None


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
    unit, problem = entry(find(handle), layer, channel)
    if problem:
        st.warning(escape.markdown(problem))
    if unit is None:
        return
    st.caption(f"What filter {channel} looks for (from the atlas)")
    pictures = [unit.render] + [example.patch for example in unit.examples[:EXAMPLES_BESIDE_A_MAP]]
    captions = ["its feature visualisation"] + [example_caption(e) for e in unit.examples[:EXAMPLES_BESIDE_A_MAP]]
    st.image(pictures, caption=captions, width=96, clamp=True)
