"""The address bar carries the selection: ``/feature_maps?model=…&image=coffee&layer=…&filter=5``.

A lecturer can bookmark each view of a talk, a reload keeps the view, and a link opens it for
someone else. Links are read once per session and every value is checked like a click; what
does not fit is named in a toast and the usual default is used instead.
"""

from __future__ import annotations

import re

import streamlit as st

import vis_core
from dashboard import escape, image_source, layer_choice, model_choice, own_weights, state
from vis_core import ModelHandle

#: Query parameters of a link to a view; anything else in a URL is ignored.
LINK_KEYS = ("model", "image", "layer", "filter")


def read() -> None:
    """Once per session, take model, sample photo, layer and filter from the URL.

    The model and photo are checked here; the layer and filter need the model, so
    :func:`apply_layer` checks them.
    """
    if st.session_state.get(state.LINK_READ):
        return
    st.session_state[state.LINK_READ] = True
    params = {key: st.query_params.get(key, "")[:200] for key in LINK_KEYS}
    if params["model"]:
        if params["model"] in model_choice.choices():
            st.session_state[state.MODEL_CHOICE] = params["model"]  # loaded with the usual checks
        else:
            st.toast(
                escape.markdown(f"The link's model {params['model']!r} is not available here; showing the default.")
            )
    if params["image"]:
        names = vis_core.sample_names()
        if sample := next((name for name in names if params["image"] in (name, image_source.slug(name))), None):
            image_source.use_sample(sample)
        else:
            st.toast(escape.markdown(f"The link's photo {params['image']!r} is not one of the samples."))
    if params["layer"]:
        st.session_state[state.LINK_LAYER] = params["layer"]
    if params["filter"]:
        st.session_state[state.LINK_FILTER] = params["filter"]


def apply_layer(handle: ModelHandle) -> None:
    """Apply a link's layer and filter once the model is known (before their widgets exist)."""
    layer = st.session_state.pop(state.LINK_LAYER, None)
    if layer is not None:
        info = handle.layers.get(layer)
        if info is None or not layer_choice.has_maps(info):
            st.toast(escape.markdown(f"{handle.name} has no feature-map layer {layer!r}; showing a middle block."))
        else:
            st.session_state[state.LAYER] = layer
            if not info.is_block:
                st.session_state[state.SHOW_SUBLAYERS] = True
    text = st.session_state.pop(state.LINK_FILTER, None)
    if text is not None:
        channels = handle.layers[st.session_state.get(state.LAYER) or layer_choice.default_layer(handle)].channels
        if re.fullmatch(r"[0-9]{1,7}", text) and int(text) < channels:  # ASCII digits: '²'.isdigit() is True
            st.session_state[state.CHANNEL] = int(text)
        else:
            st.toast(escape.markdown(f"Filter {text!r} is not one of this layer's 0–{channels - 1}; showing filter 0."))


def write(model_name: str, image_key: str, layer: str, channel: int) -> None:
    """Put the selection in the address bar (only what a link can reproduce: no uploads)."""
    link = {"model": model_name, "layer": layer, "filter": str(channel)}
    if model_name in own_weights.own_models():  # this session's uploaded weights: nobody else has them
        del link["model"]
    if image_key.startswith(image_source.SAMPLE_PREFIX):
        link["image"] = image_source.slug(image_key.removeprefix(image_source.SAMPLE_PREFIX))
    if st.query_params.to_dict() != link:
        st.query_params.from_dict(link)
