"""The atlas on disk: one folder, one SQLite database in WAL mode (``atlas.sqlite``).

Tables::

    meta     key -> JSON value: format, model (hash, key, name), settings, collection
    layers   each layer a build asked for, with its channel count, in the order asked
    passes   the collection pass per layer: the next batch to read and the running state
             (top-k candidates and sums, an npz blob), committed after every batch
    units    one row per finished unit: its examples (JSON) and statistics (JSON)
    pictures the unit's renders and example patches as PNG blobs

Every write is one transaction, so a build killed at any moment (SIGKILL included) leaves
either a unit whole or not at all, and the pass loses at most the batch in flight. A unit's
pictures are written in the same transaction as its ``units`` row and never change after, so a
reader (WAL: readers never wait for the writer) that finds the row finds all of it.

A build records the model's state_dict hash, the settings and the image collection the first
time; a later build into the same folder with anything else is refused with what differs.
One build at a time writes a folder (an exclusive lock on ``build.lock``).
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import AtlasError
from . import checks

try:  # POSIX: one build per folder at a time
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

FORMAT = checks.FORMAT
DATABASE = "atlas.sqlite"
LOCK = "build.lock"
#: Seconds SQLite waits for a database another program has locked before the atlas says so.
BUSY_SECONDS = 1.5

__all__ = ["AtlasError", "Store", "UnitEntry", "building", "database", "png_array", "png_bytes"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS layers (layer TEXT PRIMARY KEY, channels INTEGER NOT NULL, position INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS passes (
    layer TEXT PRIMARY KEY, next_batch INTEGER NOT NULL, done INTEGER NOT NULL, state BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS units (
    layer TEXT NOT NULL, channel INTEGER NOT NULL, examples TEXT NOT NULL, stats TEXT NOT NULL,
    PRIMARY KEY (layer, channel));
CREATE TABLE IF NOT EXISTS pictures (
    layer TEXT NOT NULL, channel INTEGER NOT NULL, kind TEXT NOT NULL, position INTEGER NOT NULL, png BLOB NOT NULL,
    PRIMARY KEY (layer, channel, kind, position));
"""


@dataclass(frozen=True)
class UnitEntry:
    """What one finished unit writes: renders and patches as uint8 ``(H, W, 3)`` arrays."""

    layer: str
    channel: int
    renders: Sequence[np.ndarray]
    examples: Sequence[dict[str, Any]]
    patches: Sequence[np.ndarray]
    stats: dict[str, Any]


def database(folder: str | Path) -> Path:
    return Path(folder) / DATABASE


def png_bytes(picture: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture, dtype=np.uint8)).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def png_array(data: bytes) -> np.ndarray:
    """A PNG blob as an ``(H, W, 3)`` float32 array in [0, 1] (raises ValueError for a damaged one;
    readers check its header first: :func:`vis_core.atlas.checks.check_png`)."""
    return checks.png_array(data)


def locked(exc: sqlite3.Error, where: str) -> AtlasError | None:
    """The error to raise for a database another program holds locked, else None."""
    if "locked" in str(exc) or "busy" in str(exc):
        return AtlasError(
            f"The atlas at {where} is locked by another program (still after {BUSY_SECONDS:g} s); "
            "try again once it is done."
        )
    return None


class Store:
    """The writer's side of an atlas folder (see the module docstring)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.claimed = False  # whether this store recorded the folder's atlas (see claim)
        path = checks.inside(self.folder, str(self.folder))
        try:
            self.connection = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
        except sqlite3.Error as exc:
            raise AtlasError(f"Cannot open the atlas database in {str(self.folder)!r} ({exc}).") from exc
        try:
            self.connection.execute("PRAGMA journal_mode=WAL")
            self.connection.execute("PRAGMA synchronous=NORMAL")  # in WAL: durable across a killed process
            self.connection.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self.connection.close()
            raise locked(exc, str(self.folder)) or AtlasError(
                f"{str(path)!r} is not a usable atlas database ({exc})."
            ) from exc

    # ------------------------------------------------------------ transactions
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.connection.execute("BEGIN IMMEDIATE")
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self.connection.execute("COMMIT")

    def close(self) -> None:
        self.connection.close()

    # -------------------------------------------------------------------- meta
    def meta(self) -> dict[str, Any]:
        return checks.meta(self.connection.execute("SELECT key, value FROM meta").fetchall(), str(self.folder))

    def claim(self, model: dict[str, str], settings: dict[str, Any], collection: dict[str, Any]) -> bool:
        """Record who builds this atlas, or refuse a build that does not match what is recorded.
        Returns True when this call recorded it (the folder held no atlas yet)."""
        try:
            with self.transaction() as db:
                found = checks.meta(db.execute("SELECT key, value FROM meta").fetchall(), str(self.folder))
                if not found:
                    rows = {"format": FORMAT, "model": model, "settings": settings, "collection": collection}
                    db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in rows.items()])
                    self.claimed = True
                    return True
        except sqlite3.Error as exc:
            raise locked(exc, str(self.folder)) or AtlasError(
                f"The atlas at {self.folder} cannot be read ({exc})."
            ) from None
        where = str(self.folder)
        if found.get("format") != FORMAT:
            raise AtlasError(f"The atlas at {where} has format {found.get('format')}; this engine writes {FORMAT}.")
        if found["model"]["hash"] != model["hash"]:
            raise AtlasError(
                f"The atlas at {where} was built for another model ({found['model']['key']}, weights hash "
                f"{found['model']['hash'][:12]}); this one is {model['key']} ({model['hash'][:12]}). "
                "Choose another folder for this model's atlas."
            )
        if found["settings"] != settings:
            differ = ", ".join(
                f"{key} {found['settings'].get(key)} (asked {settings.get(key)})"
                for key in sorted(set(found["settings"]) | set(settings))
                if found["settings"].get(key) != settings.get(key)
            )
            raise AtlasError(
                f"The atlas at {where} was built with other settings: {differ}. "
                "Build with the recorded settings, or into another folder."
            )
        recorded = found["collection"]
        if (recorded["kind"], recorded["source"], recorded["fingerprint"]) != (
            collection["kind"],
            collection["source"],
            collection["fingerprint"],
        ):
            raise AtlasError(
                f"The atlas at {where} was built from another image collection ({recorded['kind']} "
                f"{recorded['source']!r}, {recorded['files']} files); this build names {collection['kind']} "
                f"{collection['source']!r} ({collection['files']} files). Use the same images, or another folder."
            )
        return False

    def has_units(self) -> bool:
        return self.connection.execute("SELECT 1 FROM units LIMIT 1").fetchone() is not None

    def forget(self) -> None:
        """Undo a claim: every row of the folder's atlas goes (for a build that failed before its
        first unit, so that it leaves nothing to refuse the next build with)."""
        with self.transaction() as db:
            for table in ("pictures", "units", "passes", "layers", "meta"):
                db.execute(f"DELETE FROM {table}")  # the table names are constants

    def record_collection_counts(self, images: int, bad_images: int) -> None:
        with self.transaction() as db:
            (value,) = db.execute("SELECT value FROM meta WHERE key = 'collection'").fetchone()
            collection = {**json.loads(value), "images": int(images), "bad_images": int(bad_images)}
            db.execute("UPDATE meta SET value = ? WHERE key = 'collection'", (json.dumps(collection),))

    # ------------------------------------------------------------------ layers
    def add_layers(self, channels: dict[str, int]) -> None:
        with self.transaction() as db:
            (count,) = db.execute("SELECT COUNT(*) FROM layers").fetchone()
            for layer, number in channels.items():
                if db.execute("SELECT 1 FROM layers WHERE layer = ?", (layer,)).fetchone() is None:
                    db.execute("INSERT INTO layers VALUES (?, ?, ?)", (layer, int(number), count))
                    count += 1

    def built(self, layer: str) -> set[int]:
        return {row[0] for row in self.connection.execute("SELECT channel FROM units WHERE layer = ?", (layer,))}

    # ------------------------------------------------------------------ passes
    def pass_progress(self, layer: str) -> tuple[int, bool, bytes | None]:
        """``(next_batch, done, state)`` of ``layer``'s collection pass (``(0, False, None)`` before it)."""
        row = self.connection.execute("SELECT next_batch, done, state FROM passes WHERE layer = ?", (layer,)).fetchone()
        return (0, False, None) if row is None else (int(row[0]), bool(row[1]), bytes(row[2]))

    def save_passes(self, states: Iterable[tuple[str, int, bool, bytes]]) -> None:
        """Each ``(layer, next_batch, done, state)`` in one transaction."""
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO passes VALUES (?, ?, ?, ?)", list(states))

    # ------------------------------------------------------------------- units
    def write_units(self, entries: Sequence[UnitEntry]) -> None:
        """Finished units, in one transaction (pictures first, the ``units`` row last)."""
        rows = []
        for entry in entries:
            rows += [(entry.layer, entry.channel, "render", i, png_bytes(p)) for i, p in enumerate(entry.renders)]
            rows += [(entry.layer, entry.channel, "patch", i, png_bytes(p)) for i, p in enumerate(entry.patches)]
        with self.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO pictures VALUES (?, ?, ?, ?, ?)", rows)
            db.executemany(
                "INSERT OR REPLACE INTO units VALUES (?, ?, ?, ?)",
                [(e.layer, e.channel, json.dumps(list(e.examples)), json.dumps(e.stats)) for e in entries],
            )


@contextmanager
def building(folder: str | Path) -> Iterator[Store]:
    """The store of ``folder`` (created if needed), locked for this build until the block ends.

    A block that fails (any error but :class:`~vis_core.optim.Stopped`, whose progress a later
    build resumes) before its first unit, in a folder whose atlas it recorded itself, leaves the
    folder as it was: the rows it wrote go, and so do the files and folders it created."""
    folder = Path(folder)
    made = [path for path in (folder, *folder.parents) if not path.exists()]
    ours = [folder / LOCK] + [folder / f"{DATABASE}{suffix}" for suffix in checks.DATABASE_FILES]
    existed = {path for path in ours if path.exists() or path.is_symlink()}
    if (folder / LOCK).is_symlink():
        raise AtlasError(f"{LOCK} in the atlas folder {str(folder)!r} is a symbolic link; remove it first.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = open(folder / LOCK, "a+b")  # noqa: SIM115 - held for the whole block
    except OSError as exc:
        raise AtlasError(f"Cannot write the atlas folder {str(folder)!r}: {exc.strerror or exc}.") from exc
    undo = False
    try:
        if fcntl is not None:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise AtlasError(
                    f"Another build is writing the atlas at {folder}; wait for it, or stop it first."
                ) from None
        store = Store(folder)
        try:
            yield store
        except Exception as exc:
            from ..optim import Stopped

            if store.claimed and not isinstance(exc, Stopped) and not store.has_units():
                store.forget()
                undo = True
            raise
        finally:
            store.close()
    finally:
        lock.close()  # releases the lock
        if undo:
            for path in ours:
                if path not in existed:
                    path.unlink(missing_ok=True)
            for path in made:
                try:
                    path.rmdir()
                except OSError:  # something else was put there meanwhile
                    break
