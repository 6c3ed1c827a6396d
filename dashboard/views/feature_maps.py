"""Feature maps: what each filter of the chosen layer responds to in the image."""

from __future__ import annotations

import streamlit as st

from dashboard import figures
from dashboard.data import atlases, cache
from dashboard.share import present
from dashboard.sidebar import layer_choice
from dashboard.views.declare import Choice, Context, Flag, Number, Page, Setting, View, show, widget
from dashboard.words import heading, terms
from vis_core.featuremaps import ChannelPages

AUTOMATIC = "Automatic"
SHOWS = ("All (paged)", "Top-N by mean", "Top-N by max")


def _top_n_max(context: Context) -> int:
    shape = context.handle.layers[context.layer].output_shape
    if len(shape) != 3:
        return 1
    channels, rows, cols = shape
    return min(64, figures.page_size_for(rows, cols, channels), channels)


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
)


def work(view: View):
    """Every layer's maps for the photo (one forward pass) and the photo as the model sees it."""
    handle, entry = view.handle, view.image
    maps = cache.feature_maps(handle.key, entry.key, handle, entry.image)
    return maps, cache.model_view(handle.key, entry.key, handle, entry.image)


def draw(view: View, results) -> None:
    handle, layer, channel = view.handle, view.layer, view.channel
    maps, picture = results
    heading.show(
        "Feature maps",
        "Each layer has many **filters**; each filter looks for one pattern everywhere in the photo "
        "and produces a **feature map** (its *activations*): a grid with a large number where the pattern is "
        "found. Early layers find edges and colours at fine detail; deeper layers find parts of objects in "
        "coarse, sparse maps. Click any small map below to choose that filter.",
    )
    activation = maps.activations[layer]
    summary = maps.channel_summary(layer)  # per channel: strength, zeros, flat or not a number
    info = handle.layers[layer]
    channels, rows_px, cols_px = activation.shape
    # A layer without a ReLU at its end (MobileNetV2's blocks: "linear bottlenecks") has negative
    # values too: drawn on a two-sided scale centred on zero, so "not found" is one colour.
    signed = bool((activation < 0).any())
    with st.sidebar:
        st.subheader("Feature maps")
        show_what = widget(view, PAGE, "fm_show")
        colorscale = widget(view, PAGE, "fm_colorscale")
        per_channel = widget(view, PAGE, "fm_per_channel")
        overlay = widget(view, PAGE, "fm_overlay")
        opacity = widget(view, PAGE, "fm_opacity", disabled=not overlay)
    if colorscale == AUTOMATIC:
        colorscale = "RdBu_r" if signed else "Viridis"
    st.caption(f"**{layer}**: {layer_choice.describe(handle, layer)}.")
    if signed and rows_px * cols_px > 1:
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

    if rows_px * cols_px == 1:
        st.subheader(f"{layer} is a vector of {channels} numbers")
        labels = list(handle.labels) if channels == len(handle.labels) else None
        st.plotly_chart(
            figures.vector_bars(
                activation[:, 0, 0], title=f"{layer} ({info.type_name})", highlight=channel, labels=labels
            ),
            width="stretch",
            key="fm_vector",
        )
        st.caption(f"This layer has no height or width left: each bar is one unit. Unit {channel} is highlighted.")
    else:
        big, facts = st.columns([2, 1])
        with big:
            background = picture if overlay else None
            st.plotly_chart(
                figures.channel_heatmap(
                    activation[channel],
                    title=f"{layer} · filter {channel}",
                    background=background,
                    opacity=opacity,
                    colorscale=colorscale,
                    signed=signed,
                ),
                width="stretch",
                key="fm_channel",
            )
        with facts:
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
                    f"Filter {channel} gives the same value ({summary.max[channel]:.4g}) everywhere "
                    "in this image, so its "
                    "map is one flat colour: what it looks for is not in this picture"
                    + (" (its ReLU switched it off everywhere)." if summary.max[channel] == 0 else ".")
                    + " Try another filter, or the Top-N view."
                )
            atlases.show_entry(handle, layer, channel)  # what it looks for, when the model has an atlas
            layer_choice.unit_link(layer, channel, always=True)

        present.fold()  # a slide: the chosen filter's map and its numbers
        st.subheader(f"All filters of {layer}")
        if show_what == SHOWS[0]:
            paging = ChannelPages(channels, figures.page_size_for(rows_px, cols_px, 64))
            page = 1
            if paging.pages > 1:
                page = st.number_input(
                    f"Page (of {paging.pages}, {paging.size} maps each)",
                    1,
                    paging.pages,
                    paging.page_of(channel),
                    key=f"fm_page_{layer}",
                )
            shown = paging.channels(page)
            st.caption(
                f"Channels {shown[0]}–{shown[-1]} of {channels}. Hover a map for its values; click it to choose it."
            )
        else:
            by = "mean" if show_what.endswith("mean") else "max"
            top_n = widget(view, PAGE, "fm_top_n")
            shown = maps.top_channels(layer, top_n, by=by)
            st.caption(
                f"The {top_n} filters with the highest {by} activation, strongest first. Click one to choose it."
            )
        clicked = st.plotly_chart(
            figures.channel_mosaic(
                activation,
                shown,
                colorscale=colorscale,
                per_channel_scale=per_channel,
                highlight=channel,
                signed=signed,
            ),
            width="stretch",
            key="fm_mosaic",
            on_select="rerun",
            selection_mode="points",
        )
        layer_choice.pick(clicked, layer, "fm_mosaic")
        layer_choice.unit_link(layer, channel)

    present.fold()
    st.subheader("From edges to objects: every block at a glance")
    st.caption(
        "Left axis: the average activation of each block's output; right axis: the share of its values that are "
        "exactly zero. Only a block that ends in a ReLU outputs exact zeros; one that ends in a linear layer (most of "
        "MobileNetV2's blocks, by design) sits at 0%, so a flat line there means no ReLU, not a busy block."
    )
    block_names = {b.name for b in handle.blocks()}
    stats = [row for row in maps.stats() if row.name in block_names]
    st.plotly_chart(figures.layer_profile(stats, selected=info.block), width="stretch", key="fm_profile")


PAGE = Page("feature_maps", SETTINGS, work, draw)

if __name__ == "__main__":
    show(PAGE)
