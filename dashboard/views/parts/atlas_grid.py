"""The Atlas page's grid of a layer's filters (a page of tiles, each what one filter looks for,
in the declared order) and the chosen filter large: its picture, where it fires on the photo,
its numbers on this photo and over the collection, and the photo patches that excite it most."""

from __future__ import annotations

import streamlit as st

from dashboard import figures, state
from dashboard.data import atlases, cache
from dashboard.sidebar import layer_choice
from dashboard.views.declare import Context, Page, View, widget
from dashboard.views.parts.atlas_build import photos
from dashboard.words import escape
from vis_core.featuremaps import ChannelPages

COLUMNS = 8
#: Tiles per page of the grid (whole rows of :data:`COLUMNS`).
PAGE_SIZE = 32
#: The grid's orders: by channel number, or strongest on the sidebar's photo first.
ORDERS = {"channel number": None, "mean activation on this photo": "mean", "peak activation on this photo": "max"}


# ------------------------------------------ what the page's grid settings offer and where they start
def order(context: Context | View) -> list[int]:
    """The layer's filters in the grid's order (by channel number, or strongest on the photo first)."""
    handle, layer = context.handle, context.values.get(state.ATLAS_LAYER)
    channels = handle.layers[layer].channels
    by = ORDERS[context.values.get("at_order", "channel number")]
    if by is None or context.image is None:
        return list(range(channels))
    maps = cache.feature_maps(handle.key, context.image.key, handle, context.image.image)
    return list(maps.channel_summary(layer).strongest(channels, by=by))


def paging(context: Context) -> ChannelPages:
    layer = context.values.get(state.ATLAS_LAYER)
    return ChannelPages(context.handle.layers[layer].channels if layer in context.handle.layers else 1, PAGE_SIZE)


def pages(context: Context) -> int:
    return paging(context).pages


def page_start(context: Context) -> int:
    """The page of the grid that holds the chosen filter (it moves with the filter unless chosen)."""
    if context.values.get(state.ATLAS_LAYER) not in context.handle.layers:
        return 1
    return paging(context).page_of(order(context).index(context.values.get(state.ATLAS_UNIT, 0)))


def page_label(context: Context) -> str:
    found = paging(context)
    return f"Page (of {found.pages}, {found.size} filters each)"


# ---------------------------------------------------------------------------- drawing


def _choose(layer: str, channel: int) -> None:
    st.session_state[state.ATLAS_UNIT] = channel  # the page's filter setting (this button is its widget)
    layer_choice.choose(layer, channel)  # the sidebar's filter too, so every page shows it


def grid(view: View, page: Page, atlas, order: list[int], summary, order_by: str | None, size: int) -> None:
    """The page of tiles the ``at_page`` setting shows, in ``order``."""
    layer, unit_index = view.get(state.ATLAS_LAYER), view.get(state.ATLAS_UNIT)
    channels = view.handle.layers[layer].channels
    st.subheader(f"The filters of {layer}")
    paging = ChannelPages(channels, size)
    if paging.pages > 1:
        widget(view, page, "at_page")
    places = paging.channels(view.get("at_page"))
    shown = [order[slot] for slot in places]
    st.caption(
        (
            f"Filters {shown[0]}–{shown[-1]} of {channels}"
            if order_by is None
            else f"Places {places[0] + 1}–{places[-1] + 1} of {channels}, strongest "
            f"{order_by} activation on {escape.markdown(view.image.label)} first"
        )
        + ". Each picture is what one filter looks for; press its number to see it large."
    )
    for row in range(0, len(shown), COLUMNS):
        for column, channel in zip(st.columns(COLUMNS), shown[row : row + COLUMNS]):
            with column:
                tile, damaged = atlases.entry(atlas, layer, channel)
                if tile is not None:
                    st.image(tile.render, width="stretch", clamp=True, alt=f"what filter {channel} looks for")
                else:
                    st.caption("damaged" if damaged else "not built yet")
                strength = "" if order_by is None else f" · {getattr(summary, order_by)[channel]:.2f}"
                st.button(
                    f"{channel}{strength}",
                    key=f"at_tile_{channel}",
                    on_click=_choose,
                    args=(layer, channel),
                    type="primary" if channel == unit_index else "secondary",
                    width="stretch",
                )


def unit(view: View, atlas, maps, picture, summary) -> None:
    """The chosen filter large, where it fires, its numbers and its photo patches."""
    layer, index, entry = view.get(state.ATLAS_LAYER), view.get(state.ATLAS_UNIT), view.image
    found, damaged = atlases.entry(atlas, layer, index)
    st.subheader(f"Filter {index} of {layer}")
    if damaged:
        st.warning(escape.markdown(damaged))
    layer_choice.unit_link(layer, index)
    left, middle, right = st.columns([1, 1, 1])
    with left:
        if found is not None:
            caption = "What it looks for: the picture that excites it most"
            st.image(found.render, caption=caption, width="stretch", alt=f"what filter {index} looks for, large")
        elif not damaged:
            st.info(f"Filter {index} is not in the atlas yet.")
    with middle:
        title = f"Where filter {index} fires on {escape.plotly(entry.label)}"
        figure = figures.channel_heatmap(maps.activations[layer][index], title=title, background=picture, height=360)
        st.plotly_chart(figure, width="stretch", key="at_where")
    with right:
        st.metric("On this photo: mean activation", f"{summary.mean[index]:.3f}")
        st.metric("Rank on this photo (by mean)", f"{summary.rank(index)} of {view.handle.layers[layer].channels}")
        if found is not None:
            stats = found.stats
            st.metric("Over the collection: mean activation", f"{stats['mean']:.3f}")
            st.metric("Strongest response seen", f"{stats['max']:.3f}")
            st.metric("Fires on", f"{stats['fires_on']} of {stats['images']} photos")
            st.metric("Zeros", f"{stats['zero_share']:.0%}")
    if found is not None and found.examples:
        st.subheader("The photo patches that excite it most")
        st.image(
            [example.patch for example in found.examples],
            caption=[atlases.example_caption(example) for example in found.examples],
            width=128,
            clamp=True,
        )
        st.caption(
            "Best first, at most one per photo, each cropped to what the filter can see (its receptive field), "
            f"with the photo's name and the filter's activation; from {photos(atlas.collection)}. The pictures "
            f"were painted in {atlas.settings['steps']} steps at {atlas.settings['size']} px."
        )
