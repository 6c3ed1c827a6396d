"""Filters: the learned kernels of a convolution layer."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard import cache, figures, glossary, heading, layer_choice, sidebar, state, talks
from vis_core.featuremaps import ChannelPages
from vis_core.filters import conv_layers

selection = sidebar.current()
handle = selection.handle

heading.show(
    "Filters",
    "A convolution layer is a set of small **filters**: grids of learned numbers that slide over "
    "the image. Where the picture matches a filter's pattern, that filter's feature map lights up. "
    "In the first layer of a colour network each filter is a tiny colour picture of what it looks "
    "for; deeper filters combine the maps of the layer before. Click a filter to choose it.",
)

inside = conv_layers(handle, selection.layer)
every = conv_layers(handle)
if not every:
    st.info(f"{handle.name} has no convolution layers, so there are no filters to show.")
    st.stop()
options = inside or every
if st.session_state.get(state.FILTERS_LAYER) not in options:
    st.session_state[state.FILTERS_LAYER] = options[0]
layer = st.selectbox(
    "Convolution",
    options,
    key=state.FILTERS_LAYER,
    format_func=lambda name: f"{name} · {handle.layers[name].shape_text}",
    help=glossary.help(
        "filter", "The convolutions inside the layer chosen in the sidebar (or all of them, if it has none)."
    ),
)
kernels = cache.layer_filters(handle.key, layer, handle)
out_channels, in_per_group, kh, kw = kernels.weight.shape
channel = min(selection.channel, out_channels - 1)
if channel != selection.channel:
    st.caption(f"The sidebar's filter {selection.channel} does not exist here; showing filter {channel}.")

EXPLAIN = {
    "rgb": "This is a first layer on colour images: each square is one filter, drawn as a colour picture "
    "(grey is zero; brighter red, green or blue means the filter looks for that colour there).",
    "gray": "Each square is one filter on a greyscale image: red where it adds brightness, blue where it subtracts.",
    "depthwise": "A depthwise layer: each filter looks at just one channel of the layer before, for a spatial pattern.",
    "pointwise": "A 1×1 layer: its filters have no spatial extent and only mix channels, so the layer is a matrix "
    "(one row per filter, one column per input channel).",
    "grouped": "A grouped convolution: each filter sees only its group of input channels.",
    "standard": "Each filter has one small kernel per input channel; here they are summarised per filter.",
}
st.info(
    f"**{layer}**: {out_channels} filters of {kh}×{kw}, each over {in_per_group} input "
    f"channel{'s' if in_per_group > 1 else ''}. {EXPLAIN[kernels.kind]}"
)

with st.sidebar:
    if kernels.kind in ("rgb", "standard", "grouped"):
        st.subheader("Filters")
    if kernels.kind == "rgb":
        normalize = st.radio(
            "Colour scaling",
            ["each filter", "whole layer"],
            key="fl_norm",
            help="Each filter: every kernel uses the full colour range, so its shape shows. "
            "Whole layer: one range, so strong and weak filters compare.",
        )
    elif kernels.kind in ("standard", "grouped"):
        reduce = st.radio("Summarise input channels by", ["L2 norm", "mean"], key="fl_reduce")

if kernels.kind == "rgb":
    images = kernels.rgb("filter" if normalize == "each filter" else "layer")
    clicked = st.plotly_chart(
        figures.rgb_mosaic(images, highlight=channel),
        width="stretch",
        key="fl_rgb",
        on_select="rerun",
        selection_mode="points",
    )
    layer_choice.pick(clicked, layer, "fl_rgb")
    layer_choice.unit_link(layer, channel)
    talks.fold()  # a slide: the layer's filters
    st.subheader(f"Filter {channel}, channel by channel")
    st.plotly_chart(
        figures.channel_mosaic(
            kernels.weight[channel],
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
elif kernels.kind == "pointwise":
    st.plotly_chart(
        figures.weight_matrix(kernels.matrix(), title=f"{layer}: filters × input channels", highlight=channel),
        width="stretch",
        key="fl_matrix",
    )
else:
    how = "l2" if kernels.kind in ("standard", "grouped") and reduce == "L2 norm" else "mean"
    maps, signed = kernels.reduced(how), kernels.signed(how)
    paging = ChannelPages(out_channels, figures.page_size_for(kh, kw, 256))
    shown = paging.channels(paging.page_of(channel))  # the page that holds the chosen filter
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
    layer_choice.unit_link(layer, channel)
    st.caption(
        f"Filters {shown[0]}–{shown[-1]} of {out_channels}"
        + ("" if signed else ", each the L2 norm over its input channels")
        + ". Hover for values."
    )
    talks.fold()
    if kernels.kind in ("standard", "grouped") and in_per_group > 1:
        st.subheader(f"Filter {channel}: its {in_per_group} kernels, one per input channel")
        limit = figures.page_size_for(kh, kw, 128)
        st.plotly_chart(
            figures.channel_mosaic(
                kernels.weight[channel],
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

talks.fold()
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
        f"Filter {channel} has strength {kernels.norms[channel]:.3f}; the median is "
        f"{float(np.median(kernels.norms)):.3f}. No filter is dead."
    )
