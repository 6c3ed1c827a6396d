"""Reading an atlas: :func:`open_atlas` gives an :class:`Atlas`; ``atlas.unit(layer, channel)``
a :class:`Unit` with its renders, dataset examples and statistics.

Reading never writes: the database is opened read-only, and SQLite's WAL lets it be read
while a build writes it (every query sees the units committed when it started; a unit is
written whole in one transaction, so a reader never sees half of one). Pictures are decoded
from their PNG blobs when first asked for, so listing a layer's units costs little.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from ..models import ModelHandle
from .store import DATABASE, AtlasError, png_array


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

    @cached_property
    def patch(self) -> np.ndarray:
        return png_array(self._png)


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
        """The feature visualisations, ``(H, W, 3)`` float32 in [0, 1]; the first is :attr:`render`."""
        return tuple(png_array(data) for data in self._render_pngs)

    @property
    def render(self) -> np.ndarray:
        return self.renders[0]


class Atlas:
    """An atlas folder, read-only. Safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        db = path if path.is_file() else path / DATABASE
        if not db.is_file():
            raise AtlasError(f"No atlas at {str(path)!r} (no {DATABASE} there).")
        self.path = db.parent
        self._lock = threading.Lock()
        try:
            uri = f"file:{quote(str(db))}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30, isolation_level=None)
            meta = {key: json.loads(value) for key, value in self._db.execute("SELECT key, value FROM meta")}
        except sqlite3.Error as exc:
            raise AtlasError(f"{str(db)!r} is not a readable atlas ({exc}).") from exc
        if not meta:
            raise AtlasError(f"The atlas at {str(self.path)!r} has no model recorded yet.")
        self._meta = meta

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
        found = self._query("SELECT value FROM meta WHERE key = 'collection'")
        recorded = json.loads(found[0][0])
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
        return [row[0] for row in rows]

    def channels(self, layer: str) -> list[int]:
        """Channels of ``layer`` built so far, ascending."""
        return [row[0] for row in self._query("SELECT channel FROM units WHERE layer = ? ORDER BY channel", (layer,))]

    def planned(self, layer: str) -> int | None:
        """How many channels a build of ``layer`` makes (None if no build asked for it)."""
        rows = self._query("SELECT channels FROM layers WHERE layer = ?", (layer,))
        return int(rows[0][0]) if rows else None

    def unit(self, layer: str, channel: int) -> Unit | None:
        """The entry of ``layer``'s ``channel``, or None when it is not built (yet)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                row = self._db.execute(
                    "SELECT examples, stats FROM units WHERE layer = ? AND channel = ?", (layer, int(channel))
                ).fetchone()
                pictures = self._db.execute(
                    "SELECT kind, position, png FROM pictures WHERE layer = ? AND channel = ? ORDER BY kind, position",
                    (layer, int(channel)),
                ).fetchall()
            finally:
                self._db.execute("COMMIT")
        if row is None:
            return None
        renders = tuple(bytes(png) for kind, _, png in pictures if kind == "render")
        patches = [bytes(png) for kind, _, png in pictures if kind == "patch"]
        examples = [
            Example(item["source"], float(item["activation"]), tuple(item["box"]), tuple(item["position"]), png)
            for item, png in zip(json.loads(row[0]), patches)
        ]
        return Unit(layer, int(channel), json.loads(row[1]), examples, renders)

    def _query(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

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
