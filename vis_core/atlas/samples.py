"""A filter's strongest patches of the bundled sample photos, for a model without an atlas.

The atlas's own collection pass (:mod:`vis_core.atlas.examples`) over the sample photos, in
memory and for one layer: every filter's top photos (at most one patch per photo), then one
filter's patches cut out. The same code as an atlas build, without a store.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..models import ModelHandle
from .collection import resolve
from .examples import BATCH, PassState, Patcher, run_batch

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
