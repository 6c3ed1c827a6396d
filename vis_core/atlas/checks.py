"""What an atlas reads back is checked before it is used (THREATS.md, "Stored records read back").

An atlas folder may be damaged (a disk error, a killed copy) or crafted (a 140 KB PNG can declare
12000x12000 pixels: 1.7 GB as the float array a page draws). So every value read is checked for
what the engine wrote: the ``meta`` rows' shapes (:func:`meta`), a unit's examples and statistics
(:func:`examples`, :func:`stats`), and each picture's PNG header (format, mode, declared size)
before a byte of it is decoded (:func:`png_header`, :func:`png_array`). A problem is a plain
sentence (``ValueError`` here); the readers turn it into :class:`~vis_core.errors.AtlasError`
(the folder) or :class:`~vis_core.errors.AtlasUnitError` (one unit, the others still read).
"""

from __future__ import annotations

import io
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import AtlasError

#: The atlas's format: what this engine writes and reads.
FORMAT = 1
#: The largest side of an example patch (a receptive field of the model's input; the largest
#: render is 1024 px, and no model we show takes a larger input).
MAX_PATCH_SIDE = 1024
#: The longest text a record holds (an example's source is a file's path).
MAX_TEXT = 4096
#: The files SQLite opens beside the database.
DATABASE_FILES = ("", "-wal", "-shm", "-journal")
_SETTINGS = ("steps", "size", "top_k", "renders", "seed")
_STATS = {"mean": float, "max": float, "zero_share": float, "fires_on": int, "images": int}


def is_int(value: object) -> bool:
    """A whole number that is not a bool (JSON's ``true`` is not the version 1)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    return (is_int(value) or isinstance(value, float)) and math.isfinite(value)


def is_text(value: object, limit: int = MAX_TEXT) -> bool:
    """A string of valid Unicode (no lone surrogate such as ``\\ud800``) of at most ``limit`` characters."""
    if not isinstance(value, str) or len(value) > limit:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_value(text: object, what: str) -> Any:
    """``text`` parsed as JSON (no NaN or Infinity), or ValueError naming ``what``."""

    def constant(name: str) -> None:
        raise ValueError(name)

    if not isinstance(text, str | bytes):
        raise ValueError(f"{what} are not JSON text")
    try:
        return json.loads(text, parse_constant=constant)
    except (ValueError, RecursionError):
        raise ValueError(f"{what} are not JSON") from None


# ---------------------------------------------------------------------------------- meta
def meta(rows: list[tuple[Any, Any]], where: str) -> dict[str, Any]:
    """The ``meta`` table's rows as a dict, every row checked; ``{}`` for an empty table.

    Raises:
        AtlasError: a row that is not what a build writes, naming it.
    """
    found: dict[str, Any] = {}
    for key, value in rows:
        if not is_text(key, 100):
            raise AtlasError(f"The atlas at {where} is damaged: a meta row has no proper name.")
        try:
            found[key] = json_value(value, f"meta {key!r}")
        except ValueError as exc:
            raise AtlasError(f"The atlas at {where} is damaged: {exc}.") from None
    if not found:
        return found
    problem = _meta_problem(found)
    if problem:
        raise AtlasError(f"The atlas at {where} is damaged: {problem}. Build it again into another folder.")
    return found


def _meta_problem(found: dict[str, Any]) -> str | None:
    missing = [key for key in ("format", "model", "settings", "collection") if key not in found]
    if missing:
        return f"meta has no {', '.join(missing)}"
    if not is_int(found["format"]):
        return f"meta 'format' is {str(found['format'])[:20]!r}, not a whole number"
    model = found["model"]
    if not isinstance(model, dict) or not all(is_text(model.get(key), 400) for key in ("hash", "key", "name")):
        return "meta 'model' is not a model's hash, key and name"
    settings = found["settings"]
    if not isinstance(settings, dict) or not all(is_int(settings.get(key)) for key in _SETTINGS):
        return f"meta 'settings' is not whole numbers for {', '.join(_SETTINGS)}"
    collection = found["collection"]
    if not isinstance(collection, dict):
        return "meta 'collection' is not an image collection"
    if not all(is_text(collection.get(key)) for key in ("kind", "source", "fingerprint")):
        return "meta 'collection' has no kind, source and fingerprint"
    if not all(collection.get(key) is None or is_int(collection[key]) for key in ("files", "images", "bad_images")):
        return "meta 'collection' counts are not whole numbers"
    return None


# ------------------------------------------------------------------------------ the rows
def examples(text: object, patches: int) -> list[dict[str, Any]]:
    """A unit's examples (JSON text) checked: a list of ``patches`` objects, each with a
    ``source`` (text), a finite ``activation``, a ``box`` of 4 and a ``position`` of 2 whole numbers."""
    items = json_value(text, "its examples")
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError("its examples are not a list of examples")
    if len(items) != patches:
        raise ValueError(f"it has {len(items)} examples for {patches} patches")
    for number, item in enumerate(items, 1):
        if not is_text(item.get("source")):
            raise ValueError(f"example {number} has no source that is valid text")
        if not is_number(item.get("activation")):
            raise ValueError(f"example {number} has no finite activation")
        for name, length in (("box", 4), ("position", 2)):
            value = item.get(name)
            if not isinstance(value, list) or len(value) != length or not all(is_int(v) for v in value):
                raise ValueError(f"example {number} has no {name} of {length} whole numbers")
    return items


def stats(text: object) -> dict[str, Any]:
    """A unit's statistics (JSON text) checked: a dict with a finite ``mean``, ``max`` and
    ``zero_share`` and whole ``fires_on`` and ``images``."""
    found = json_value(text, "its statistics")
    if not isinstance(found, dict) or not set(_STATS) <= set(found):
        raise ValueError(f"its statistics are not an object with {', '.join(_STATS)}")
    for name, kind in _STATS.items():
        value = found[name]
        if not (is_int(value) and value >= 0 if kind is int else is_number(value)):
            raise ValueError(f"its statistic {name!r} is not a {'count' if kind is int else 'finite number'}")
    return found


# ------------------------------------------------------------------------------ pictures
def png_header(data: object, what: str) -> tuple[tuple[int, int], str]:
    """The declared ``(width, height)`` and mode of a PNG blob, read from its header only."""
    if not isinstance(data, bytes | bytearray | memoryview) or not data:
        raise ValueError(f"its {what} is not a PNG")
    try:
        with warnings.catch_warnings():  # the size is checked by the caller, before decoding
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(bytes(data)), formats=["PNG"]) as image:
                return image.size, image.mode
    except Image.DecompressionBombError as exc:
        raise ValueError(f"its {what} declares too many pixels ({exc})") from None
    except Exception:  # noqa: BLE001 - Pillow raises many kinds for bytes that are not a PNG
        raise ValueError(f"its {what} is not a PNG") from None


def check_png(data: object, what: str, *, size: tuple[int, int] | None = None, max_side: int = MAX_PATCH_SIDE) -> None:
    """Refuse a blob that is not an RGB PNG of ``size`` (or at most ``max_side`` a side), from its header."""
    (width, height), mode = png_header(data, what)
    if size is not None and (width, height) != size:
        raise ValueError(f"its {what} declares {width}x{height} pixels; this atlas renders {size[0]}x{size[1]}")
    if size is None and not (1 <= width <= max_side and 1 <= height <= max_side):
        raise ValueError(f"its {what} declares {width}x{height} pixels; at most {max_side} a side are kept")
    if mode != "RGB":
        raise ValueError(f"its {what} is a PNG of mode {mode}, not the RGB pictures an atlas holds")


def png_array(data: bytes, what: str = "picture") -> np.ndarray:
    """A checked PNG blob (:func:`check_png`) decoded as an ``(H, W, 3)`` float32 array in [0, 1]."""
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            expected = image.size
            picture = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    except Exception:  # noqa: BLE001 - a header that is fine over a damaged stream: many kinds
        raise ValueError(f"its {what} is a damaged PNG") from None
    if picture.shape != (expected[1], expected[0], 3):
        raise ValueError(f"its {what} decoded to {picture.shape}, not its declared size")
    return picture


# ----------------------------------------------------------------------------- the folder
def inside(folder: Path, where: str) -> Path:
    """``folder``'s database, refused when it or a file SQLite opens beside it is a symbolic link
    or resolves outside the folder (nothing outside an atlas folder is ever opened)."""
    database = folder / "atlas.sqlite"
    resolved_folder = folder.resolve()
    for suffix in DATABASE_FILES:
        path = folder / f"atlas.sqlite{suffix}"
        if path.is_symlink() or (path.exists() and path.resolve().parent != resolved_folder):
            raise AtlasError(
                f"{path.name} in the atlas at {where} is a symbolic link; an atlas is read only from files inside "
                "its own folder. Copy the atlas there instead of linking it."
            )
    return database
