"""How much an atlas built from the dashboard may write, checked before the build starts.

As for the training lab's runs (:mod:`vis_core.disk_budget`), whatever a viewer can make the
server write has a cap per item and in total: :data:`MAX_ATLAS_BYTES` for one model's atlas,
:data:`MAX_ATLASES_BYTES` for the whole atlases folder. The estimate is an upper bound: each unit
keeps its renders (RGB PNGs of the render size) and at most one photo patch per photo, each its
receptive field at the model's input size, counted uncompressed (a built atlas measures about half
of it: features.18 of MobileNetV2 from the five sample photos wrote 349 KB a unit, estimated 753).
The command line and the Python API have no cap: they build for whoever runs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..disk_budget import folder_bytes
from ..errors import ParameterError
from ..models import ModelHandle

#: Most bytes one model's atlas may hold when built from the dashboard, and all atlases together.
MAX_ATLAS_BYTES = 2**30
MAX_ATLASES_BYTES = 4 * 2**30
#: Bytes a unit keeps beside its pictures (its statistics and rows), generously.
UNIT_OVERHEAD = 4096
#: PNG's own bytes around the pixels (signature, header, end), per picture.
PNG_OVERHEAD = 64
#: The database's and the folder's own bytes (its first pages, its settings, its lock).
FOLDER_OVERHEAD = 64 * 1024

_FIELDS: dict[tuple[str, str], int] = {}


def patch_side(handle: ModelHandle, layer: str) -> int:
    """The largest receptive field of ``layer`` in pixels of the model's input (computed once per
    model and layer: it takes a batched backward pass, 1-3 s on a CPU)."""
    key = (handle.key, layer)
    if key not in _FIELDS:
        from .examples import layer_fields

        rows, cols = layer_fields(handle, layer)
        _FIELDS[key] = int(max((rows[:, 1] - rows[:, 0]).max(), (cols[:, 1] - cols[:, 0]).max()))
    return _FIELDS[key]


@dataclass(frozen=True)
class AtlasEstimate:
    """At most how many bytes a build writes, and what the folders hold already."""

    bytes: int
    atlas_bytes: int
    all_bytes: int

    @property
    def text(self) -> str:
        return f"at most {self.bytes / 2**20:,.0f} MB" if self.bytes >= 2**20 else "under 1 MB"


def estimate(
    handle: ModelHandle, layer: str, units: int, *, size: int, renders: int, top_k: int, images: int, out: Path
) -> AtlasEstimate:
    """What building ``units`` filters of ``layer`` into the atlas folder ``out`` writes, at most."""
    side = patch_side(handle, layer)
    patches = min(top_k, max(1, images))
    per_unit = renders * (size * size * 3 + PNG_OVERHEAD) + patches * (side * side * 3 + PNG_OVERHEAD) + UNIT_OVERHEAD
    held = folder_bytes(out)
    return AtlasEstimate(units * per_unit + (0 if held else FOLDER_OVERHEAD), held, folder_bytes(Path(out).parent))


def check(found: AtlasEstimate) -> None:
    """Refuse a build past :data:`MAX_ATLAS_BYTES` for its atlas or :data:`MAX_ATLASES_BYTES` for
    every atlas, with what it would write; the message says what to change."""
    mb = found.bytes / 2**20
    if found.atlas_bytes + found.bytes > MAX_ATLAS_BYTES:
        raise ParameterError(
            f"This build could write up to {mb:,.0f} MB; with the {found.atlas_bytes / 2**20:,.0f} MB this model's "
            f"atlas holds, that passes the limit per atlas ({MAX_ATLAS_BYTES / 2**30:g} GB). Use fewer photo "
            "patches per filter or smaller pictures, or build from the command line, which has no limit."
        )
    if found.all_bytes + found.bytes > MAX_ATLASES_BYTES:
        raise ParameterError(
            f"The atlases folder holds {found.all_bytes / 2**20:,.0f} MB and this build could add {mb:,.0f} MB, past "
            f"the limit for all atlases ({MAX_ATLASES_BYTES / 2**30:g} GB). Ask whoever runs this server to remove "
            "atlases no longer needed."
        )
