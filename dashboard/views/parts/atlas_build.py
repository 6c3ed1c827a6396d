"""The Atlas page's build panel: what is missing from the atlas of the chosen layer, the build's
settings (the model's atlas's own, or the page's declared ``at_steps``, ``at_size``, ``at_top_k``
for a first build), its estimate before Build, and the build's progress while it runs in the
background (``dashboard.work.jobs``); the grid redraws with the filters finished meanwhile."""

from __future__ import annotations

import time

import streamlit as st

import vis_core
from dashboard import state
from dashboard.data import atlases
from dashboard.views.declare import Page, View, widget
from dashboard.words import escape
from dashboard.work import jobs, live
from vis_core import ModelHandle, costs
from vis_core.atlas import budget
from vis_core.optim import Stopped

#: While a build runs, the grid is redrawn with the new filters at most this often (seconds).
REFRESH_SECONDS = 5.0
#: What an atlas records and a later build into it must repeat.
BUILD_SETTINGS = ("steps", "size", "top_k", "renders", "seed")
COLLECTIONS = {"sample": "the bundled sample photos", "folder": "a folder of photos", "imagenette": "Imagenette"}


def photos(collection: dict) -> str:
    """An atlas's image collection in words (never the server's folders)."""
    count = f" ({collection['images']} photos)" if collection.get("images") else ""
    return COLLECTIONS.get(collection.get("kind"), "photos") + count


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


def _ended(job: jobs.Job) -> tuple[str, str]:
    """How a build ended, for the page."""
    if isinstance(job.error, Stopped):
        return "warning", f"The build of {job.name} was stopped; the filters finished so far are kept."
    if job.error is not None:
        return "error", f"Building the atlas of {job.name} failed: {atlases.public(job.error)}"
    done = job.result
    kept = f" ({done.skipped} were built before)" if done.skipped else ""
    return "success", f"The atlas of {job.name} is built: {done.units} filters in {live.duration(done.seconds)}{kept}."


def _settings(view: View, page: Page, atlas) -> tuple[dict, str]:
    """The build's settings and photos: the model's atlas's (every layer is built alike), or the page's."""
    if atlas is not None:
        build = {key: value for key, value in atlas.settings.items() if key in BUILD_SETTINGS}
        st.caption(
            f"With this model's atlas settings: {build['steps']} steps at {build['size']} px, "
            f"{build['top_k']} photo patches per filter, from {photos(atlas.collection)}."
        )
        return build, atlas.collection["source"]
    columns = st.columns(3)
    for column, key in zip(columns, ("at_steps", "at_size", "at_top_k"), strict=True):
        widget(view, page, key, column)
    return dict(steps=view.get("at_steps"), size=view.get("at_size"), top_k=view.get("at_top_k")), "sample"


def _disk(handle: ModelHandle, layer: str, units: int, build: dict, images: int) -> budget.AtlasEstimate | None:
    """At most what the build writes (None: past the atlases' disk budget, and the reason shown)."""
    found = budget.estimate(
        handle,
        layer,
        units,
        size=build["size"],
        renders=build.get("renders", 1),
        top_k=build["top_k"],
        images=images,
        out=vis_core.atlas_path(handle),
    )
    try:
        budget.check(found)
    except vis_core.VisCoreError as exc:
        st.warning(escape.markdown(exc))
        return None
    return found


def _allowed(handle: ModelHandle, layer: str, work: float, pictures: int, disk, *, first: bool) -> bool:
    """Say what the build will cost (time and disk) before it starts, or, past what one click may
    start here (``costs.MAX_JOB_WORK``, the atlases' disk budget), what to reduce; returns whether
    it may start."""
    if work > costs.MAX_JOB_WORK:
        reduce = "the steps or the picture size above" if first else "nothing here: this model's atlas fixes them"
        st.warning(
            f"Building the {pictures} missing filters asks for {work:,.0f} passes of the network, more than the "
            f"{costs.MAX_JOB_WORK:,} one build from this page may use. Reduce {reduce}, or build it from the command "
            f"line, where there is no cap: `python -m vis_core atlas --layer {layer}`."
        )
        return False
    if disk is None:  # past the disk budget: said above
        return False
    st.caption(
        f"About {live.duration(costs.seconds_for(handle, forward_backward=work))} on this machine "
        f"({work:,.0f} pass{'' if round(work) == 1 else 'es'} of the network; it writes {disk.text}), in the "
        "background: browse other pages "
        "meanwhile; filters appear "
        "here as they are finished, and a stopped build continues where it stopped."
    )
    return True


def panel(view: View, page: Page, atlas, built: int) -> None:
    """What is missing, the settings, the estimate and Build (drawn while the layer is incomplete)."""
    handle, layer = view.handle, view.get(state.ATLAS_LAYER)
    channels = handle.layers[layer].channels
    job: jobs.Job | None = st.session_state.get(state.ATLAS_JOB)
    busy = job is not None and job.running
    with st.container(border=True):
        if built:
            st.markdown(f"**{built} of the {channels} filters of {layer} are in the atlas.** Build the rest here.")
        else:
            st.markdown(f"**{layer} has no atlas yet.** Build it here, from the bundled sample photos.")
        build, images = _settings(view, page, atlas)
        pictures = (channels - built) * build.get("renders", 1)
        work = costs.work_of_images(handle, [(build["size"], build["size"])], build["steps"], pictures)
        photos_used = atlas.collection.get("images") if atlas is not None else len(vis_core.sample_names())
        disk = _disk(handle, layer, channels - built, build, int(photos_used or 1))
        allowed = _allowed(handle, layer, work, pictures, disk, first=atlas is None)
        if st.button(f"Build the atlas of {layer}", type="primary", disabled=busy or not allowed, key="at_build"):
            _start(handle, vis_core.atlas_path(handle), layer, build, images)
            st.rerun()
        if busy:
            st.caption(f"One build at a time: the atlas of {escape.markdown(job.name)} is being built.")


def progress(path) -> None:
    """The running build's progress and Stop; the grid is redrawn as filters are finished."""

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
            ended=_ended,
            running=grid_follows,
        )
    )
