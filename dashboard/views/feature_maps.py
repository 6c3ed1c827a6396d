"""Feature maps: what each filter of the chosen layer responds to in the image."""

from __future__ import annotations

import streamlit as st

from dashboard import figures
from dashboard.data import cache
from dashboard.share import present
from dashboard.sidebar import layer_choice
from dashboard.views.declare import Choice, Context, Flag, Number, Page, Setting, View, show, widget
from dashboard.views.parts import feature_map_figures as map_figures
from dashboard.words import heading, terms
from vis_core.featuremaps import ChannelPages

AUTOMATIC = "Automatic"
SHOWS = map_figures.SHOWS


def _top_n_max(context: Context) -> int:
    shape = context.handle.layers[context.layer].output_shape
    if len(shape) != 3:
        return 1
    channels, rows, cols = shape
    return min(64, figures.page_size_for(rows, cols, channels), channels)


def paging(context: Context | View) -> ChannelPages:
    """The pages of the mosaic of every map of the layer (as many maps a page as fit)."""
    shape = context.handle.layers[context.layer].output_shape
    if len(shape) != 3:
        return ChannelPages(1, 1)
    channels, rows, cols = shape
    return ChannelPages(channels, figures.page_size_for(rows, cols, 64))


def _pages(context: Context) -> int:
    return paging(context).pages


def _page_start(context: Context) -> int:
    """The page that holds the sidebar's filter (it moves with the filter unless the viewer turned it)."""
    pages = paging(context)
    return pages.page_of(min(context.channel, pages.count - 1))


def _page_label(context: Context) -> str:
    pages = paging(context)
    return f"Page (of {pages.pages}, {pages.size} maps each)"


SETTINGS = (
    Setting(
        "fm_show",
        "show",
        Choice(SHOWS),
        SHOWS[0],
        "Channels to show",
        "radio",
        terms.help(
            "filter",
            "Every filter, page by page, or only the N that respond most on average (mean) or at one spot (max).",
        ),
    ),
    Setting(
        "fm_colorscale",
        "colors",
        Choice((AUTOMATIC, *figures.COLORSCALES)),
        AUTOMATIC,
        "Colour scale",
        help=terms.help(
            "signed map",
            "Automatic: red and blue around white for maps with negative values, Viridis (dark to yellow) otherwise.",
        ),
    ),
    Setting(
        "fm_per_channel",
        "each",
        Flag(),
        True,
        "Scale each map on its own",
        "toggle",
        "On: every map uses its full colour range, so shapes stand out. Off: one range for all, so strengths can be "
        "compared.",
    ),
    Setting("fm_overlay", "overlay", Flag(), True, "Overlay on the image", "toggle"),
    Setting("fm_opacity", "opacity", Number(0.0, 1.0, 0.05), 0.6, "Overlay opacity", "slider"),
    Setting("fm_top_n", "top", Number(1, _top_n_max), lambda context: min(16, _top_n_max(context)), "N", "slider"),
    Setting("fm_page", "page", Number(1, _pages), _page_start, _page_label, "number", follows=True),
)


def work(view: View):
    """Every layer's maps for the photo (one forward pass) and the photo as the model sees it."""
    handle, entry = view.handle, view.image
    maps = cache.feature_maps(handle.key, entry.key, handle, entry.image)
    return maps, cache.model_view(handle.key, entry.key, handle, entry.image)


def draw(view: View, results) -> None:
    handle, layer = view.handle, view.layer
    maps, picture = results
    heading.show(
        "Feature maps",
        "Each layer has many **filters**; each filter looks for one pattern everywhere in the photo "
        "and produces a **feature map** (its *activations*): a grid with a large number where the pattern is "
        "found. Early layers find edges and colours at fine detail; deeper layers find parts of objects in "
        "coarse, sparse maps. Click any small map below to choose that filter.",
    )
    activation = maps.activations[layer]
    # A layer without a ReLU at its end (MobileNetV2's blocks: "linear bottlenecks") has negative
    # values too: drawn on a two-sided scale centred on zero, so "not found" is one colour.
    signed = bool((activation < 0).any())
    with st.sidebar:
        st.subheader("Feature maps")
        for key in ("fm_show", "fm_colorscale", "fm_per_channel", "fm_overlay"):
            widget(view, PAGE, key)
        widget(view, PAGE, "fm_opacity", disabled=not view.get("fm_overlay"))
    colorscale = view.get("fm_colorscale")
    if colorscale == AUTOMATIC:
        colorscale = "RdBu_r" if signed else "Viridis"
    st.caption(f"**{layer}**: {layer_choice.describe(handle, layer)}.")
    if signed and activation.shape[1] * activation.shape[2] > 1:
        colours = (
            "**Red** means the filter's pattern is there, **blue** that its opposite is; near zero (neither) the "
            "map is white, or clear over the photo."
            if colorscale == "RdBu_r"
            else "The colour scale's middle is zero."
        )
        st.info(
            f"This layer ends without a ReLU, so its maps have negative values too. {colours}",
            icon=":material/contrast:",
        )
    if activation.shape[1] * activation.shape[2] == 1:
        map_figures.vector(view, activation)
    else:
        map_figures.one_map(view, maps, picture, colorscale, signed)
        present.fold()  # a slide: the chosen filter's map and its numbers
        map_figures.all_maps(view, PAGE, maps, paging(view), colorscale, signed)
    present.fold()
    map_figures.profile(view, maps)


PAGE = Page("feature_maps", SETTINGS, work, draw)

if __name__ == "__main__":
    show(PAGE)
