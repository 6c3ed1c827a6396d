"""Every Streamlit cache of the dashboard, in one place, and the models it may load.

* The model allow-list: a model name can come from a viewer (the Model widget, a link, session
  state), and a crafted client can send any string for a selectbox. :func:`model` only loads
  a name that this server offers: one of torchvision's classifiers, an existing training run
  (``run:<name>``), or the trusted factory the person who started the server named with
  ``VIS_CORE_MODEL`` (``make run MODEL=...``). Nothing else is ever imported or opened.

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

import numpy as np
import streamlit as st
from PIL import Image

import vis_core
from vis_core import FeatureMaps, ModelHandle, Prediction, evolution
from vis_core import runs as lab
from vis_core.atlas import samples
from vis_core.filters import Filters, filters

TTL_SECONDS = 3600
#: Prefix of model names that are training runs (``run:<folder name>``).
RUN_PREFIX = "run:"


def trusted_model() -> str | None:
    """``package.module:function`` named by the person who started the server
    (``make run MODEL=...``, i.e. ``$VIS_CORE_MODEL``); never a value a viewer sent."""
    return os.environ.get("VIS_CORE_MODEL") or None


def is_run(name: str) -> bool:
    """Whether a model name is a training-lab run (``run:<folder name>``)."""
    return name.startswith(RUN_PREFIX)


def offered(name: object) -> bool:
    """Whether this server offers the model ``name`` (the allow-list; see the module docstring)."""
    if not isinstance(name, str) or len(name) > 200:
        return False
    if is_run(name):
        run = name.removeprefix(RUN_PREFIX)
        try:
            lab.check_run_name(run)
        except vis_core.VisCoreError:
            return False
        return (lab.runs_dir() / run / "run.json").is_file()
    return name == trusted_model() or name in vis_core.classification_models()


def model(name: str) -> ModelHandle:
    """A shared, guarded model handle for a name this server offers.

    Raises:
        vis_core.ModelError: the name is not offered (the message says so; nothing is loaded).
    """
    if not offered(name):
        raise vis_core.ModelError(
            f"The model {str(name)[:80]!r} is not offered by this server; choose one from the Model menu."
        )
    return _load_model(name)


@st.cache_resource(max_entries=4, show_spinner="Loading the model…")
def _load_model(name: str) -> ModelHandle:
    if is_run(name):
        return lab.load_run(lab.runs_dir() / name.removeprefix(RUN_PREFIX)).handle()
    if name == trusted_model():
        return vis_core.load_factory(name)
    return vis_core.load_model(name)


@st.cache_data(max_entries=64, ttl=TTL_SECONDS, show_spinner=False)
def layer_filters(model_key: str, layer: str, _handle: ModelHandle) -> Filters:
    """The kernels of one convolution layer."""
    return filters(_handle, layer)


@st.cache_data(max_entries=16, ttl=TTL_SECONDS, show_spinner="Reading the snapshots…")
def kernel_history(run_key: str, _run: lab.Run) -> tuple[str, np.ndarray]:
    """First-layer kernels at every snapshot of a run."""
    return evolution.filter_history(_run)


@st.cache_data(max_entries=16, ttl=TTL_SECONDS, show_spinner=False)
def test_samples(run_key: str, _run: lab.Run) -> tuple[np.ndarray, list[int]]:
    """A run's saved test images ``(N, H, W, C)`` in [0, 1] and their labels."""
    images, labels = _run.test_samples()
    return images.permute(0, 2, 3, 1).numpy(), [int(label) for label in labels]


@st.cache_data(max_entries=16, ttl=TTL_SECONDS, show_spinner=False)
def run_map_layers(run_key: str, _run: lab.Run) -> list[str]:
    """A run's layers whose maps the lab shows through time (its spatial ReLUs)."""
    layers = _run.handle(0).layers.values()
    return [info.name for info in layers if info.is_spatial and info.type_name == "ReLU"]


@st.cache_data(max_entries=32, ttl=TTL_SECONDS, show_spinner="Running every snapshot…")
def feature_map_history(run_key: str, image_index: int, layer: str, _run: lab.Run) -> np.ndarray:
    """One test image's feature maps at ``layer`` for every snapshot of a run."""
    return evolution.feature_map_history(_run, image_index, layer)


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


@st.cache_resource(max_entries=8, ttl=TTL_SECONDS, show_spinner=False)
def atlas(path: str, modified_ns: int, model_key: str, _handle: ModelHandle) -> vis_core.Atlas | None:
    """A model's atlas folder opened for reading (``dashboard.data.atlases.find``), or None when it was
    built from other weights. Keyed by the folder and the newest modification time of its files:
    while a build runs, each run that sees newer files opens the atlas again and shows the new units."""
    opened = vis_core.open_atlas(path)
    return opened if opened.matches(_handle) else None


@st.cache_resource(max_entries=8, ttl=TTL_SECONDS, show_spinner="Running the sample photos through the network…")
def sample_pass(model_key: str, layer: str, _handle: ModelHandle):
    """Every filter's strongest sample photos at one layer, and the patch cutter
    (``vis_core.atlas.samples.sample_pass``): one pass serves every filter of the layer."""

    return samples.sample_pass(_handle, layer)


@st.cache_data(max_entries=64, ttl=TTL_SECONDS, show_spinner="Cutting the photo patches…")
def sample_patches(model_key: str, layer: str, channel: int, _handle: ModelHandle):
    """One filter's strongest patches of the sample photos, for a model without an atlas."""

    patcher, state = sample_pass(model_key, layer, _handle)
    return samples.sample_patches(patcher, state, layer, channel)


#: One filter's quick painting (the One filter page): small and short, so it takes about a second
#: (the Ideal images page paints larger).
QUICK_STEPS = 64
QUICK_SIZE = 112


def quick_painting_work(handle: ModelHandle) -> float:
    """The quick painting's passes of the network (``vis_core.costs``), to say or refuse before it starts."""
    from vis_core.featurevis import render_work

    return render_work(handle, steps=QUICK_STEPS, size=QUICK_SIZE, images=1)


@st.cache_resource(max_entries=32, ttl=TTL_SECONDS, show_spinner="Painting what the filter looks for…")
def quick_painting(model_key: str, layer: str, channel: int, _handle: ModelHandle) -> vis_core.FeatureVisualization:
    """What one filter looks for, painted as "Paint it" paints it (same steps, size and seed):
    computed ahead for a presented talk's *One filter* slides, where no button is shown."""
    return vis_core.feature_visualization(_handle, layer=layer, channel=channel, steps=QUICK_STEPS, size=QUICK_SIZE)


@st.cache_resource(max_entries=8, ttl=TTL_SECONDS, show_spinner="Dreaming…")
def dream(model_key: str, image_key: str, args: tuple, _handle: ModelHandle, _image: Image.Image) -> vis_core.Dream:
    """A dream made ahead for a presented talk's Deep dream slide (``args``: the items of
    ``views.deep_dream.dream_args``), where no Dream button is shown."""
    return vis_core.deep_dream(_handle, _image, **dict(args))


@st.cache_resource(max_entries=8, ttl=TTL_SECONDS, show_spinner="Painting…")
def painting(model_key: str, args: tuple, _handle: ModelHandle) -> vis_core.FeatureVisualization:
    """A feature visualisation made ahead for a presented talk's Ideal images slide (``args``:
    the items of ``views.feature_vis.painting_args``), where no Render button is shown."""
    return vis_core.feature_visualization(_handle, **{k: list(v) if isinstance(v, tuple) else v for k, v in args})


@st.cache_resource(max_entries=4, ttl=TTL_SECONDS, show_spinner="Rebuilding the photo…")
def reconstructions(
    model_key: str, image_key: str, layers: tuple[str, ...], args: tuple, _handle: ModelHandle, _image: Image.Image
) -> list[vis_core.Reconstruction]:
    """The photo rebuilt from each of ``layers``, made ahead for a presented talk's Rebuild the
    photo slide (``args``: the items of ``views.reconstruction.rebuild_args``), where no button is shown."""
    return [vis_core.reconstruct(_handle, _image, layer=layer, **dict(args)) for layer in layers]


def frozen(args: dict) -> tuple:
    """Engine arguments as a cache key: their items in order, lists as tuples (the cached
    functions turn them back into lists)."""
    return tuple(sorted((key, tuple(value) if isinstance(value, list) else value) for key, value in args.items()))


@st.cache_data(max_entries=128, ttl=TTL_SECONDS, show_spinner="Computing the map…")
def attribution(
    model_key: str,
    image_key: str,
    method: str,
    target: int,
    layer: str | None,
    _handle: ModelHandle,
    _image: Image.Image,
) -> vis_core.Attribution:
    """One attribution map of a method that does not refine (the others: :mod:`dashboard.work.refine`)."""
    return vis_core.attribute(_handle, _image, method, target=target, layer=layer)


@st.cache_data(max_entries=64, ttl=TTL_SECONDS, show_spinner="Projecting back to pixels…")
def projection(
    model_key: str,
    image_key: str,
    layer: str,
    channel: int,
    method: str,
    position: str | None,
    _handle: ModelHandle,
    _image: Image.Image,
):
    """A channel projected to pixels by deconvnet, guided backprop or the gradient."""
    return vis_core.project(_handle, _image, layer=layer, channel=channel, method=method, position=position)


@st.cache_data(max_entries=32, ttl=TTL_SECONDS, show_spinner="Projecting the strongest channels…")
def top_projections(
    model_key: str, image_key: str, layer: str, k: int, method: str, _handle: ModelHandle, _image: Image.Image
) -> list[tuple[int, float, np.ndarray, np.ndarray]]:
    """The ``k`` most active channels of a layer, each projected at its strongest position:
    ``(channel, activation, projection, image patch)``, both cropped to where the projection
    falls (its effective box inside the receptive field)."""
    from vis_core.projection import crop, project_strongest

    channels = feature_maps(model_key, image_key, _handle, _image).top_channels(layer, k, by="max")
    view = model_view(model_key, image_key, _handle, _image)
    tiles = project_strongest(_handle, _image, layer, channels, method)
    return [(tile.channel, tile.activation, tile.rgb, crop(view, tile.box)) for tile in tiles]
