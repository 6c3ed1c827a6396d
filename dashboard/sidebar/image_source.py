"""The sidebar's image: a sample photo, an upload, the camera, or a lab run's test image.

The image in use is an :class:`ImageEntry` under ``state.IMAGE``; the caches are keyed by its
``key``. An image that cannot be read becomes a message while the previous image stays.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st
from PIL import Image

import vis_core
from dashboard import state
from dashboard.data import cache
from dashboard.words import escape
from vis_core.arrays import to_uint8

#: Uploaded images are kept per session at most this long on their longer side.
SESSION_MAX_SIDE = 2048
UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
#: Largest image the uploader takes, in megabytes (see ``sidebar.UPLOAD_LIMITS_MB``).
MAX_IMAGE_MB = 10
#: Image keys of the sample photos start with this (the caches are keyed by image key).
SAMPLE_PREFIX = "sample:"
SAMPLE, UPLOAD, CAMERA, TEST_IMAGE = "Sample photo", "Upload", "Camera", "Test image"


@dataclass(frozen=True)
class ImageEntry:
    """The image in use: a cache key, a label for captions, and the RGB image."""

    key: str
    label: str
    image: Image.Image


def sample_key(name: str) -> str:
    """The image key of a sample photo (its display name, e.g. ``chelsea (cat)``)."""
    return SAMPLE_PREFIX + name


def slug(sample: str) -> str:
    """A sample photo's short name for links (``chelsea`` for ``chelsea (cat)``)."""
    return sample.split(" (")[0]


def current() -> ImageEntry:
    """The image in use (the default sample photo before anything was chosen)."""
    if state.IMAGE not in st.session_state:
        on_sample()
    return st.session_state[state.IMAGE]


def _accept(key: str, label: str, image: Image.Image) -> None:
    if max(image.size) > SESSION_MAX_SIDE:
        image = image.copy()
        image.thumbnail((SESSION_MAX_SIDE, SESSION_MAX_SIDE), Image.Resampling.LANCZOS)
    st.session_state[state.IMAGE] = ImageEntry(key, label, image)


def _on_file(widget_key: str, label: str) -> None:
    uploaded = st.session_state.get(widget_key)
    if uploaded is None:
        return
    data = uploaded.getvalue()
    try:
        image = vis_core.load_image(data)
    except vis_core.ImageError as exc:
        state.flash(f"{getattr(uploaded, 'name', 'The file')}: {exc} The previous image is still in use.")
        return
    digest = hashlib.sha256(data).hexdigest()[:20]
    _accept(f"upload:{digest}", f"{label} {getattr(uploaded, 'name', '')}".strip(), image)


def on_sample() -> None:
    """Use the sample photo chosen in ``state.SAMPLE`` (the first one if none)."""
    name = st.session_state.get(state.SAMPLE, vis_core.sample_names()[0])
    _accept(sample_key(name), name, vis_core.sample_image(name))


def use_sample(name: str) -> None:
    """Switch to the sample photo ``name`` (one of ``vis_core.sample_names()``)."""
    st.session_state[state.IMAGE_SOURCE] = SAMPLE
    st.session_state[state.SAMPLE] = name
    on_sample()


def current_run() -> vis_core.Run | None:
    """The lab run in use as the model, if the model is one (its test images are offered)."""
    name = st.session_state.get(state.MODEL_NAME, "")
    if not cache.is_run(name):
        return None
    try:
        return vis_core.load_run(vis_core.runs_dir() / name.removeprefix(cache.RUN_PREFIX))
    except vis_core.VisCoreError:
        return None


def on_test_image() -> None:
    """Use the test image chosen in ``state.TEST_IMAGE`` of the run in use."""
    run = current_run()
    if run is None:
        return
    images, labels = run.test_samples()
    index = min(int(st.session_state.get(state.TEST_IMAGE, 0)), len(images) - 1)
    array = to_uint8(images[index].permute(1, 2, 0).numpy())
    picture = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).convert("RGB")
    label = run.classes[int(labels[index])]
    _accept(f"test:{run.name}:{index}", f"test image {index} ({label})", picture)


def follow_model(name: str) -> None:
    """After a model change: a lab model starts on its first test image (its own kind of
    picture); other models leave test images for the sample photo."""
    if cache.is_run(name):
        st.session_state[state.IMAGE_SOURCE] = TEST_IMAGE
        st.session_state[state.TEST_IMAGE] = 0
        on_test_image()
    elif st.session_state.get(state.IMAGE_SOURCE) == TEST_IMAGE:
        st.session_state[state.IMAGE_SOURCE] = SAMPLE
        on_sample()


def controls() -> ImageEntry:
    """Draw the image source, its picker and the image in use; return the image in use."""
    run = current_run()
    sources = [SAMPLE, UPLOAD, CAMERA] + ([TEST_IMAGE] if run is not None else [])
    if st.session_state.get(state.IMAGE_SOURCE) not in sources:
        st.session_state[state.IMAGE_SOURCE] = SAMPLE
    source = st.radio("Image source", sources, key=state.IMAGE_SOURCE, horizontal=True)
    if source == TEST_IMAGE and run is not None:
        _, labels = run.test_samples()
        st.selectbox(
            "Test image",
            list(range(len(labels))),
            key=state.TEST_IMAGE,
            on_change=on_test_image,
            format_func=lambda i: f"{i}: a {run.classes[int(labels[i])]}",
            help="Images the network never saw while training.",
        )
    elif source == SAMPLE:
        st.selectbox("Sample photo", vis_core.sample_names(), key=state.SAMPLE, on_change=on_sample)
    elif source == UPLOAD:
        st.file_uploader(
            "Upload an image (PNG, JPEG, WEBP, GIF, BMP)",
            type=UPLOAD_TYPES,
            key=state.UPLOAD,
            max_upload_size=MAX_IMAGE_MB,
            on_change=_on_file,
            args=(state.UPLOAD, "upload"),
        )
    else:
        st.camera_input("Take a photo", key=state.CAMERA, on_change=_on_file, args=(state.CAMERA, "camera"))
    entry = current()
    st.image(entry.image, caption=f"In use: {escape.markdown(entry.label)}", width=160)
    return entry
