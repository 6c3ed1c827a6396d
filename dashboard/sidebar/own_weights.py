"""A viewer's own weights: a torchvision architecture with an uploaded ``state_dict``.

The model belongs to the session that loaded it (never shared with other sessions) and at
most :data:`MAX_OWN_MODELS` are kept. The uploaded files are written under names the server
chose, in a temporary folder removed as soon as the model is loaded or refused.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import streamlit as st

import vis_core
from dashboard import state
from dashboard.words import escape
from vis_core import ModelHandle

#: Own models one session keeps; loading another releases the oldest.
MAX_OWN_MODELS = 2
#: Largest files the uploaders take, in megabytes (see ``sidebar.UPLOAD_LIMITS_MB``).
MAX_LABELS_MB = 1
MAX_WEIGHTS_MB = 300
#: Prefix of the model names of own weights (``own:<architecture> (<file name>)``).
OWN_PREFIX = "own:"


def own_models() -> dict[str, ModelHandle]:
    """Models this session loaded from uploaded weights, oldest first."""
    return st.session_state.setdefault(state.OWN_MODELS, {})


def _keep_own(name: str, handle: ModelHandle) -> None:
    models = own_models()
    models.pop(name, None)
    models[name] = handle
    while len(models) > MAX_OWN_MODELS:
        models.pop(next(iter(models)))


def form(architectures: list[str], use: Callable[[str], None]) -> None:
    """The "Use your own weights" form; ``use(name)`` switches to a model it loaded."""
    with st.expander("Use your own weights"), st.form("own_model_form", border=False):
        arch = st.selectbox(
            "Architecture",
            architectures,
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
        if arch not in architectures:  # a crafted client can send any architecture name
            st.error(f"Unknown architecture {escape.markdown(str(arch)[:80])}.")
            return
        if name := _load_own(arch, weights, labels, int(size)):
            use(name)


def _load_own(arch: str, weights, labels, size: int) -> str | None:
    """Load uploaded weights (and class names) of the architecture ``arch`` as this session's
    own model; its name, or None after showing why it could not be loaded."""
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
            return None
    name = f"{OWN_PREFIX}{arch} ({Path(weights.name).name})"
    _keep_own(name, handle)
    return name
