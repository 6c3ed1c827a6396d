"""Safe decoding of user images, and the bundled sample photos.

Everything a person can upload, photograph or pass on the command line comes through
:func:`load_image`, which treats every file as hostile. The rules:

* The format is decided by the file's *content* (magic bytes), never by its name, and only
  :data:`ALLOWED_FORMATS` are decoded. Everything else (PDF, PSD, TIFF, SVG, HTML, zip...)
  is refused before Pillow's plugin machinery sees it.
* The pixel count is checked from the header, before any pixel is decoded, against
  :data:`MAX_PIXELS` (well below Pillow's own decompression-bomb limit), and Pillow's
  ``DecompressionBombWarning`` is turned into an error. The byte size is capped by
  :data:`MAX_BYTES`.
* Truncated or corrupt files raise :class:`~vis_core.errors.ImageError`. Pillow's global
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` is never touched (it would affect every session).
* Valid but unusual images become sensible RGB: EXIF orientation is applied, animations
  give their first frame, transparency is composited on white, 16-bit and float images are
  rescaled (not clipped), CMYK and palette images are converted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import warnings
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from . import arrays
from .errors import ImageError

#: Formats decoded at all, as Pillow names them. Detected from the content, not the name.
ALLOWED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP", "GIF", "BMP")

#: Largest accepted image, in pixels (width x height of the first frame): 32 megapixels,
#: enough for any phone photo and well below Pillow's default bomb limit of ~89 MP.
MAX_PIXELS: int = 32_000_000

#: Largest accepted file, in bytes (the dashboard's upload limit is lower still).
MAX_BYTES: int = 40 * 1024 * 1024

#: Background that transparent pixels are composited onto (white, as a viewer shows them).
BACKGROUND_RGB: tuple[int, int, int] = (255, 255, 255)

_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"BM", 0, "BMP"),
)

# Recognised but refused, so the message can say what the file really is.
_KNOWN_REFUSED: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "a PDF document"),
    (b"8BPS", "a Photoshop (PSD) file"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%!PS", "a PostScript/EPS file"),
    (b"\xc5\xd0\xd3\xc6", "an EPS file"),
    (b"SIMPLE  =", "a FITS file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x00\x00\x01\x00", "an ICO icon"),
)

SourceType = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO


def sniff_format(data: bytes) -> str:
    """Return the Pillow format name of ``data`` judged by its first bytes.

    Raises:
        ImageError: when the content is not one of :data:`ALLOWED_FORMATS`.
    """
    for magic, offset, name in _MAGIC:
        if data[offset : offset + len(magic)] == magic:
            return name
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, what in _KNOWN_REFUSED:
        if data.startswith(magic):
            raise ImageError(f"This file is {what}, not a supported image. {_allowed_hint()}")
    head = data[:512].lstrip().lower()
    if head.startswith((b"<svg", b"<?xml")) or b"<svg" in head:
        raise ImageError(f"SVG and XML files are not supported. {_allowed_hint()}")
    if head.startswith((b"<!doctype", b"<html", b"<")):
        raise ImageError(f"This file is HTML or text, not an image. {_allowed_hint()}")
    raise ImageError(f"This file is not a recognised image. {_allowed_hint()}")


def _allowed_hint() -> str:
    return "Please use " + ", ".join(ALLOWED_FORMATS[:-1]) + f" or {ALLOWED_FORMATS[-1]}."


def _read_bytes(source: SourceType) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ImageError(f"Cannot read image file {str(path)!r}: {exc.strerror or exc}.") from exc
        if not path.is_file():
            raise ImageError(f"{str(path)!r} is not a file.")
        if size > MAX_BYTES:
            raise ImageError(f"The file is {size / 2**20:.1f} MB; the limit is {MAX_BYTES / 2**20:.0f} MB.")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"Cannot read image file {str(path)!r}: {exc.strerror or exc}.") from exc
    elif hasattr(source, "read"):
        try:
            data = source.read(MAX_BYTES + 1)
        except (OSError, ValueError) as exc:
            raise ImageError(f"Cannot read the uploaded file: {exc}.") from exc
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError("The file object must be opened in binary mode.")
        data = bytes(data)
    else:
        raise ImageError(f"Cannot read an image from a {type(source).__name__}; give bytes, a path or a file.")
    if not data:
        raise ImageError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise ImageError(f"The file is larger than the {MAX_BYTES / 2**20:.0f} MB limit.")
    return data


def load_image(source: SourceType) -> Image.Image:
    """Decode an untrusted image into a plain RGB :class:`PIL.Image.Image`.

    Args:
        source: the encoded file as bytes, a filesystem path, or a binary file object.

    Returns:
        A new RGB image (first frame, EXIF orientation applied, transparency on white).

    Raises:
        ImageError: for anything that is not a supported, intact, reasonably sized image.
    """
    data = _read_bytes(source)
    fmt = sniff_format(data)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=[fmt])
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(_too_large_message()) from exc
        except Exception as exc:
            raise ImageError(f"The {fmt} file is corrupt or unreadable ({_reason(exc)}).") from exc
        with image:
            width, height = image.size
            if width < 1 or height < 1:
                raise ImageError("The image has no pixels.")
            if width * height > MAX_PIXELS:
                raise ImageError(_too_large_message(width, height))
            try:
                if getattr(image, "is_animated", False):
                    image.seek(0)
                image.load()
                oriented = _apply_exif_orientation(image)
                rgb = to_rgb(oriented)
            except ImageError:
                raise
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
                raise ImageError(_too_large_message()) from exc
            except MemoryError as exc:
                raise ImageError(_too_large_message(width, height)) from exc
            except Exception as exc:
                raise ImageError(f"The {fmt} file is corrupt or truncated ({_reason(exc)}).") from exc
    if rgb.width * rgb.height > MAX_PIXELS:  # frames larger than the header said
        raise ImageError(_too_large_message(rgb.width, rgb.height))
    return rgb


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:120]


def _too_large_message(width: int | None = None, height: int | None = None) -> str:
    size = f" ({width}x{height} pixels)" if width and height else ""
    return (
        f"The image is too large{size}; the limit is {MAX_PIXELS / 1e6:.0f} megapixels. Please resize it and try again."
    )


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image) or image
    except Exception:  # noqa: BLE001 - a broken EXIF block must not lose the picture
        return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB with a sensible range.

    16-bit and 32-bit integer images are rescaled from their full range (not clipped to
    white); float images are rescaled from [0, 1] when they lie there, else from their own
    min..max; transparency is composited onto :data:`BACKGROUND_RGB`.
    """
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        array = np.asarray(image, dtype=np.float64)
        return Image.fromarray(_rescale_to_uint8(array, mode), mode="L").convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*BACKGROUND_RGB, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _rescale_to_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    array = np.nan_to_num(array, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(array.min()), float(array.max())
    if mode == "F" and low >= 0.0 and high <= 1.0:
        scaled = array
    elif mode != "F" and low >= 0.0 and high <= 65535.0:
        scaled = array / 65535.0
    elif high > low:
        scaled = (array - low) / (high - low)
    else:
        scaled = np.zeros_like(array)
    return arrays.to_uint8(scaled)


def image_digest(image: Image.Image) -> str:
    """A short content hash of an RGB image (size and pixels), for cache keys."""
    digest = hashlib.sha256(f"{image.mode}{image.size}".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()[:20]


#: Sample photos shipped inside scikit-image (``skimage.data``), by the name shown to users.
SAMPLE_IMAGES: Mapping[str, str] = {
    "chelsea (cat)": "chelsea.png",
    "coffee": "coffee.png",
    "astronaut": "astronaut.png",
    "rocket": "rocket.jpg",
    "camera (greyscale)": "camera.png",
}


def sample_names() -> list[str]:
    """Names of the bundled sample photos, in display order."""
    return list(SAMPLE_IMAGES)


@lru_cache(maxsize=len(SAMPLE_IMAGES))
def sample_image(name: str) -> Image.Image:
    """Return one of :data:`SAMPLE_IMAGES` as RGB (read from scikit-image's data folder).

    Accepts the display name (``"chelsea (cat)"``) or the short name (``"chelsea"``).
    The returned image is shared: copy it before drawing on it.
    """
    file_name = SAMPLE_IMAGES.get(name) or {v.split(".")[0]: v for v in SAMPLE_IMAGES.values()}.get(name)
    if file_name is None:
        raise ImageError(f"Unknown sample image {name!r}; choose one of: {', '.join(SAMPLE_IMAGES)}.")
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise ImageError("scikit-image is not installed, so the sample photos are unavailable.")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / file_name
    return load_image(path)
