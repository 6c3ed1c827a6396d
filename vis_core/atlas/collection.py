"""Image collections an atlas is built over: the bundled sample photos, a folder, or Imagenette.

A collection is an ordered list of *references* (a file's absolute path, or ``sample:NAME``),
fixed before the pass starts: an image's index in it is its identity in the store, so a
resumed build and every executor see the same images in the same batches. Files are decoded
only during the pass, each through :func:`vis_core.load_image` (content-sniffed, size-capped);
a file it refuses is skipped and counted, never fatal.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ..datasets import data_root
from ..errors import ImageError, ParameterError, VisCoreError
from ..images import load_image, sample_image, sample_names

#: Most files a folder collection may list (a typo'd ``/`` must not walk the whole disk).
MAX_FILES = 200_000
#: Imagenette's validation split at 160 px: 3,925 photos of 10 ImageNet classes (94 MB).
IMAGENETTE = {"split": "val", "size": "160px"}
SAMPLE_PREFIX = "sample:"


class CollectionError(VisCoreError, ValueError):
    """An image collection cannot be listed or obtained (e.g. a download without a network)."""


@dataclass(frozen=True)
class Collection:
    """An ordered list of image references.

    Attributes:
        kind: ``sample``, ``folder`` or ``imagenette``.
        source: what the caller named (``sample``, the folder's absolute path, ``imagenette``).
        refs: absolute file paths, or ``sample:NAME``.
    """

    kind: str
    source: str
    refs: tuple[str, ...]

    @property
    def fingerprint(self) -> str:
        """A digest of the list: two builds into one atlas must use the same images."""
        return hashlib.sha256("\n".join(self.refs).encode()).hexdigest()[:16]

    def describe(self) -> dict:
        """The collection as the store records it (``bad_images`` is filled in by the pass)."""
        return {"kind": self.kind, "source": self.source, "files": len(self.refs), "fingerprint": self.fingerprint}


def resolve(images: str | os.PathLike) -> Collection:
    """The collection ``images`` names: ``"sample"``, ``"imagenette"`` or a folder."""
    text = os.fspath(images)
    if text == "sample":
        return Collection("sample", "sample", tuple(SAMPLE_PREFIX + name for name in _short_sample_names()))
    if text == "imagenette":
        return _imagenette()
    folder = Path(text).expanduser()
    if not folder.is_dir():
        raise ParameterError(f"--images must be 'sample', 'imagenette' or a folder; {text!r} is not a folder.")
    refs, empty = [], 0
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs.sort()
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            try:
                resolved = path.resolve()
                empty += resolved.is_file() and resolved.stat().st_size == 0
            except RuntimeError:  # Python 3.11: a link that leads back to itself
                raise ParameterError(
                    f"{str(path)!r} is a symbolic link that loops; remove it, or choose another folder."
                ) from None
            except OSError:  # gone, or unreadable: the loader counts it as a bad file
                pass
            refs.append(str(resolved))
            if len(refs) > MAX_FILES:
                raise ParameterError(f"{text!r} holds more than {MAX_FILES:,} files; choose a smaller folder.")
    if not refs:
        raise ParameterError(f"The folder {text!r} holds no files.")
    if empty == len(refs):
        raise ParameterError(f"Every one of the {len(refs):,} files in {text!r} is empty; choose a folder of images.")
    return Collection("folder", str(folder.resolve()), tuple(refs))


def _short_sample_names() -> list[str]:
    """The bundled photos by their short names (``chelsea``, ``coffee``...)."""
    return [name.split(" ")[0] for name in sample_names()]


def _imagenette() -> Collection:
    import torchvision

    root = data_root() / "imagenette"
    try:
        root.mkdir(parents=True, exist_ok=True)
        try:  # already downloaded: no network needed
            dataset = torchvision.datasets.Imagenette(str(root), download=False, **IMAGENETTE)
        except RuntimeError:
            dataset = torchvision.datasets.Imagenette(str(root), download=True, **IMAGENETTE)
    except Exception as exc:
        raise CollectionError(
            f"Imagenette could not be downloaded ({type(exc).__name__}: {' '.join(str(exc).split())[:100]}). "
            "Offline, use --images sample or a folder of your own photos."
        ) from exc
    refs = tuple(str(Path(path).resolve()) for path, _ in dataset._samples)
    return Collection("imagenette", "imagenette", refs)


def load_ref(ref: str) -> Image.Image:
    """Decode one reference (raises :class:`~vis_core.ImageError` for a bad file)."""
    if ref.startswith(SAMPLE_PREFIX):
        return sample_image(ref[len(SAMPLE_PREFIX) :])
    return load_image(ref)


def try_load(ref: str) -> Image.Image | None:
    """:func:`load_ref`, or None for a file the safe loader refuses."""
    try:
        return load_ref(ref)
    except ImageError:
        return None


def source_name(ref: str) -> str:
    """What an example's ``source`` says: the file's path, or the sample's name."""
    return ref[len(SAMPLE_PREFIX) :] if ref.startswith(SAMPLE_PREFIX) else ref
