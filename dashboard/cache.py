"""Every Streamlit cache of the dashboard, in one place.

* Models: ``st.cache_resource`` (shared by every session; bounded). A handle is safe to share
  because every engine call goes through its guard.
* Feature maps: ``st.cache_resource`` too, bounded by ``max_entries`` and ``ttl``. One entry is
  every layer's activations for one image (about 100 MB for MobileNetV2); ``st.cache_data``
  would pickle and copy that on every rerun, while these arrays are read-only and can be
  shared without a copy.
* Small results (predictions, the model's view of the image): ``st.cache_data``, keyed by
  hashable inputs (model key, image key), bounded by ``max_entries`` and ``ttl``.
Arguments whose name starts with ``_`` are not hashed; the key arguments stand for them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

import vis_core
from vis_core import FeatureMaps, ModelHandle, Prediction
from vis_core import training as lab
from vis_core.filters import Filters, filters

TTL_SECONDS = 3600
#: Prefix of model names that are training runs (``run:<folder name>``).
RUN_PREFIX = "run:"


def runs_dir() -> Path:
    """Where the training lab keeps runs (``$VIS_CORE_RUNS`` or ``runs/`` in the project)."""
    return Path(os.environ.get("VIS_CORE_RUNS", Path(__file__).resolve().parents[1] / "runs"))


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def model(name: str) -> ModelHandle:
    """A shared, guarded model handle: a torchvision model, or ``run:<name>`` (its last snapshot)."""
    if name.startswith(RUN_PREFIX):
        return lab.load_run(runs_dir() / name[len(RUN_PREFIX) :]).handle()
    return vis_core.load_model(name)


@st.cache_data(max_entries=64, ttl=TTL_SECONDS, show_spinner=False)
def layer_filters(model_key: str, layer: str, _handle: ModelHandle) -> Filters:
    """The kernels of one convolution layer."""
    return filters(_handle, layer)


@st.cache_data(max_entries=16, ttl=TTL_SECONDS, show_spinner="Reading the snapshots…")
def kernel_history(run_key: str, _run: lab.Run) -> tuple[str, np.ndarray]:
    """First-layer kernels at every snapshot of a run."""
    return lab.filter_history(_run)


@st.cache_data(max_entries=32, ttl=TTL_SECONDS, show_spinner="Running every snapshot…")
def feature_map_history(run_key: str, image_index: int, layer: str, _run: lab.Run) -> np.ndarray:
    """One test image's feature maps at ``layer`` for every snapshot of a run."""
    return lab.feature_map_history(_run, image_index, layer)


@st.cache_resource(max_entries=12, ttl=TTL_SECONDS, show_spinner="Running the network…")
def feature_maps(model_key: str, image_key: str, _handle: ModelHandle, _image: Image.Image) -> FeatureMaps:
    """Every layer's activations for one image: one forward pass serves every figure."""
    return vis_core.feature_maps(_handle, _image)


@st.cache_data(max_entries=64, ttl=TTL_SECONDS, show_spinner=False)
def prediction(model_key: str, image_key: str, _handle: ModelHandle, _image: Image.Image, k: int = 5) -> Prediction:
    """Top-k classes of the image."""
    maps = feature_maps(model_key, image_key, _handle, _image)
    result = maps.prediction(_handle, k)
    return result if result is not None else vis_core.predict(_handle, _image, k)


@st.cache_data(max_entries=64, ttl=TTL_SECONDS, show_spinner=False)
def model_view(model_key: str, image_key: str, _handle: ModelHandle, _image: Image.Image) -> np.ndarray:
    """The image as the model sees it (resized and cropped), as an ``(H, W, 3)`` uint8 array."""
    return np.asarray(_handle.model_view(_image))


def clear() -> None:
    """Empty every cache (tests call this between runs)."""
    st.cache_resource.clear()
    st.cache_data.clear()
