"""The atlas: every unit of a model's layers at a glance, precomputed (issue #13).

For each channel of each chosen layer: its feature visualisation (batched many units at a
time through the optimisation core), its top-k dataset examples (image patches cropped to the
unit's receptive field, at most one per image) and its statistics over an image collection.
Built locally or on Ray, into one folder per model; resumable; readable while it is built::

    summary = vis_core.build_atlas(handle, layers=["features.10"], images="sample", out=vis_core.atlas_path(handle))
    atlas = vis_core.open_atlas(vis_core.atlas_path(handle))
    unit = atlas.unit("features.10", 5)   # .render, .renders, .examples, .stats

Modules: :mod:`.collection` (image collections), :mod:`.examples` (the collection pass and
patches), :mod:`.renders` (chunked, seeded renders), :mod:`.store` (SQLite), :mod:`.executors`
and :mod:`.ray_executor` (where the work runs), :mod:`.build` (orchestration), :mod:`.api`
(reading).
"""

from ..errors import AtlasError, AtlasUnitError
from .api import Atlas, Example, Unit, open_atlas
from .build import AtlasSummary, atlas_path, atlases_dir, build_atlas
from .collection import CollectionError

__all__ = [
    "Atlas",
    "AtlasError",
    "AtlasSummary",
    "AtlasUnitError",
    "CollectionError",
    "Example",
    "Unit",
    "atlas_path",
    "atlases_dir",
    "build_atlas",
    "open_atlas",
]
