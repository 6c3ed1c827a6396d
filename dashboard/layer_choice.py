"""The sidebar's layer and filter (channel) of the model in use.

The chosen layer is kept in ``state.LAYER`` and survives model changes: when the new model
has no such layer the choice moves to its block, else to a middle-depth block.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state
from vis_core import LayerInfo, ModelHandle


def default_layer(handle: ModelHandle) -> str:
    """A middle-depth spatial block: detailed enough to see shapes, deep enough to be abstract."""
    spatial = [info.name for info in handle.blocks() if info.is_spatial]
    return spatial[int(len(spatial) * 0.55)] if spatial else next(iter(handle.layers))


def has_maps(info: LayerInfo) -> bool:
    """Whether a layer gives feature maps the pages can show: ``(C, H, W)`` or a vector."""
    return len(info.output_shape) in (1, 3)


def _label(handle: ModelHandle):
    def label(name: str) -> str:
        info = handle.layers[name]
        indent = "" if info.is_block else "↳ "
        return f"{indent}{name} · {info.shape_text} · {info.type_name}"

    return label


def controls(handle: ModelHandle) -> tuple[str, int]:
    """Draw the sub-layer toggle, the Layer menu and the Filter number; return the layer and filter."""
    show_all = st.toggle("Show sub-layers", key=state.SHOW_SUBLAYERS, help="List every module, not only blocks.")
    options = [info.name for info in handle.layers.values() if (show_all or info.is_block) and has_maps(info)]
    # The widget's key includes the model: with one key for every model, the browser kept showing
    # the previous model's label for a layer name both models have. state.LAYER is the logical
    # choice that survives model changes (and that tests and pages read).
    wanted = st.session_state.get(state.LAYER)
    if wanted not in options:
        fallback = handle.layers[wanted].block if wanted in handle.layers else default_layer(handle)
        wanted = fallback if fallback in options else default_layer(handle)
    widget_key = state.layer_widget(handle.key)
    if st.session_state.get(widget_key) not in options or st.session_state.get(state.LAYER) != wanted:
        st.session_state[widget_key] = wanted
    layer = st.selectbox(
        "Layer",
        options,
        key=widget_key,
        format_func=_label(handle),
        help="Type to search. Blocks are listed in the order the image flows through them.",
    )
    st.session_state[state.LAYER] = layer
    channels = handle.layers[layer].channels
    current = st.session_state.get(state.CHANNEL, 0)
    if not isinstance(current, int) or not 0 <= current < channels:
        st.session_state[state.CHANNEL] = 0
    channel = st.number_input(
        f"Filter (channel) 0–{channels - 1}",
        min_value=0,
        max_value=channels - 1,
        step=1,
        key=state.CHANNEL,
        help="Each channel is one filter's response map.",
    )
    return layer, int(channel)
