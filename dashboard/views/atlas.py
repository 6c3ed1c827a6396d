"""Atlas: every filter of a layer at a glance, what each looks for, and where it fires in the photo."""

from __future__ import annotations

import streamlit as st

import vis_core
from dashboard import state
from dashboard.data import atlases, cache
from dashboard.sidebar import layer_choice
from dashboard.views.declare import Choice, Context, Number, Page, Setting, View, show, widget
from dashboard.views.parts import atlas_build, atlas_grid
from dashboard.words import escape, heading, terms
from dashboard.work import jobs

PAGE_SIZE, ORDERS = atlas_grid.PAGE_SIZE, atlas_grid.ORDERS
#: The engine's default build settings (``vis_core.build_atlas``), offered before a model has an atlas.
DEFAULTS = dict(steps=256, size=128, top_k=9)


def _layers(context: Context) -> list[str]:
    """The layers the page offers: the blocks with a map, the sidebar's layer, and any layer built."""
    atlas, _ = atlases.lookup(context.handle)
    built = set(atlas.layers) if atlas is not None else set()
    return [
        name
        for name, info in context.handle.layers.items()
        if info.is_spatial and (info.is_block or name == context.layer or name in built)
    ]


def _layer_start(context: Context) -> str:
    options = _layers(context)
    if context.layer in options:
        return context.layer
    fallback = layer_choice.default_layer(context.handle)
    return fallback if fallback in options else (options[0] if options else None)


def _layer_labels(context: Context):
    atlas, _ = atlases.lookup(context.handle)

    def label(name: str) -> str:
        count = len(atlas.channels(name)) if atlas is not None and name in atlas.layers else 0
        total = context.handle.layers[name].channels
        status = "in the atlas" if count == total else f"{count} of {total} in the atlas" if count else "no atlas yet"
        return f"{name} · {total} filters · {status}"

    return label


def _unit_max(context: Context) -> int:
    layer = context.values.get(state.ATLAS_LAYER)
    return context.handle.layers[layer].channels - 1 if layer in context.handle.layers else 0


def _unit_start(context: Context) -> int:
    return context.channel if context.channel <= _unit_max(context) else 0


SETTINGS = (
    Setting(
        state.ATLAS_LAYER,
        "atlas_layer",
        Choice(_layers, "a spatial block:", labels=_layer_labels),
        _layer_start,
        "Layer",
        follows=True,
    ),
    Setting(
        "at_order",
        "order",
        Choice(tuple(ORDERS)),
        "channel number",
        "Order the filters by",
        help=terms.help(
            "activation", "By how strongly each filter fires on the photo chosen in the sidebar, strongest first."
        ),
    ),
    Setting(
        state.ATLAS_UNIT,
        "unit",
        Number(0, _unit_max),
        _unit_start,
        lambda context: f"Filter 0–{_unit_max(context)}",
        "number",
        follows=True,
    ),
    Setting(
        "at_page",
        "grid_page",
        Number(1, atlas_grid.pages),
        atlas_grid.page_start,
        atlas_grid.page_label,
        "number",
        follows=True,
    ),
    Setting(
        "at_steps", "build_steps", Number(1, 2048), DEFAULTS["steps"], "Steps per picture", "number", terms.help("step")
    ),
    Setting("at_size", "build_size", Number(16, 448, 16), DEFAULTS["size"], "Picture size (pixels)", "number"),
    Setting(
        "at_top_k",
        "build_patches",
        Number(1, 25),
        DEFAULTS["top_k"],
        "Photo patches per filter",
        "number",
        terms.help("top patches"),
    ),
)


def work(view: View):
    """The photo's maps (the grid's order, the large map) and the photo as the model sees it."""
    handle, entry = view.handle, view.image
    return cache.feature_maps(handle.key, entry.key, handle, entry.image), cache.model_view(
        handle.key, entry.key, handle, entry.image
    )


def draw(view: View, results) -> None:
    handle = view.handle
    maps, picture = results
    heading.show(
        "Atlas",
        "What does each filter of this layer look for? The atlas answers for every filter at once. For each "
        "one it keeps the picture that excites it most (painted by the network itself, as on the Ideal "
        "images page), the patches of real photos that excite it most, and how often it fires. It is "
        "computed once and kept, so browsing it is instant. Choose a filter to see it large, and where it "
        "fires in your photo.",
    )
    atlas, unusable = atlases.lookup(handle)
    path = vis_core.atlas_path(handle)
    job: jobs.Job | None = st.session_state.get(state.ATLAS_JOB)
    busy = job is not None and job.running
    st.session_state[state.ATLAS_STAMP] = atlases.stamp(path)  # what the build's progress compares with
    if not view.get(state.ATLAS_LAYER):
        st.info("This model has no layer with a spatial map, so there is nothing to put in an atlas.")
        st.stop()
    c1, c2, c3 = st.columns([2, 2, 1])
    for column, key in zip((c1, c2, c3), (state.ATLAS_LAYER, "at_order", state.ATLAS_UNIT), strict=True):
        widget(view, PAGE, key, column)
    layer = view.get(state.ATLAS_LAYER)
    built = len(atlas.channels(layer)) if atlas is not None and layer in atlas.layers else 0
    if unusable and not busy:  # a build writing its first record is not a problem worth a word
        st.warning(escape.markdown(unusable))
    if message := st.session_state.pop(state.ATLAS_OUTCOME, None):
        {"success": st.success, "warning": st.warning}.get(message[0], st.error)(escape.markdown(message[1]))
    if built < handle.layers[layer].channels and not (busy and job.name == layer):
        atlas_build.panel(view, PAGE, atlas, built)
    atlas_build.progress(path)
    if not built:
        st.stop()
    summary, order_by = maps.channel_summary(layer), ORDERS[view.get("at_order")]
    atlas_grid.grid(view, PAGE, atlas, atlas_grid.order(view), summary, order_by, PAGE_SIZE)
    atlas_grid.unit(view, atlas, maps, picture, summary)


PAGE = Page("atlas", SETTINGS, work, draw)

if __name__ == "__main__":
    show(PAGE)
