"""Filters: the learned kernels of a convolution layer.

One numbering of filters: the page starts at the convolution whose filters are the sidebar's
(the last one inside the chosen block that makes as many maps as the block gives), and marks the
sidebar's filter there. A convolution inside the block with its own count (MobileNetV2's 384-wide
expansion inside a 64-filter block) is said to be numbered on its own, and no sidebar filter is
marked in it; a click there chooses that convolution and its filter in the sidebar.
"""

from __future__ import annotations

import streamlit as st

from dashboard.data import cache
from dashboard.share import present
from dashboard.views.declare import Choice, Context, Page, Setting, View, show, widget
from dashboard.views.parts import kernels as kernel_figures
from dashboard.words import heading, terms
from vis_core import ModelHandle
from vis_core.filters import conv_layers

#: The convolution shown (a setting; its start follows the sidebar's layer).
LAYER_KEY = "fl_layer"


def _convolutions(context: Context) -> list[str]:
    """The convolutions inside the sidebar's layer (or all of them, if it has none)."""
    return conv_layers(context.handle, context.layer) or conv_layers(context.handle)


def numbered_as_sidebar(handle: ModelHandle, conv: str, layer: str) -> bool:
    """Whether ``conv``'s filters are the sidebar's filters of ``layer``: the layer itself, or the
    last convolution inside it that makes as many maps as the layer gives."""
    if conv == layer:
        return True
    inside = conv_layers(handle, layer)
    channels = handle.layers[layer].channels
    same = [name for name in inside if handle.layers[name].channels == channels]
    return bool(same) and conv == same[-1]


def _start(context: Context) -> str:
    options = _convolutions(context)
    same = [name for name in options if numbered_as_sidebar(context.handle, name, context.layer)]
    return (same or options)[0] if options else ""


def _labels(context: Context):
    def label(name: str) -> str:
        mark = " · the sidebar's filters" if numbered_as_sidebar(context.handle, name, context.layer) else ""
        return f"{name} · {context.handle.layers[name].shape_text}{mark}"

    return label


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

SETTINGS = (
    Setting(
        LAYER_KEY,
        "conv",
        Choice(_convolutions, "a convolution:", labels=_labels),
        _start,
        "Convolution",
        help=terms.help(
            "filter", "The convolutions inside the layer chosen in the sidebar (or all of them, if it has none)."
        ),
        follows=True,
    ),
    Setting(
        "fl_norm",
        "scaling",
        Choice(("each filter", "whole layer")),
        "each filter",
        "Colour scaling",
        "radio",
        "Each filter: every kernel uses the full colour range, so its shape shows. Whole layer: one range, so strong "
        "and weak filters compare.",
    ),
    Setting("fl_reduce", "summary", Choice(("L2 norm", "mean")), "L2 norm", "Summarise input channels by", "radio"),
)


def work(view: View):
    """The chosen convolution's weights (None for a model without convolutions)."""
    layer = view.get(LAYER_KEY)
    return cache.layer_filters(view.handle.key, layer, view.handle) if layer else None


def draw(view: View, kernels) -> None:
    handle = view.handle
    heading.show(
        "Filters",
        "A convolution layer is a set of small **filters**: grids of learned numbers that slide over "
        "the image. Where the picture matches a filter's pattern, that filter's feature map lights up. "
        "In the first layer of a colour network each filter is a tiny colour picture of what it looks "
        "for; deeper filters combine the maps of the layer before. Click a filter to choose it.",
    )
    if kernels is None:
        st.info(f"{handle.name} has no convolution layers, so there are no filters to show.")
        st.stop()
    layer = widget(view, PAGE, LAYER_KEY)
    out_channels, in_per_group, kh, kw = kernels.weight.shape
    ours = numbered_as_sidebar(handle, layer, view.layer)
    # the sidebar's filter, where this convolution's filters are the sidebar's; else none is marked
    channel = view.channel if ours and view.channel < out_channels else None
    if not ours:
        st.caption(
            f"{layer} has {out_channels} filters of its own, numbered 0–{out_channels - 1}; they are not the "
            f"sidebar's filters of {view.layer} (0–{view.info.channels - 1}), so none is marked. Click one to choose "
            "it, and this convolution, in the sidebar."
        )
    shown_channel = channel if channel is not None else 0
    st.info(
        f"**{layer}**: {out_channels} filters of {kh}×{kw}, each over {in_per_group} input "
        f"channel{'s' if in_per_group > 1 else ''}. {EXPLAIN[kernels.kind]}"
    )

    normalize, reduce = view.get("fl_norm"), view.get("fl_reduce")
    with st.sidebar:
        if kernels.kind in ("rgb", "standard", "grouped"):
            st.subheader("Filters")
        if kernels.kind == "rgb":
            normalize = widget(view, PAGE, "fl_norm")
        elif kernels.kind in ("standard", "grouped"):
            reduce = widget(view, PAGE, "fl_reduce")

    if kernels.kind == "rgb":
        kernel_figures.colour(kernels, layer, channel, shown_channel, normalize)
    elif kernels.kind == "pointwise":
        kernel_figures.matrix(kernels, layer, channel)
    else:
        kernel_figures.mosaic(kernels, layer, channel, shown_channel, reduce)
    present.fold()
    kernel_figures.weights(kernels, layer, channel, shown_channel)


PAGE = Page("filters", SETTINGS, work, draw)

if __name__ == "__main__":
    show(PAGE)
