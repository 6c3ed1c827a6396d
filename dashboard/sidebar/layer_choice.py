"""The sidebar's layer and filter (channel) of the model in use, and choosing them by a click.

The chosen layer is kept in ``state.LAYER`` and survives model changes: when the new model
has no such layer the choice moves to its block, else to a middle-depth block. The first filter
shown is the one that responds most strongly to the photo, so the first map a visitor sees shows
something. The Layer menu names each block's depth in plain words (``features.10 · parts of
objects``; :func:`vis_core.layers.depths`).

Whatever changes the layer and filter (a click on a tile, :func:`pick`, :func:`choose`; a link; a
slide; the tour) asks for it with :func:`want`: the page runs after the sidebar, so the request
waits in ``state.WANTED`` and :func:`controls` applies it, in one place, before drawing the
widgets in the next run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import streamlit as st

import vis_core
from dashboard import state
from dashboard.words import escape, terms
from vis_core import LayerInfo, ModelHandle
from vis_core.layers import depths

#: The One filter page, for links to it.
UNIT_PAGE = "views/unit.py"


def default_layer(handle: ModelHandle) -> str:
    """A middle-depth spatial block: detailed enough to see shapes, deep enough to be abstract."""
    spatial = handle.spatial_blocks()
    return spatial[int(len(spatial) * 0.55)] if spatial else next(iter(handle.layers))


def has_maps(info: LayerInfo) -> bool:
    """Whether a layer gives feature maps the pages can show: ``(C, H, W)`` or a vector."""
    return len(info.output_shape) in (1, 3)


def default_channel(handle: ModelHandle, layer: str) -> int:
    """The filter of ``layer`` with the clearest response to the photo in use: the one whose peak
    stands highest above its typical value (largest maximum minus median), so its map shows a
    spot where it found something, where filter 0 may be flat or a wash of negative values."""
    from dashboard.data import cache  # the sidebar's photo and the shared maps
    from dashboard.sidebar import image_source

    entry = image_source.current()
    try:
        maps = cache.feature_maps(handle.key, entry.key, handle, entry.image)
    except vis_core.VisCoreError:  # the page that needs the maps says what went wrong
        return 0
    return clearest_channel(maps.activations.get(layer))


def clearest_channel(activation: np.ndarray | None) -> int:
    """The channel of a ``(C, ...)`` activation whose maximum stands highest above its median
    (0 for a missing or single-channel layer, or one with no finite values)."""
    if activation is None or activation.shape[0] <= 1:
        return 0
    flat = activation.reshape(activation.shape[0], -1).astype(np.float64)
    if flat.shape[1] == 1:  # a vector: its largest unit
        flat = np.concatenate([flat, np.zeros_like(flat)], axis=1)
    score = np.nan_to_num(flat.max(axis=1) - np.median(flat, axis=1), nan=-np.inf, posinf=-np.inf)
    return int(np.argmax(score)) if np.isfinite(score).any() else 0


def _label(handle: ModelHandle):
    named = depths(handle.layers)

    def label(name: str) -> str:
        info = handle.layers[name]
        if not info.is_block:
            return f"↳ {name}"
        return f"{name} · {named[name].stage}" if name in named else name

    return label


def describe(handle: ModelHandle, layer: str) -> str:
    """A layer in words: ``Block 11 of 21: parts of objects · 64×14×14 · InvertedResidual``."""
    info = handle.layers[layer]
    depth = depths(handle.layers).get(layer)
    if depth is None:
        where = ""
    else:
        where = f"Block {depth.text[6:]}" if info.is_block else f"Inside {info.block}, {depth.text}"
    return " · ".join(part for part in (where, info.shape_text, info.type_name) if part)


def want(layer: str | None = None, channel: int | None = None) -> None:
    """Ask for ``layer`` and filter ``channel`` in the sidebar (None: keep it), from the next run on.

    The one way anything changes the sidebar's layer and filter (a tile click, a link, a slide, the
    tour's "Explore this"): the request is applied in one place, by :func:`controls` before its
    widgets are drawn, and checked there against the model in use."""
    st.session_state[state.WANTED] = (layer, None if channel is None else int(channel))


def _apply_wanted(handle: ModelHandle) -> None:
    """The layer and filter asked for (:func:`want`), before the widgets exist; what does not fit
    the model is named in a toast and the current choice stays."""
    wanted = st.session_state.pop(state.WANTED, None)
    if wanted is None:
        return
    layer, channel = wanted
    if layer is not None:
        info = handle.layers.get(layer)
        if info is None or not has_maps(info):
            st.toast(escape.markdown(f"{handle.name} has no feature-map layer {layer!r}; showing a middle block."))
            return
        st.session_state[state.LAYER] = layer
        if not info.is_block:
            st.session_state[state.SHOW_SUBLAYERS] = True
    if channel is not None:
        shown = st.session_state.get(state.LAYER)
        channels = handle.layers[shown if shown in handle.layers else default_layer(handle)].channels
        if 0 <= channel < channels:
            st.session_state[state.CHANNEL] = channel
        else:
            st.toast(
                escape.markdown(f"Filter {channel} is not one of this layer's 0–{channels - 1}; showing filter 0.")
            )


def controls(handle: ModelHandle) -> tuple[str, int]:
    """Draw the sub-layer toggle, the Layer menu and the Filter number; return the layer and filter."""
    widget_key = state.layer_widget(handle.key)
    _apply_wanted(handle)
    show_all = st.toggle(
        "Show sub-layers",
        key=state.SHOW_SUBLAYERS,
        help=terms.help("layer", "List every layer inside the blocks too, not only the blocks."),
    )
    options = [info.name for info in handle.layers.values() if (show_all or info.is_block) and has_maps(info)]
    # The widget's key includes the model: with one key for every model, the browser kept showing
    # the previous model's label for a layer name both models have. state.LAYER is the logical
    # choice that survives model changes (and that tests and pages read).
    wanted = st.session_state.get(state.LAYER)
    if wanted not in options:
        fallback = handle.layers[wanted].block if wanted in handle.layers else default_layer(handle)
        wanted = fallback if fallback in options else default_layer(handle)
    if st.session_state.get(widget_key) not in options or st.session_state.get(state.LAYER) != wanted:
        st.session_state[widget_key] = wanted
    layer = st.selectbox(
        "Layer",
        options,
        key=widget_key,
        format_func=_label(handle),
        help=terms.help(
            "block",
            "Type to search. Blocks are listed in the order the photo flows through them, each with what blocks at "
            "that depth typically respond to.",
        ),
    )
    st.caption(describe(handle, layer))
    st.session_state[state.LAYER] = layer
    channels = handle.layers[layer].channels
    current = st.session_state.get(state.CHANNEL)
    if current is None:  # the first view: a filter that shows something on this photo
        st.session_state[state.CHANNEL] = default_channel(handle, layer)
    elif not isinstance(current, int) or not 0 <= current < channels:
        st.session_state[state.CHANNEL] = 0
    channel = st.number_input(
        f"Filter (channel) 0–{channels - 1}",
        min_value=0,
        max_value=channels - 1,
        step=1,
        key=state.CHANNEL,
        help=terms.help("filter", "Which filter of the layer the pages show. Click a tile in a grid to choose it."),
    )
    return layer, int(channel)


def choose(layer: str, channel: int) -> None:
    """Choose ``layer`` and filter ``channel`` for the sidebar, from the next run on (a button's
    callback, or :func:`pick` followed by ``st.rerun``)."""
    want(layer, channel)
    st.session_state[state.PICKED] = (layer, int(channel))


def clicked_channel(event: Any) -> int | None:
    """The channel of the tile a chart's selection event points at (its points' ``customdata[0]``),
    or None when nothing (or nothing with a channel) is selected."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for point in points:
        custom = point.get("customdata") if isinstance(point, Mapping) else None
        value = custom[0] if isinstance(custom, list | tuple) and custom else custom
        if isinstance(value, int | float) and value == value and value >= 0:
            return int(value)
    return None


def pick(event: Any, layer: str, chart: str) -> None:
    """A selectable grid's event (``st.plotly_chart(..., on_select="rerun")``): a new click on a
    tile chooses its filter and reruns at once; a selection already applied is not applied again
    (a chart keeps its selection across reruns)."""
    channel = clicked_channel(event)
    seen = st.session_state.setdefault(state.CLICKS_SEEN, {})
    if channel is None:
        seen.pop(chart, None)
        return
    if seen.get(chart) == (layer, channel):
        return
    seen[chart] = (layer, channel)
    current = st.session_state.get(state.SELECTION)
    if current is not None and (current.layer, current.channel) == (layer, channel):
        st.session_state[state.PICKED] = (layer, channel)
        return
    choose(layer, channel)
    st.rerun()


def unit_link(layer: str, channel: int, *, always: bool = False) -> None:
    """After a click chose this filter (or ``always``): a link to everything about it on the One filter page."""
    if always or st.session_state.get(state.PICKED) == (layer, channel):
        st.page_link(UNIT_PAGE, label=f"Everything about filter {channel}", icon=":material/center_focus_strong:")
