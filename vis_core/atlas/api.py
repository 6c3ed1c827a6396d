"""Reading an atlas: :func:`open_atlas` gives an :class:`Atlas`; ``atlas.unit(layer, channel)``
a :class:`Unit` with its renders, dataset examples and statistics.

Reading never writes: the database is opened read-only, and SQLite's WAL lets it be read
while a build writes it (every query sees the units committed when it started; a unit is
written whole in one transaction, so a reader never sees half of one). Pictures are decoded
from their PNG blobs when first asked for, so listing a layer's units costs little.
"""

from __future__ import annotations

import operator
import sqlite3
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from ..errors import AtlasUnitError
from ..models import ModelHandle
from . import checks
from .renders import MAX_RENDERS
from .store import BUSY_SECONDS, DATABASE, FORMAT, AtlasError, locked


@dataclass(frozen=True, eq=False)
class Example:
    """One dataset example of a unit.

    Attributes:
        source: the image's path, or the sample photo's name.
        activation: the unit's strongest activation on it.
        box: ``(left, top, right, bottom)`` of the patch in the source image's pixels.
        position: ``(y, x)`` of that activation in the layer's map.
        patch: ``(h, w, 3)`` float32 in [0, 1]: the receptive field of that position, as the
            model saw the image (resized and centre-cropped).
    """

    source: str
    activation: float
    box: tuple[int, int, int, int]
    position: tuple[int, int]
    _png: bytes = field(repr=False)
    _unit: tuple[str, int] = field(default=("?", -1), repr=False)
    _number: int = field(default=1, repr=False)

    @cached_property
    def patch(self) -> np.ndarray:
        """Raises :class:`~vis_core.AtlasUnitError` for a patch whose PNG is damaged."""
        try:
            return checks.png_array(self._png, f"patch {self._number}")
        except ValueError as exc:
            raise AtlasUnitError(*self._unit, str(exc)) from None


@dataclass(frozen=True, eq=False)
class Unit:
    """One channel's atlas entry.

    Attributes:
        layer, channel: which unit.
        stats: ``mean``, ``max``, ``zero_share`` (share of exact zeros), ``fires_on`` (images
            whose maximum is above zero) and ``images`` (usable images of the collection).
        examples: best first, at most one per image.
    """

    layer: str
    channel: int
    stats: dict[str, Any]
    examples: list[Example]
    _render_pngs: tuple[bytes, ...] = field(repr=False)

    @cached_property
    def renders(self) -> tuple[np.ndarray, ...]:
        """The feature visualisations, ``(H, W, 3)`` float32 in [0, 1]; the first is :attr:`render`.
        Raises :class:`~vis_core.AtlasUnitError` for a render whose PNG is damaged."""
        try:
            return tuple(checks.png_array(data, f"render {number}") for number, data in enumerate(self._render_pngs, 1))
        except ValueError as exc:
            raise AtlasUnitError(self.layer, self.channel, str(exc)) from None

    @property
    def render(self) -> np.ndarray:
        return self.renders[0]


class Atlas:
    """An atlas folder, read-only. Safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        folder = path.parent if path.name == DATABASE and not path.is_dir() else path
        db = checks.inside(folder, repr(str(path)))  # before anything is opened
        if not db.is_file():
            raise AtlasError(f"No atlas at {str(path)!r} (no {DATABASE} there).")
        self.path = folder
        self._lock = threading.Lock()
        try:
            uri = f"file:{quote(str(db))}?mode=ro"
            self._db = sqlite3.connect(
                uri, uri=True, check_same_thread=False, timeout=BUSY_SECONDS, isolation_level=None
            )
        except sqlite3.Error as exc:
            raise AtlasError(f"{str(db)!r} is not a readable atlas ({exc}).") from exc
        try:
            meta = self._meta_rows()
        except AtlasError:
            self._db.close()
            raise
        if not meta:
            self._db.close()
            raise AtlasError(f"The atlas at {str(self.path)!r} has no model recorded yet.")
        if meta["format"] != FORMAT:
            self._db.close()
            raise AtlasError(
                f"The atlas at {str(self.path)!r} has format {meta['format']}; this engine reads {FORMAT}."
            )
        self._meta = meta

    def _meta_rows(self) -> dict[str, Any]:
        return checks.meta(self._query("SELECT key, value FROM meta"), repr(str(self.path)))

    # -------------------------------------------------------------- identity
    @property
    def model_hash(self) -> str:
        return self._meta["model"]["hash"]

    @property
    def model_key(self) -> str:
        return self._meta["model"]["key"]

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self._meta["settings"])

    @property
    def collection(self) -> dict[str, Any]:
        """``kind``, ``source``, ``images`` and ``bad_images`` (None until a collection pass ends)."""
        recorded = self._meta_rows().get("collection", self._meta["collection"])
        return {key: recorded.get(key) for key in ("kind", "source", "images", "bad_images")}

    def matches(self, handle: ModelHandle) -> bool:
        """Whether ``handle`` is the model this atlas was built for (same state_dict)."""
        return handle.state_hash == self.model_hash

    # ----------------------------------------------------------------- units
    @property
    def layers(self) -> list[str]:
        """Layers with at least one unit built, in the order builds asked for them."""
        rows = self._query(
            "SELECT layers.layer FROM layers WHERE EXISTS "
            "(SELECT 1 FROM units WHERE units.layer = layers.layer) ORDER BY layers.position"
        )
        return [row[0] for row in rows if checks.is_text(row[0], 400)]  # (a damaged row names no layer)

    def channels(self, layer: str) -> list[int]:
        """Channels of ``layer`` built so far, ascending (rows that name no channel are left out)."""
        if not checks.is_text(layer, 400):
            return []
        rows = self._query("SELECT channel FROM units WHERE layer = ? ORDER BY channel", (layer,))
        return [row[0] for row in rows if checks.is_int(row[0]) and row[0] >= 0]

    def planned(self, layer: str) -> int | None:
        """How many channels a build of ``layer`` makes (None if no build asked for it, or its row is damaged)."""
        if not checks.is_text(layer, 400):
            return None
        rows = self._query("SELECT channels FROM layers WHERE layer = ?", (layer,))
        return rows[0][0] if rows and checks.is_int(rows[0][0]) and rows[0][0] >= 0 else None

    def unit(self, layer: str, channel: int) -> Unit | None:
        """The entry of ``layer``'s ``channel``, or None when it is not built (yet).

        Every part is checked before it is returned (its examples and statistics, and each
        picture's PNG header against the atlas's render size, before anything is decoded).

        Raises:
            AtlasUnitError: the entry is damaged (it names the unit; every other unit still reads).
            AtlasError: the database cannot be read (locked by another program, damaged).
        """
        try:
            channel = operator.index(channel)  # a numpy integer too, never a bool or a float
        except TypeError:
            return None
        if not checks.is_text(layer, 400) or isinstance(channel, bool) or not 0 <= channel < 2**62:
            return None
        try:
            with self._lock:
                self._db.execute("BEGIN")
                try:
                    row = self._db.execute(
                        "SELECT examples, stats FROM units WHERE layer = ? AND channel = ?", (layer, channel)
                    ).fetchone()
                    pictures = self._db.execute(
                        "SELECT kind, position, png FROM pictures WHERE layer = ? AND channel = ? "
                        "ORDER BY kind, position",
                        (layer, channel),
                    ).fetchall()
                finally:
                    self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise locked(exc, repr(str(self.path))) or AtlasUnitError(
                layer, channel, f"its rows cannot be read ({exc})"
            ) from None
        if row is None:
            return None
        try:
            return self._unit(layer, channel, row, pictures)
        except ValueError as exc:
            raise AtlasUnitError(layer, channel, str(exc)) from None

    def _unit(self, layer: str, channel: int, row: tuple, pictures: list[tuple]) -> Unit:
        renders = [png for kind, _, png in pictures if kind == "render"]
        patches = [png for kind, _, png in pictures if kind == "patch"]
        for kind, found in (("render", renders), ("patch", patches)):
            positions = [position for k, position, _ in pictures if k == kind]
            if positions != list(range(len(found))):
                raise ValueError(f"its {kind} pictures are not numbered 0, 1, 2...")
        if len(pictures) != len(renders) + len(patches):
            raise ValueError("it holds pictures of an unknown kind")
        if not 1 <= len(renders) <= MAX_RENDERS:
            raise ValueError("it has no render" if not renders else f"it has {len(renders)} renders")
        size = self._meta["settings"]["size"]
        for number, data in enumerate(renders, 1):
            checks.check_png(data, f"render {number}", size=(size, size))
        for number, data in enumerate(patches, 1):
            checks.check_png(data, f"patch {number}")
        items = checks.examples(row[0], len(patches))
        stats = checks.stats(row[1])
        where = (layer, channel)
        examples = [
            Example(
                item["source"],
                float(item["activation"]),
                tuple(item["box"]),
                tuple(item["position"]),
                bytes(png),
                where,
                number,
            )
            for number, (item, png) in enumerate(zip(items, patches), 1)
        ]
        return Unit(layer, channel, stats, examples, tuple(bytes(png) for png in renders))

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        try:
            with self._lock:
                return self._db.execute(sql, parameters).fetchall()
        except sqlite3.Error as exc:
            raise locked(exc, repr(str(self.path))) or AtlasError(
                f"The atlas at {str(self.path)!r} cannot be read ({exc})."
            ) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Atlas:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Atlas({str(self.path)!r}, model={self.model_key!r}, layers={self.layers})"


def open_atlas(path: str | Path) -> Atlas:
    """Open the atlas in folder ``path`` for reading (also while a build writes it)."""
    return Atlas(path)
