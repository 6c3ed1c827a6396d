"""The sidebar shared by every page: model, image, layer and filter (channel).

It keeps what a person chose in ``st.session_state`` and hands pages a :class:`Selection`.
The address bar carries the selection too (``/feature_maps?model=…&image=coffee&layer=…&filter=5``):
a lecturer can bookmark each view of a talk, a reload keeps the view, and a link opens it
for someone else. Links are read once per session and every value is checked like a click.
Anything a person can get wrong (an unreadable upload, a model whose weights cannot be
fetched) becomes a message in the sidebar while the previous, working choice stays.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from dataclasses import dataclass

import streamlit as st
from PIL import Image

import vis_core
from dashboard import cache, escape
from vis_core import ModelHandle
from vis_core import training as lab
from vis_core.weights import offline_available

#: Uploaded images are kept per session at most this long on their longer side.
SESSION_MAX_SIDE = 2048
#: Models offered first (others follow alphabetically). Vision transformers are left out:
#: this is a tool for convolutional networks.
FEATURED_MODELS = ("mobilenet_v2", "resnet18", "resnet50", "vgg16", "alexnet", "googlenet", "efficientnet_b0")
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
#: Query parameters of a link to a view; anything else in a URL is ignored.
LINK_KEYS = ("model", "image", "layer", "filter")
#: Image keys of the sample photos start with this (the caches are keyed by image key).
SAMPLE_PREFIX = "sample:"


def sample_key(name: str) -> str:
    """The image key of a sample photo (its display name, e.g. ``chelsea (cat)``)."""
    return SAMPLE_PREFIX + name


@dataclass(frozen=True)
class ImageEntry:
    """The image in use: a cache key, a label for captions, and the RGB image."""

    key: str
    label: str
    image: Image.Image


@dataclass(frozen=True)
class Selection:
    """What the sidebar selected, for the pages."""

    handle: ModelHandle
    image: ImageEntry
    layer: str
    channel: int

    @property
    def model_key(self) -> str:
        return self.handle.key


@st.cache_data(ttl=10, show_spinner=False)
def run_models() -> list[str]:
    """Training-lab runs as model names (``run:<name>``), newest first."""
    runs, _ = lab.list_runs(lab.runs_dir())
    return [cache.RUN_PREFIX + run.name for run in runs]


def convolutional_models() -> list[str]:
    """torchvision's convolutional classifiers, featured ones first (vision transformers left out)."""
    convolutional = [
        name for name in vis_core.classification_models() if not name.startswith(("vit_", "swin_", "maxvit"))
    ]
    featured = [name for name in FEATURED_MODELS if name in convolutional]
    return featured + sorted(set(convolutional) - set(featured))


trusted_model = cache.trusted_model

#: Own models (uploaded weights) one session keeps; loading another releases the oldest.
MAX_OWN_MODELS = 2


def own_models() -> dict[str, ModelHandle]:
    """Models this session loaded from uploaded weights (never shared with other sessions)."""
    return st.session_state.setdefault("own_models", {})


def _keep_own(name: str, handle: ModelHandle) -> None:
    models = own_models()
    models.pop(name, None)
    models[name] = handle
    while len(models) > MAX_OWN_MODELS:
        models.pop(next(iter(models)))


def model_choices() -> list[str]:
    """The trusted model if any, the default model, this session's own models, the lab's runs,
    then torchvision's other CNNs."""
    convolutional = convolutional_models()
    trusted = [trusted_model()] if trusted_model() else []
    return trusted + convolutional[:1] + list(own_models()) + run_models() + convolutional[1:]


def load_handle(name: str) -> ModelHandle:
    """The handle for a model name: this session's own model, or the shared cache."""
    return own_models().get(name) or cache.model(name)


def is_run(name: str) -> bool:
    """Whether a model name is a training-lab run."""
    return name.startswith(cache.RUN_PREFIX)


@st.cache_data(ttl=60, show_spinner=False)
def offline_models() -> frozenset[str]:
    """Models whose default weights are on disk (checked at most once a minute)."""
    from vis_core.models import resolve_weights

    found = set()
    for name in model_choices():
        try:
            if offline_available(resolve_weights(name, None)):
                found.add(name)
        except vis_core.VisCoreError:
            continue
    return frozenset(found)


def _model_label(name: str) -> str:
    if name in own_models():
        return f"{name}  (your weights)"
    if name == trusted_model():
        return f"{name}  (your code)"
    if is_run(name):
        return f"{name[len(cache.RUN_PREFIX) :]}  (trained in the lab)"
    return f"{name}  ✓ offline" if name in offline_models() else name


def choose_model(name: str) -> None:
    """Switch the sidebar to ``name`` from a page (a button), with the same checks as the menu.

    The Model widget has been drawn by then and its state cannot change in this run, so the
    choice waits for the next run, which :func:`render` starts by applying it.
    """
    st.session_state["_pending_model"] = name
    st.rerun()


def _flash(message: str) -> None:
    st.session_state.setdefault("_flash", []).append(message)


def _show_flash() -> None:
    """Errors from the last interaction, at the top of the page where nobody misses them."""
    for message in st.session_state.pop("_flash", []):
        st.error(escape.markdown(message), icon=":material/error:")


def _on_model_change() -> None:
    name = st.session_state["model_choice"]
    if name not in model_choices():  # a crafted client can send any string for a selectbox
        _flash(f"The model {str(name)[:80]!r} is not one of the models offered here; the previous model stays.")
        st.session_state["model_choice"] = st.session_state.get("model_name", vis_core.DEFAULT_MODEL)
        return
    try:
        load_handle(name)
    except vis_core.VisCoreError as exc:
        _flash(str(exc))
        st.session_state["model_choice"] = st.session_state.get("model_name", vis_core.DEFAULT_MODEL)
        return
    st.session_state["model_name"] = name
    source = st.session_state.get("image_source")
    if is_run(name):  # a lab model reads its own kind of picture: start on one of its test images
        st.session_state["image_source"] = "Test image"
        st.session_state["test_image_choice"] = 0
        _on_test_image()
    elif source == "Test image":
        st.session_state["image_source"] = "Sample photo"
        _on_sample()


def _accept_image(key: str, label: str, image: Image.Image) -> None:
    if max(image.size) > SESSION_MAX_SIDE:
        image = image.copy()
        image.thumbnail((SESSION_MAX_SIDE, SESSION_MAX_SIDE), Image.Resampling.LANCZOS)
    st.session_state["image_entry"] = ImageEntry(key, label, image)


def _on_file(widget_key: str, label: str) -> None:
    uploaded = st.session_state.get(widget_key)
    if uploaded is None:
        return
    data = uploaded.getvalue()
    try:
        image = vis_core.load_image(data)
    except vis_core.ImageError as exc:
        _flash(f"{getattr(uploaded, 'name', 'The file')}: {exc} The previous image is still in use.")
        return
    digest = hashlib.sha256(data).hexdigest()[:20]
    _accept_image(f"upload:{digest}", f"{label} {getattr(uploaded, 'name', '')}".strip(), image)


def _on_sample() -> None:
    name = st.session_state.get("sample_choice", vis_core.sample_names()[0])
    _accept_image(sample_key(name), name, vis_core.sample_image(name))


def _current_run() -> lab.Run | None:
    name = st.session_state.get("model_name", "")
    if not is_run(name):
        return None
    try:
        return lab.load_run(lab.runs_dir() / name[len(cache.RUN_PREFIX) :])
    except vis_core.VisCoreError:
        return None


def _on_test_image() -> None:
    run = _current_run()
    if run is None:
        return
    images, labels = run.test_samples()
    index = min(int(st.session_state.get("test_image_choice", 0)), len(images) - 1)
    array = (images[index].permute(1, 2, 0).numpy() * 255).round().clip(0, 255).astype("uint8")
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).convert("RGB")
    label = run.classes[int(labels[index])]
    _accept_image(f"test:{run.name}:{index}", f"test image {index} ({label})", picture)


#: Largest file each uploader takes, in megabytes. The server's own limit
#: (``server.maxUploadSize`` in ``.streamlit/config.toml``) is the largest of them, so no widget
#: promises more than the server takes; each widget states its own.
MAX_IMAGE_MB = 10
MAX_LABELS_MB = 1
MAX_WEIGHTS_MB = 300
UPLOAD_LIMITS_MB = {"image": MAX_IMAGE_MB, "labels": MAX_LABELS_MB, "weights": MAX_WEIGHTS_MB}


def _own_weights_form() -> None:
    with st.expander("Use your own weights"), st.form("own_model_form", border=False):
        arch = st.selectbox(
            "Architecture",
            convolutional_models(),
            key="own_arch",
            help="The torchvision architecture your weights were trained for.",
        )
        weights = st.file_uploader(
            f"Weights: a state_dict (.safetensors, .pt, .pth), up to {MAX_WEIGHTS_MB} MB",
            type=["safetensors", "pt", "pth"],
            key="own_weights",
            max_upload_size=MAX_WEIGHTS_MB,
        )
        labels = st.file_uploader(
            f"Class names (optional): .txt, one per line, or .json, up to {MAX_LABELS_MB} MB",
            type=["txt", "json"],
            key="own_labels",
            max_upload_size=MAX_LABELS_MB,
        )
        size = st.number_input("Input size (pixels)", 16, 1024, 224, key="own_size")
        submitted = st.form_submit_button("Load my model")
    if submitted:
        if weights is None:
            st.error("Choose a weights file first.")
            return
        _load_own(arch, weights, labels, int(size))


def _load_own(arch: str, weights, labels, size: int) -> None:
    """Load uploaded weights (and class names) as this session's own model.

    The files are written under names the server chose, in a temporary folder that is removed
    as soon as the model is loaded or refused: nothing a viewer uploaded stays on disk.
    """
    from pathlib import Path

    if arch not in convolutional_models():  # a crafted client can send any architecture name
        st.error(f"Unknown architecture {escape.markdown(str(arch)[:80])}.")
        return
    with tempfile.TemporaryDirectory(prefix="vis-core-weights-") as folder:
        weights_path = Path(folder) / f"weights{Path(weights.name).suffix.lower()}"
        weights_path.write_bytes(weights.getvalue())
        labels_path = None
        if labels is not None:
            labels_path = Path(folder) / f"labels{Path(labels.name).suffix.lower()}"
            labels_path.write_bytes(labels.getvalue())
        try:
            handle = vis_core.load_model(arch, weights=weights_path, labels=labels_path, input_size=size)
        except vis_core.VisCoreError as exc:
            st.error(escape.markdown(f"{weights.name}: {exc}"))
            return
    name = f"own:{arch} ({Path(weights.name).name})"
    _keep_own(name, handle)
    choose_model(name)


def _image_controls() -> None:
    run = _current_run()
    sources = ["Sample photo", "Upload", "Camera"] + (["Test image"] if run is not None else [])
    if st.session_state.get("image_source") not in sources:
        st.session_state["image_source"] = "Sample photo"
    st.radio("Image source", sources, key="image_source", horizontal=True)
    source = st.session_state["image_source"]
    if source == "Test image" and run is not None:
        _, labels = run.test_samples()
        st.selectbox(
            "Test image",
            list(range(len(labels))),
            key="test_image_choice",
            on_change=_on_test_image,
            format_func=lambda i: f"{i}: a {run.classes[int(labels[i])]}",
            help="Images the network never saw while training.",
        )
    elif source == "Sample photo":
        st.selectbox("Sample photo", vis_core.sample_names(), key="sample_choice", on_change=_on_sample)
    elif source == "Upload":
        st.file_uploader(
            "Upload an image (PNG, JPEG, WEBP, GIF, BMP)",
            type=UPLOAD_TYPES,
            key="upload",
            max_upload_size=MAX_IMAGE_MB,
            on_change=_on_file,
            args=("upload", "upload"),
        )
    else:
        st.camera_input("Take a photo", key="camera", on_change=_on_file, args=("camera", "camera"))
    if "image_entry" not in st.session_state:
        _on_sample()
    entry: ImageEntry = st.session_state["image_entry"]
    st.image(entry.image, caption=f"In use: {escape.markdown(entry.label)}", width=160)


def _layer_label(handle: ModelHandle):
    def label(name: str) -> str:
        info = handle.layers[name]
        indent = "" if info.is_block else "↳ "
        return f"{indent}{name} · {info.shape_text} · {info.type_name}"

    return label


def default_layer(handle: ModelHandle) -> str:
    """A middle-depth spatial block: detailed enough to see shapes, deep enough to be abstract."""
    spatial = [info.name for info in handle.blocks() if info.is_spatial]
    return spatial[int(len(spatial) * 0.55)] if spatial else next(iter(handle.layers))


def _layer_controls(handle: ModelHandle) -> tuple[str, int]:
    show_all = st.toggle("Show sub-layers", key="show_sublayers", help="List every module, not only blocks.")
    options = [
        info.name for info in handle.layers.values() if (show_all or info.is_block) and len(info.output_shape) in (1, 3)
    ]
    # The widget's key includes the model: with one key for every model, the browser kept showing
    # the previous model's label for a layer name both models have. "layer_choice" is the
    # logical choice that survives model changes (and that tests and pages read).
    wanted = st.session_state.get("layer_choice")
    if wanted not in options:
        fallback = handle.layers[wanted].block if wanted in handle.layers else default_layer(handle)
        wanted = fallback if fallback in options else default_layer(handle)
    widget_key = f"layer_widget:{handle.key}"
    if st.session_state.get(widget_key) not in options or st.session_state.get("layer_choice") != wanted:
        st.session_state[widget_key] = wanted
    layer = st.selectbox(
        "Layer",
        options,
        key=widget_key,
        format_func=_layer_label(handle),
        help="Type to search. Blocks are listed in the order the image flows through them.",
    )
    st.session_state["layer_choice"] = layer
    channels = handle.layers[layer].channels
    current = st.session_state.get("channel_choice", 0)
    if not isinstance(current, int) or not 0 <= current < channels:
        st.session_state["channel_choice"] = 0
    channel = st.number_input(
        f"Filter (channel) 0–{channels - 1}",
        min_value=0,
        max_value=channels - 1,
        step=1,
        key="channel_choice",
        help="Each channel is one filter's response map.",
    )
    return layer, int(channel)


def _read_link() -> None:
    """Once per session, take model, sample photo, layer and filter from the URL.

    The model and photo are checked here; the layer and filter need the model, so
    :func:`_layer_controls` checks them. What does not fit is named in a toast and the
    usual default is used instead.
    """
    if st.session_state.get("_link_read"):
        return
    st.session_state["_link_read"] = True
    params = {key: st.query_params.get(key, "")[:200] for key in LINK_KEYS}
    if params["model"]:
        if params["model"] in model_choices():
            st.session_state["model_choice"] = params["model"]  # loaded by render() with the usual checks
        else:
            st.toast(
                escape.markdown(f"The link's model {params['model']!r} is not available here; showing the default.")
            )
    if params["image"]:
        if sample := next((name for name in vis_core.sample_names() if params["image"] in (name, _slug(name))), None):
            st.session_state["image_source"] = "Sample photo"
            st.session_state["sample_choice"] = sample
            _on_sample()
        else:
            st.toast(escape.markdown(f"The link's photo {params['image']!r} is not one of the samples."))
    if params["layer"]:
        st.session_state["_link_layer"] = params["layer"]
    if params["filter"]:
        st.session_state["_link_filter"] = params["filter"]


def _link_layer(handle: ModelHandle) -> None:
    """Apply a link's layer and filter once the model is known (before their widgets exist)."""
    layer = st.session_state.pop("_link_layer", None)
    if layer is not None:
        info = handle.layers.get(layer)
        if info is None or len(info.output_shape) not in (1, 3):
            st.toast(escape.markdown(f"{handle.name} has no feature-map layer {layer!r}; showing a middle block."))
        else:
            st.session_state["layer_choice"] = layer
            if not info.is_block:
                st.session_state["show_sublayers"] = True
    text = st.session_state.pop("_link_filter", None)
    if text is not None:
        channels = handle.layers[st.session_state.get("layer_choice") or default_layer(handle)].channels
        if re.fullmatch(r"[0-9]{1,7}", text) and int(text) < channels:  # ASCII digits: '²'.isdigit() is True
            st.session_state["channel_choice"] = int(text)
        else:
            st.toast(escape.markdown(f"Filter {text!r} is not one of this layer's 0–{channels - 1}; showing filter 0."))


def _slug(sample: str) -> str:
    """A sample photo's short name for links (``chelsea`` for ``chelsea (cat)``)."""
    return sample.split(" (")[0]


def _write_link(selection: Selection) -> None:
    """Put the selection in the address bar (only what a link can reproduce: no uploads)."""
    link = {"model": st.session_state["model_name"], "layer": selection.layer, "filter": str(selection.channel)}
    if link["model"] in own_models():  # this session's uploaded weights: nobody else has them
        del link["model"]
    if selection.image.key.startswith(SAMPLE_PREFIX):
        link["image"] = _slug(selection.image.key.removeprefix(SAMPLE_PREFIX))
    if st.query_params.to_dict() != link:
        st.query_params.from_dict(link)


def render() -> Selection:
    """Draw the shared sidebar and return the current selection (``app.py`` calls it once per run)."""
    st.session_state.setdefault("model_name", trusted_model() or vis_core.DEFAULT_MODEL)
    st.session_state.setdefault("model_choice", st.session_state["model_name"])
    _read_link()
    if pending := st.session_state.pop("_pending_model", None):  # chosen by a page's button, before the widget
        st.session_state["model_choice"] = pending
    if st.session_state["model_choice"] != st.session_state["model_name"]:
        _on_model_change()  # a choice made outside the widget (URL state, tests): same rules
    choices = model_choices()
    if st.session_state["model_choice"] not in choices:  # e.g. a run deleted in another session
        st.session_state["model_name"] = st.session_state["model_choice"] = vis_core.DEFAULT_MODEL
    _show_flash()
    with st.sidebar:
        st.selectbox(
            "Model",
            choices,
            key="model_choice",
            on_change=_on_model_change,
            format_func=_model_label,
            help="Pretrained torchvision classifiers. Models marked offline work without a network.",
        )
        _own_weights_form()
        try:
            handle = load_handle(st.session_state["model_name"])
        except vis_core.VisCoreError as exc:  # the remembered model broke (a deleted run...): use the default
            st.error(escape.markdown(exc))
            st.session_state["model_name"] = vis_core.DEFAULT_MODEL
            handle = cache.model(vis_core.DEFAULT_MODEL)
        _image_controls()
        _link_layer(handle)
        layer, channel = _layer_controls(handle)
        st.caption("The address bar holds this view (page, model, photo, layer, filter): bookmark it or share it.")
    selection = Selection(handle, st.session_state["image_entry"], layer, channel)
    st.session_state["selection"] = selection
    _write_link(selection)
    return selection


def current() -> Selection:
    """The selection the sidebar made in this run (``app.py`` draws it before every page)."""
    selection = st.session_state.get("selection")
    return selection if selection is not None else render()


def require_spatial(info) -> None:
    """Stop the page with a plain explanation when the chosen layer has no (C, H, W) map."""
    if not info.is_spatial:
        st.info(f"{info.name} has no spatial map ({info.shape_text}); choose a convolutional layer in the sidebar.")
        st.stop()
