"""The Filters page's figures of one convolution's kernels: a colour first layer as pictures, a
1×1 layer as a matrix, any other as a mosaic of its filters (each summarised over its input
channels) with the chosen filter's kernels, and the layer's weights and filter strengths."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import figures
from dashboard.share import present
from dashboard.sidebar import layer_choice
from vis_core.featuremaps import ChannelPages
from vis_core.filters import Filters


def colour(kernels: Filters, layer: str, channel: int | None, shown_channel: int, normalize: str) -> None:
    """A first layer on colour images: each filter a colour picture, then the chosen one channel by channel."""
    images = kernels.rgb("filter" if normalize == "each filter" else "layer")
    clicked = st.plotly_chart(
        figures.rgb_mosaic(images, highlight=channel),
        width="stretch",
        key="fl_rgb",
        on_select="rerun",
        selection_mode="points",
    )
    layer_choice.pick(clicked, layer, "fl_rgb")
    layer_choice.unit_link(layer, shown_channel)
    present.fold()  # a slide: the layer's filters
    st.subheader(f"Filter {shown_channel}, channel by channel")
    st.plotly_chart(
        figures.channel_mosaic(
            kernels.weight[shown_channel],
            [0, 1, 2],
            columns=3,
            colorscale="RdBu_r",
            per_channel_scale=False,
            tile_px=140,
            quantity="weight",
        ),
        width="stretch",
        key="fl_rgb_channels",
    )
    st.caption("Tiles 0, 1 and 2 are the red, green and blue weights. Hover for exact values.")


def matrix(kernels: Filters, layer: str, channel: int | None) -> None:
    """A 1×1 layer: filters × input channels."""
    st.plotly_chart(
        figures.weight_matrix(kernels.matrix(), title=f"{layer}: filters × input channels", highlight=channel),
        width="stretch",
        key="fl_matrix",
    )


def mosaic(kernels: Filters, layer: str, channel: int | None, shown_channel: int, reduce: str) -> None:
    """Every filter summarised over its input channels (the page that holds the chosen one), then
    the chosen filter's kernels, one per input channel."""
    out_channels, in_per_group, kh, kw = kernels.weight.shape
    how = "l2" if kernels.kind in ("standard", "grouped") and reduce == "L2 norm" else "mean"
    maps, signed = kernels.reduced(how), kernels.signed(how)
    paging = ChannelPages(out_channels, figures.page_size_for(kh, kw, 256))
    shown = paging.channels(paging.page_of(shown_channel))  # the page that holds the chosen filter
    clicked = st.plotly_chart(
        figures.channel_mosaic(
            maps,
            shown,
            colorscale="RdBu_r" if signed else "Viridis",
            per_channel_scale=False,
            highlight=channel,
            columns=16,
            tile_px=56,
            signed=signed,
            quantity="weight" if signed else "weight strength",
        ),
        width="stretch",
        key="fl_mosaic",
        on_select="rerun",
        selection_mode="points",
    )
    layer_choice.pick(clicked, layer, "fl_mosaic")
    layer_choice.unit_link(layer, shown_channel)
    st.caption(
        f"Filters {shown[0]}–{shown[-1]} of {out_channels}"
        + ("" if signed else ", each the L2 norm over its input channels")
        + ". Hover for values."
    )
    present.fold()
    if kernels.kind in ("standard", "grouped") and in_per_group > 1:
        st.subheader(f"Filter {shown_channel}: its {in_per_group} kernels, one per input channel")
        limit = figures.page_size_for(kh, kw, 128)
        st.plotly_chart(
            figures.channel_mosaic(
                kernels.weight[shown_channel],
                list(range(min(in_per_group, limit))),
                colorscale="RdBu_r",
                per_channel_scale=False,
                columns=16,
                tile_px=48,
                quantity="weight",
            ),
            width="stretch",
            key="fl_inputs",
        )


def weights(kernels: Filters, layer: str, channel: int | None, shown_channel: int) -> None:
    """Every weight's histogram and every filter's strength (dead filters named)."""
    left, right = st.columns(2)
    with left:
        st.plotly_chart(
            figures.weight_histogram(kernels.weight, title=f"All {kernels.weight.size:,} weights of {layer}"),
            width="stretch",
            key="fl_hist",
        )
    with right:
        dead = kernels.dead()
        st.plotly_chart(figures.norm_bars(kernels.norms, dead=dead, highlight=channel), width="stretch", key="fl_norms")
    if dead:
        st.warning(f"{len(dead)} filter(s) have almost no weight (dead or unused): {', '.join(map(str, dead[:20]))}.")
    else:
        st.caption(
            f"Filter {shown_channel} has strength {kernels.norms[shown_channel]:.3f}; the median is "
            f"{float(np.median(kernels.norms)):.3f}. No filter is dead."
        )
