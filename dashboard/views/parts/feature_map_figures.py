"""The Feature maps page's figures: a vector layer as bars; else the chosen filter's map large with
its numbers, every map of the layer as a clickable mosaic (a page of them, or the strongest N),
and every block's average activation and share of zeros."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import figures
from dashboard.data import atlases
from dashboard.sidebar import layer_choice
from dashboard.views.declare import Page, View, widget
from vis_core import FeatureMaps
from vis_core.featuremaps import ChannelPages

SHOWS = ("All (paged)", "Top-N by mean", "Top-N by max")


def vector(view: View, activation: np.ndarray) -> None:
    """A layer with no height or width left: one bar per unit."""
    handle, layer, channel = view.handle, view.layer, view.channel
    channels = activation.shape[0]
    st.subheader(f"{layer} is a vector of {channels} numbers")
    labels = list(handle.labels) if channels == len(handle.labels) else None
    title = f"{layer} ({view.info.type_name})"
    figure = figures.vector_bars(activation[:, 0, 0], title=title, highlight=channel, labels=labels)
    st.plotly_chart(figure, width="stretch", key="fm_vector")
    st.caption(f"This layer has no height or width left: each bar is one unit. Unit {channel} is highlighted.")


def _facts(view: View, summary, shape: tuple[int, int, int]) -> None:
    handle, layer, channel = view.handle, view.layer, view.channel
    channels, rows_px, cols_px = shape
    st.metric("Mean activation", f"{summary.mean[channel]:.4f}")
    st.metric("Strongest response", f"{summary.max[channel]:.4f}")
    st.metric("Zeros", f"{summary.zero_fraction[channel]:.0%}")
    st.metric("Rank in layer (by mean)", f"{summary.rank(channel)} of {channels}")
    st.caption(
        f"This map is {cols_px}×{rows_px}: each cell covers about "
        f"{handle.input_size[1] / cols_px:.0f} pixels of the {handle.input_size[1]}-pixel input."
    )
    if not summary.finite[channel]:
        st.warning(f"Filter {channel} produced values that are not numbers (NaN or infinite) for this image.")
    elif summary.flat[channel]:
        st.info(
            f"Filter {channel} gives the same value ({summary.max[channel]:.4g}) everywhere in this image, so its "
            "map is one flat colour: what it looks for is not in this picture"
            + (" (its ReLU switched it off everywhere)." if summary.max[channel] == 0 else ".")
            + " Try another filter, or the Top-N view."
        )
    atlases.show_entry(handle, layer, channel)  # what it looks for, when the model has an atlas
    layer_choice.unit_link(layer, channel, always=True)


def one_map(view: View, maps: FeatureMaps, picture, colorscale: str, signed: bool) -> None:
    """The sidebar's filter's map, large (over the photo when asked), and its numbers."""
    layer, channel = view.layer, view.channel
    activation = maps.activations[layer]
    big, facts = st.columns([2, 1])
    with big:
        figure = figures.channel_heatmap(
            activation[channel],
            title=f"{layer} · filter {channel}",
            background=picture if view.get("fm_overlay") else None,
            opacity=view.get("fm_opacity"),
            colorscale=colorscale,
            signed=signed,
        )
        st.plotly_chart(figure, width="stretch", key="fm_channel")
    with facts:
        _facts(view, maps.channel_summary(layer), activation.shape)


def all_maps(view: View, page: Page, maps: FeatureMaps, pages: ChannelPages, colorscale: str, signed: bool) -> None:
    """Every map of the layer, a page at a time (``pages``) or the strongest N; a click chooses a filter."""
    layer, channel = view.layer, view.channel
    activation = maps.activations[layer]
    channels, show_what = activation.shape[0], view.get("fm_show")
    st.subheader(f"All filters of {layer}")
    if show_what == SHOWS[0]:
        if pages.pages > 1:
            widget(view, page, "fm_page")
        shown = pages.channels(view.get("fm_page"))
        st.caption(f"Channels {shown[0]}–{shown[-1]} of {channels}. Hover a map for its values; click it to choose it.")
    else:
        by = "mean" if show_what.endswith("mean") else "max"
        top_n = widget(view, page, "fm_top_n")
        shown = maps.top_channels(layer, top_n, by=by)
        st.caption(f"The {top_n} filters with the highest {by} activation, strongest first. Click one to choose it.")
    figure = figures.channel_mosaic(
        activation,
        shown,
        colorscale=colorscale,
        per_channel_scale=view.get("fm_per_channel"),
        highlight=channel,
        signed=signed,
    )
    clicked = st.plotly_chart(figure, width="stretch", key="fm_mosaic", on_select="rerun", selection_mode="points")
    layer_choice.pick(clicked, layer, "fm_mosaic")
    layer_choice.unit_link(layer, channel)


def profile(view: View, maps: FeatureMaps) -> None:
    """Every block's average activation and share of exact zeros."""
    st.subheader("From edges to objects: every block at a glance")
    st.caption(
        "Left axis: the average activation of each block's output; right axis: the share of its values that are "
        "exactly zero. Only a block that ends in a ReLU outputs exact zeros; one that ends in a linear layer (most of "
        "MobileNetV2's blocks, by design) sits at 0%, so a flat line there means no ReLU, not a busy block."
    )
    block_names = {b.name for b in view.handle.blocks()}
    stats = [row for row in maps.stats() if row.name in block_names]
    selected = view.info.block
    st.plotly_chart(figures.layer_profile(stats, selected=selected), width="stretch", key="fm_profile")
