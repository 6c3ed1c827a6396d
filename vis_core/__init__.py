"""vis_core: the engine behind the CNN visualisation dashboard.

Torch and numpy only: importing it never imports streamlit or plotly. The public API::

    import vis_core
    handle = vis_core.load_model()                 # MobileNetV2, works offline
    image = vis_core.load_image("cat.jpg")         # safe decoding, RGB
    maps = vis_core.feature_maps(handle, image)    # every layer, one forward pass
    maps.activations["features.10"].shape          # (64, 14, 14)
    vis_core.attribute(handle, image, "gradcam").map          # (H, W) at the image's size
    vis_core.project(handle, image, layer="features.10", channel=5, method="guided")
    run = vis_core.train(dataset="digits", arch="notebook", epochs=5, seed=0, out="runs/demo")
    run.handle(-1)                                 # the last snapshot as a ModelHandle
    vis_core.deep_dream(handle, image, layer="features.7")        # also feature_visualization, reconstruct
    vis_core.load_factory("mypackage.models:build")               # your own trusted code, explicitly
"""

from .atlas import Atlas, AtlasError, AtlasSummary, AtlasUnitError, atlas_path, atlases_dir, build_atlas, open_atlas
from .attribution import METHODS, Attribution, Method, attribute, attribute_stages
from .dream import Dream, deep_dream
from .errors import ImageError, ModelError, ParameterError, ResourceError, VisCoreError
from .featuremaps import FeatureMaps, LayerStats, feature_maps, feature_maps_from_tensor
from .featurevis import FeatureVisualization, feature_visualization
from .filters import Filters, filters
from .hooks import capture, hook_count
from .images import ALLOWED_FORMATS, MAX_BYTES, MAX_PIXELS, SAMPLE_IMAGES, load_image, sample_image, sample_names
from .inversion import Reconstruction, reconstruct
from .layers import LayerInfo
from .loading import DEFAULT_MODEL, classification_models, load_factory, load_model
from .memory import keep_freed_memory
from .metrics import Faithfulness, FaithfulnessReport, SanityCheck, faithfulness, sanity_check
from .models import ModelHandle, state_dict_hash
from .prediction import Prediction, predict
from .projection import Projection, project
from .runs import Run, RunError, list_runs, load_run, runs_dir
from .training import train

__all__ = [
    "ALLOWED_FORMATS",
    "DEFAULT_MODEL",
    "MAX_BYTES",
    "MAX_PIXELS",
    "METHODS",
    "SAMPLE_IMAGES",
    "Atlas",
    "AtlasError",
    "AtlasSummary",
    "AtlasUnitError",
    "Attribution",
    "Dream",
    "Faithfulness",
    "FaithfulnessReport",
    "FeatureMaps",
    "FeatureVisualization",
    "Filters",
    "ImageError",
    "LayerInfo",
    "LayerStats",
    "Method",
    "ModelError",
    "ModelHandle",
    "ParameterError",
    "Prediction",
    "Projection",
    "Reconstruction",
    "ResourceError",
    "Run",
    "RunError",
    "SanityCheck",
    "VisCoreError",
    "atlas_path",
    "atlases_dir",
    "attribute",
    "attribute_stages",
    "build_atlas",
    "capture",
    "classification_models",
    "deep_dream",
    "faithfulness",
    "feature_maps",
    "feature_maps_from_tensor",
    "feature_visualization",
    "filters",
    "hook_count",
    "keep_freed_memory",
    "list_runs",
    "load_factory",
    "load_image",
    "load_model",
    "load_run",
    "open_atlas",
    "predict",
    "project",
    "reconstruct",
    "runs_dir",
    "sample_image",
    "sample_names",
    "sanity_check",
    "state_dict_hash",
    "train",
]
