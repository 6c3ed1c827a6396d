"""The sidebar's model: the Model menu, what it offers, and the checks a choice goes through.

The menu offers the trusted model (``make run MODEL=...``) if any, torchvision's convolutional
classifiers, this session's own weights and the training lab's runs. A choice from anywhere
(the menu, a link, a page's button, a test setting ``state.MODEL_CHOICE``) goes through
:func:`on_change`: a name not offered, or a model that cannot be loaded, becomes a message
while the previous model stays in ``state.MODEL_NAME``.
"""

from __future__ import annotations

import streamlit as st

import vis_core
from dashboard import state
from dashboard.data import cache
from dashboard.sidebar import image_source, own_weights
from dashboard.words import escape
from vis_core import ModelHandle
from vis_core.weights import offline_available

#: Models offered first (others follow alphabetically). Vision transformers are left out:
#: this is a tool for convolutional networks.
FEATURED_MODELS = ("mobilenet_v2", "resnet18", "resnet50", "vgg16", "alexnet", "googlenet", "efficientnet_b0")

trusted_model = cache.trusted_model


@st.cache_data(ttl=10, show_spinner=False)
def run_models() -> list[str]:
    """Training-lab runs as model names (``run:<name>``), newest first."""
    runs, _ = vis_core.list_runs(vis_core.runs_dir())
    return [cache.RUN_PREFIX + run.name for run in runs]


def convolutional_models() -> list[str]:
    """torchvision's convolutional classifiers, featured ones first (vision transformers left out)."""
    convolutional = [
        name for name in vis_core.classification_models() if not name.startswith(("vit_", "swin_", "maxvit"))
    ]
    featured = [name for name in FEATURED_MODELS if name in convolutional]
    return featured + sorted(set(convolutional) - set(featured))


def choices() -> list[str]:
    """The trusted model if any, the default model, this session's own models, the lab's runs,
    then torchvision's other CNNs."""
    convolutional = convolutional_models()
    trusted = [trusted_model()] if trusted_model() else []
    return trusted + convolutional[:1] + list(own_weights.own_models()) + run_models() + convolutional[1:]


def load_handle(name: str) -> ModelHandle:
    """The handle for a model name: this session's own model, or the shared cache."""
    return own_weights.own_models().get(name) or cache.model(name)


@st.cache_data(ttl=60, show_spinner=False)
def offline_models() -> frozenset[str]:
    """torchvision models whose default weights are on disk (checked at most once a minute).

    Shared by every session, so it reads no session's state: only torchvision's models have
    default weights (own weights, runs and the trusted model are already on this machine).
    """
    from vis_core.loading import resolve_weights

    found = set()
    for name in convolutional_models():
        try:
            if offline_available(resolve_weights(name, None)):
                found.add(name)
        except vis_core.VisCoreError:
            continue
    return frozenset(found)


def _label(name: str) -> str:
    if name in own_weights.own_models():
        return f"{name}  (your weights)"
    if name == trusted_model():
        return f"{name}  (your code)"
    if cache.is_run(name):
        return f"{name.removeprefix(cache.RUN_PREFIX)}  (trained in the lab)"
    return f"{name}  ✓ offline" if name in offline_models() else name


def choose_model(name: str) -> None:
    """Switch the sidebar to ``name`` from a page (a button), with the same checks as the menu.

    The Model widget has been drawn by then and its state cannot change in this run, so the
    choice waits for the next run, where :func:`settle` applies it first.
    """
    st.session_state[state.PENDING_MODEL] = name
    st.rerun()


def on_change() -> None:
    """Check the Model menu's value and load it, or keep the previous model with a message."""
    name = st.session_state[state.MODEL_CHOICE]
    previous = st.session_state.get(state.MODEL_NAME, vis_core.DEFAULT_MODEL)
    if name not in choices():  # a crafted client can send any string for a selectbox
        state.flash(f"The model {str(name)[:80]!r} is not one of the models offered here; the previous model stays.")
        st.session_state[state.MODEL_CHOICE] = previous
        return
    try:
        load_handle(name)
    except vis_core.VisCoreError as exc:
        state.flash(str(exc))
        st.session_state[state.MODEL_CHOICE] = previous
        return
    st.session_state[state.MODEL_NAME] = name
    image_source.follow_model(name)


def settle() -> list[str]:
    """Before the menu is drawn: apply a choice made outside it (a page's button, a link, a
    test) with the menu's checks, and fall back to the default model when the chosen one is
    gone (e.g. a run deleted in another session). Returns the menu's options."""
    st.session_state.setdefault(state.MODEL_NAME, trusted_model() or vis_core.DEFAULT_MODEL)
    st.session_state.setdefault(state.MODEL_CHOICE, st.session_state[state.MODEL_NAME])
    if pending := st.session_state.pop(state.PENDING_MODEL, None):
        st.session_state[state.MODEL_CHOICE] = pending
    if st.session_state[state.MODEL_CHOICE] != st.session_state[state.MODEL_NAME]:
        on_change()
    options = choices()
    if st.session_state[state.MODEL_CHOICE] not in options:
        st.session_state[state.MODEL_NAME] = st.session_state[state.MODEL_CHOICE] = vis_core.DEFAULT_MODEL
    return options


def controls(options: list[str]) -> ModelHandle:
    """Draw the Model menu and the own-weights form; return the handle of the model in use."""
    st.selectbox(
        "Model",
        options,
        key=state.MODEL_CHOICE,
        on_change=on_change,
        format_func=_label,
        help="Pretrained torchvision classifiers. Models marked offline work without a network.",
    )
    own_weights.form(convolutional_models(), choose_model)
    try:
        return load_handle(st.session_state[state.MODEL_NAME])
    except vis_core.VisCoreError as exc:  # the remembered model broke (a deleted run...): use the default
        st.error(escape.markdown(exc))
        st.session_state[state.MODEL_NAME] = vis_core.DEFAULT_MODEL
        return cache.model(vis_core.DEFAULT_MODEL)
