"""vis_core: the engine behind the CNN visualisation dashboard.

Torch and numpy only: importing it never imports streamlit or plotly. The public API::

    import vis_core
    handle = vis_core.load_model()                 # MobileNetV2, works offline
    image = vis_core.load_image("cat.jpg")         # safe decoding, RGB
    maps = vis_core.feature_maps(handle, image)    # every layer, one forward pass
    maps.activations["features.10"].shape          # (64, 14, 14)
"""

from .errors import ImageError, ModelError, ParameterError, VisCoreError
from .featuremaps import FeatureMaps, LayerStats, feature_maps
from .hooks import capture, hook_count
from .images import ALLOWED_FORMATS, MAX_BYTES, MAX_PIXELS, SAMPLE_IMAGES, load_image, sample_image, sample_names
from .models import (
    DEFAULT_MODEL,
    LayerInfo,
    ModelHandle,
    Prediction,
    classification_models,
    load_model,
    predict,
    state_dict_hash,
)

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_MODEL",
    "MAX_BYTES",
    "MAX_PIXELS",
    "SAMPLE_IMAGES",
    "FeatureMaps",
    "ImageError",
    "LayerInfo",
    "LayerStats",
    "ModelError",
    "ModelHandle",
    "ParameterError",
    "Prediction",
    "VisCoreError",
    "capture",
    "classification_models",
    "feature_maps",
    "hook_count",
    "load_image",
    "load_model",
    "predict",
    "sample_image",
    "sample_names",
    "state_dict_hash",
]
