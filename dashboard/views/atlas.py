"""Atlas: every filter of a layer at a glance, what each looks for, and where it fires in the photo."""

from __future__ import annotations

import time

import streamlit as st

import vis_core
from dashboard import figures, state
from dashboard.data import atlases, cache
from dashboard.sidebar import layer_choice
from dashboard.views.declare import Choice, Context, Number, Page, Setting, View, show, widget
from dashboard.words import escape, heading, terms
from dashboard.work import jobs, live
from vis_core import ModelHandle, costs
from vis_core.featuremaps import ChannelPages
from vis_core.optim import Stopped

#: Tiles per page of the grid (whole rows of :data:`COLUMNS`).
PAGE_SIZE = 32
COLUMNS = 8
#: While a build runs, the grid is redrawn with the new filters at most this often (seconds).
REFRESH_SECONDS = 5.0
ORDERS = {"channel number": None, "mean activation on this photo": "mean", "peak activation on this photo": "max"}
#: The engine's default build settings (``vis_core.build_atlas``), offered before a model has an atlas.
DEFAULTS = dict(steps=256, size=128, top_k=9)
#: What an atlas records and a later build into it must repeat.
BUILD_SETTINGS = ("steps", "size", "top_k", "renders", "seed")
COLLECTIONS = {"sample": "the bundled sample photos", "folder": "a folder of photos", "imagenette": "Imagenette"}


def _photos(collection: dict) -> str:
    """An atlas's image collection in words (never the server's folders)."""
    count = f" ({collection['images']} photos)" if collection.get("images") else ""
    return COLLECTIONS.get(collection.get("kind"), "photos") + count


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
)


def work(view: View):
    """The photo's maps (the grid's order, the large map) and the photo as the model sees it."""
    handle, entry = view.handle, view.image
    return cache.feature_maps(handle.key, entry.key, handle, entry.image), cache.model_view(
        handle.key, entry.key, handle, entry.image
    )


# ------------------------------------------------------------------- build
def _start(handle: ModelHandle, path, layer: str, settings: dict, images: str) -> None:
    def work(job: jobs.Job) -> object:
        def progress(done: int, total: int, message: str) -> None:
            job.report(done / total if total else 0.0, message, (done, total))

        return vis_core.build_atlas(
            handle.for_long_work(),  # never on the lock a viewer's click waits for
            layers=[layer],
            images=images,
            out=path,
            progress=progress,
            should_stop=job.should_stop,
            **settings,
        )

    job = jobs.Job(layer, work)
    try:
        job.start()
    except jobs.Busy as exc:
        st.session_state[state.ATLAS_OUTCOME] = ("warning", str(exc))
        return
    st.session_state[state.ATLAS_JOB] = job


def _build_ended(job: jobs.Job) -> tuple[str, str]:
    """How a build ended, for the page."""
    if isinstance(job.error, Stopped):
        return "warning", f"The build of {job.name} was stopped; the filters finished so far are kept."
    if job.error is not None:
        return "error", f"Building the atlas of {job.name} failed: {job.error}"
    done = job.result
    kept = f" ({done.skipped} were built before)" if done.skipped else ""
    return "success", f"The atlas of {job.name} is built: {done.units} filters in {live.duration(done.seconds)}{kept}."


def draw(view: View, results) -> None:
    handle, entry = view.handle, view.image
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
    st.session_state[state.ATLAS_STAMP] = atlases.stamp(path)
    built_layers = set(atlas.layers) if atlas is not None else set()
    if not view.get(state.ATLAS_LAYER):
        st.info("This model has no layer with a spatial map, so there is nothing to put in an atlas.")
        st.stop()

    def _built(name: str) -> int:
        return len(atlas.channels(name)) if name in built_layers else 0

    c1, c2, c3 = st.columns([2, 2, 1])
    layer = widget(view, PAGE, state.ATLAS_LAYER, c1)
    channels = handle.layers[layer].channels
    order_by = ORDERS[widget(view, PAGE, "at_order", c2)]
    unit_index = int(widget(view, PAGE, state.ATLAS_UNIT, c3))

    # ------------------------------------------------------------- engine calls
    summary = maps.channel_summary(layer)
    order = list(range(channels)) if order_by is None else summary.strongest(channels, by=order_by)
    built = _built(layer)
    unit = atlas.unit(layer, unit_index) if built else None

    if unusable and not busy:  # a build writing its first record is not a problem worth a word
        st.warning(escape.markdown(unusable))
    if message := st.session_state.pop(state.ATLAS_OUTCOME, None):
        {"success": st.success, "warning": st.warning}.get(message[0], st.error)(escape.markdown(message[1]))

    if built < channels and not (busy and job.name == layer):
        with st.container(border=True):
            if built:
                st.markdown(f"**{built} of the {channels} filters of {layer} are in the atlas.** Build the rest here.")
            else:
                st.markdown(f"**{layer} has no atlas yet.** Build it here, from the bundled sample photos.")
            if atlas is not None:  # one atlas folder per model: every layer is built with its settings and photos
                build = {key: value for key, value in atlas.settings.items() if key in BUILD_SETTINGS}
                images = atlas.collection["source"]
                st.caption(
                    f"With this model's atlas settings: {build['steps']} steps at {build['size']} px, "
                    f"{build['top_k']} photo patches per filter, from {_photos(atlas.collection)}."
                )
            else:
                images = "sample"
                s1, s2, s3 = st.columns(3)
                build = dict(
                    steps=int(
                        s1.number_input(
                            "Steps per picture", 1, 2048, DEFAULTS["steps"], key="at_steps", help=terms.help("step")
                        )
                    ),
                    size=int(s2.number_input("Picture size (pixels)", 16, 448, DEFAULTS["size"], 16, key="at_size")),
                    top_k=int(
                        s3.number_input(
                            "Photo patches per filter",
                            1,
                            25,
                            DEFAULTS["top_k"],
                            key="at_top_k",
                            help=terms.help("top patches"),
                        )
                    ),
                )
            pictures = (channels - built) * build.get("renders", 1)
            work = costs.work_of_images(handle, [(build["size"], build["size"])], build["steps"], pictures)
            st.caption(
                f"About {live.duration(costs.seconds_for(handle, forward_backward=work))} on this machine, in the "
                "background: browse other pages meanwhile; filters appear here as they are finished, and a stopped "
                "build continues where it stopped."
            )
            if st.button(f"Build the atlas of {layer}", type="primary", disabled=busy, key="at_build"):
                _start(handle, path, layer, build, images)
                st.rerun()
            if busy:
                st.caption(f"One build at a time: the atlas of {escape.markdown(job.name)} is being built.")

    def grid_follows(job: jobs.Job, history) -> None:
        newer = atlases.stamp(path) != st.session_state.get(state.ATLAS_STAMP)
        if newer and time.monotonic() - st.session_state.get(state.ATLAS_REDRAWN, 0.0) > REFRESH_SECONDS:
            st.session_state[state.ATLAS_REDRAWN] = time.monotonic()
            st.rerun(scope="app")  # the grid shows the filters finished since

    jobs.follow(
        jobs.Progress(
            state.ATLAS_JOB,
            state.ATLAS_OUTCOME,
            "Building the atlas of",
            (
                "Stop building",
                "at_stop",
                "Stops after the current batch; finished filters are kept.",
                "Stopping… the filters finished so far are kept.",
            ),
            ended=_build_ended,
            running=grid_follows,
        )
    )

    if not built:
        st.stop()

    # ----------------------------------------------------------------- figures
    def _choose(channel: int) -> None:
        st.session_state[state.ATLAS_UNIT] = channel
        layer_choice.choose(layer, channel)  # the sidebar's filter too, so every page shows it

    st.subheader(f"The filters of {layer}")
    paging = ChannelPages(channels, PAGE_SIZE)
    page = 1
    if paging.pages > 1:
        page = int(
            st.number_input(
                f"Page (of {paging.pages}, {paging.size} filters each)",
                1,
                paging.pages,
                paging.page_of(order.index(unit_index)),
                key=f"at_page_{layer}",
            )
        )
    shown = [order[slot] for slot in paging.channels(page)]
    st.caption(
        (
            f"Filters {shown[0]}–{shown[-1]} of {channels}"
            if order_by is None
            else f"Places {paging.channels(page)[0] + 1}–{paging.channels(page)[-1] + 1} of {channels}, strongest "
            f"{order_by} activation on {escape.markdown(entry.label)} first"
        )
        + ". Each picture is what one filter looks for; press its number to see it large."
    )
    for row in range(0, len(shown), COLUMNS):
        for column, channel in zip(st.columns(COLUMNS), shown[row : row + COLUMNS]):
            with column:
                tile = atlas.unit(layer, channel)
                if tile is not None:
                    st.image(tile.render, width="stretch", clamp=True, alt=f"what filter {channel} looks for")
                else:
                    st.caption("not built yet")
                strength = "" if order_by is None else f" · {getattr(summary, order_by)[channel]:.2f}"
                st.button(
                    f"{channel}{strength}",
                    key=f"at_tile_{channel}",
                    on_click=_choose,
                    args=(channel,),
                    type="primary" if channel == unit_index else "secondary",
                    width="stretch",
                )

    st.subheader(f"Filter {unit_index} of {layer}")
    layer_choice.unit_link(layer, unit_index)
    left, middle, right = st.columns([1, 1, 1])
    with left:
        if unit is not None:
            st.image(
                unit.render,
                caption="What it looks for: the picture that excites it most",
                width="stretch",
                alt=f"what filter {unit_index} looks for, large",
            )
        else:
            st.info(f"Filter {unit_index} is not in the atlas yet.")
    with middle:
        st.plotly_chart(
            figures.channel_heatmap(
                maps.activations[layer][unit_index],
                title=f"Where filter {unit_index} fires on {escape.plotly(entry.label)}",
                background=picture,
                height=360,
            ),
            width="stretch",
            key="at_where",
        )
    with right:
        st.metric("On this photo: mean activation", f"{summary.mean[unit_index]:.3f}")
        st.metric("Rank on this photo (by mean)", f"{summary.rank(unit_index)} of {channels}")
        if unit is not None:
            stats = unit.stats
            st.metric("Over the collection: mean activation", f"{stats['mean']:.3f}")
            st.metric("Strongest response seen", f"{stats['max']:.3f}")
            st.metric("Fires on", f"{stats['fires_on']} of {stats['images']} photos")
            st.metric("Zeros", f"{stats['zero_share']:.0%}")

    if unit is not None and unit.examples:
        st.subheader("The photo patches that excite it most")
        st.image(
            [example.patch for example in unit.examples],
            caption=[atlases.example_caption(example) for example in unit.examples],
            width=128,
            clamp=True,
        )
        st.caption(
            "Best first, at most one per photo, each cropped to what the filter can see (its receptive field), "
            f"with the photo's name and the filter's activation; from {_photos(atlas.collection)}. The pictures "
            f"were painted in {atlas.settings['steps']} steps at {atlas.settings['size']} px."
        )


PAGE = Page("atlas", SETTINGS, work, draw)

if __name__ == "__main__":
    show(PAGE)
