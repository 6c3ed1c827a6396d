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

import numpy as np
import streamlit as st
from PIL import Image

import vis_core
from vis_core import FeatureMaps, ModelHandle, Prediction

TTL_SECONDS = 3600


@st.cache_resource(max_entries=3, show_spinner="Loading the model…")
def model(name: str) -> ModelHandle:
    """A shared, guarded model handle (at most three models in memory)."""
    return vis_core.load_model(name)


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
