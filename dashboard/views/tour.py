"""Tour: the landing page, a story in seven steps over the sidebar's photo (``dashboard.work.story``).

Each step: a plain title, a sentence or two, one large picture, Back/Next (and the arrow keys),
and "Explore this" to the full page with the same view. The slow pictures (a filter's ideal
image, the trust test, the dream) are prepared in the background from the moment the tour opens.
"""

from __future__ import annotations

import math

import streamlit as st

from dashboard import figures, state
from dashboard.data import atlases, cache
from dashboard.sidebar import layer_choice
from dashboard.views.declare import Number, Page, Setting, View, show
from dashboard.words import escape
from dashboard.work import story
from vis_core.layers import depths

LAST = len(story.STEPS) - 1
#: The picture's height in pixels: title, words, buttons and picture fit a 1280×720 screen.
PICTURE = 340
SETTINGS = (Setting(state.TOUR_STEP, "step", Number(0, len(story.STEPS) - 1), 0),)  # counted from 0; Back/Next move it


def work(view: View):
    """The photo's maps, the guesses and the photo as the model sees it (the steps' pictures are
    prepared in the background, ``dashboard.work.story``)."""
    handle, entry = view.handle, view.image
    return (
        cache.feature_maps(handle.key, entry.key, handle, entry.image),
        cache.prediction(handle.key, entry.key, handle, entry.image),
        cache.model_view(handle.key, entry.key, handle, entry.image),
    )


def draw(page_view: View, results) -> None:
    handle, entry = page_view.handle, page_view.image
    maps, prediction, view = results
    plan = story.plan(handle, maps, prediction)
    named = depths(handle.layers)
    label = prediction.labels[0]

    atlas = atlases.find(handle)
    atlas_unit = atlas.unit(*plan.unit) if atlas is not None else None
    atlas_render = atlas_unit.render if atlas_unit is not None and atlas_unit.renders else None
    tasks = [task for task in story.TASKS if not (task == story.RENDER and atlas_render is not None)]
    preparation = story.prepare(handle, entry.key, entry.image, plan, tasks)

    index = st.session_state.get(state.TOUR_STEP, 0)
    if not isinstance(index, int) or not 0 <= index <= LAST:
        index = 0
    st.session_state[state.TOUR_STEP] = index
    step = story.STEPS[index]
    preparation.look(step.task)

    def move(by: int) -> None:
        st.session_state[state.TOUR_STEP] = min(LAST, max(0, st.session_state.get(state.TOUR_STEP, 0) + by))

    def explore() -> None:
        """Set the full page's view to this step's, then go there."""
        if step.name == "filters" and plan.first_conv is not None:
            layer_choice.want(layer=handle.layers[plan.first_conv].block or plan.first_conv)
            st.session_state[state.FILTERS_LAYER] = plan.first_conv
        elif step.name in ("depth", "unit"):
            layer, channel = plan.unit
            layer_choice.want(layer=layer, channel=channel)
        elif step.name in ("decision", "trust"):
            st.session_state["am_method"] = "gradcam"  # the Activation maps page's Method widget
            if step.name == "trust":
                st.session_state[state.FAITHFULNESS_ON] = True
        elif step.name == "dream":
            layer_choice.want(layer=plan.dream_layer)
        st.switch_page(step.page)

    def stage(layer: str) -> str:
        return named[layer].text if layer in named else layer

    def chart(figure, key: str, *, fit: bool = False) -> None:
        """A figure across the column, or at its own width (``fit``: square pictures, not stretched)."""
        st.plotly_chart(figure, width="content" if fit else "stretch", key=key, config={"displayModeBar": False})

    def waiting(task: str, what: str) -> None:
        """A slow result not ready yet: a progress line, polled every second (the rest of the page
        stays usable); the whole page is drawn again once it is here."""

        @st.fragment(run_every=1.0)
        def poll() -> None:
            current = story.prepare(handle, entry.key, entry.image, plan, tasks)  # started again if it had stopped
            current.look(task)
            if current.ready(task):
                st.rerun()
            share = f" ({current.fraction:.0%})" if current.working_on == task and current.fraction else ""
            ahead = "" if current.working_on in (task, None) else " after the step it is finishing"
            st.info(f"Preparing {what}{ahead}{share}… it appears here in a moment.", icon=":material/hourglass_top:")

        poll()

    def failed(task: str) -> bool:
        if task in preparation.errors:
            st.warning(f"This picture could not be made: {escape.markdown(preparation.errors[task])}")
            return True
        return False

    def progress_line() -> None:
        """Where the tour is; while later steps are being prepared, a line that says how far, polled
        every two seconds (which also tells the preparation someone is still here)."""
        where = f"Tour · step {index + 1} of {len(story.STEPS)} · the arrow keys move too"
        if preparation.done or (step.task is not None and not preparation.ready(step.task)):
            st.caption(where)  # nothing to prepare, or the step's own progress line polls
            return

        @st.fragment(run_every=2.0)
        def poll() -> None:
            current = story.prepare(handle, entry.key, entry.image, plan, tasks)  # someone is here: keep going
            if current.done:
                st.rerun()  # once: the full run draws no poll
            ready = len(current.tasks) - len(current.missing)
            st.caption(f"{where} · later steps ready: {ready} of {len(current.tasks)}")

        poll()

    # ----------------------------------------------------------------- the steps
    def see() -> None:
        height, width = view.shape[:2]
        st.markdown(
            f"The network never sees your whole photo, only this small square of {width}×{height} pixels. From it, it "
            f"scores each of the {len(handle.labels):,} things it knows; here are its five best guesses. It is "
            f"{prediction.probabilities[0]:.0%} sure this is **{escape.markdown(label)}**."
        )
        left, right = st.columns([PICTURE, 820 - PICTURE], vertical_alignment="center")
        left.image(view, width=PICTURE)
        with right:
            figure = figures.prediction_bars(prediction)
            figure.update_layout(height=PICTURE, title="Its five best guesses")
            chart(figure, "tour_guesses")

    def first_filters() -> None:
        if plan.first_conv is None:
            st.info(f"{escape.markdown(handle.name)} has no convolution layer, so there are no filters to show.")
            return
        kernels = cache.layer_filters(handle.key, plan.first_conv, handle)
        count, _, rows, cols = kernels.weight.shape
        st.markdown(
            f"The first layer has {count} **filters**, each a tiny {rows}×{cols} pattern the "
            "network looks for all over "
            "the photo: an edge between light and dark, a stripe, a patch of one colour. Everything it knows is built "
            "from these."
        )
        shown = min(count, 64)
        columns = min(16, max(8, math.ceil(math.sqrt(shown * 2))))
        grid_rows = math.ceil(shown / columns)
        if kernels.kind == "rgb":
            figure = figures.rgb_mosaic(kernels.rgb("filter")[:shown], columns=columns)
            # the picture's own aspect (tiles and 1-pixel gaps) at the step's height, margins around it
            aspect = (columns * (cols + 1) + 1) / (grid_rows * (rows + 1) + 1)
            figure.update_layout(height=PICTURE, width=round((PICTURE - 30) * aspect) + 20)
            note = "Grey is zero; brighter red, green or blue means the filter looks for that colour there."
        else:
            figure = figures.channel_mosaic(
                kernels.reduced("mean"),
                list(range(shown)),
                columns=columns,
                colorscale="RdBu_r",
                per_channel_scale=False,
            )
            figure.update_layout(height=min(PICTURE, figure.layout.height), width=None)
            note = "Red where a filter adds brightness, blue where it takes it away."
        chart(figure, "tour_filters", fit=kernels.kind == "rgb")
        st.caption(note + ("" if shown == count else f" The first {shown} of {count} filters."))

    def simple_to_abstract() -> None:
        st.markdown(
            "Each filter hands on a **feature map**: bright where it found its pattern. Early blocks find edges and "
            "colours in fine detail; deep blocks find bigger, more meaningful things on coarser grids. The strongest "
            "map of three blocks:"
        )
        side = min(PICTURE - 60, 780 // len(plan.depth) - 10)
        for column, (layer, channel) in zip(st.columns(len(plan.depth)), plan.depth):
            with column:
                values = maps.channel(layer, channel)
                figure = figures.channel_heatmap(
                    values, title=escape.plotly(stage(layer).capitalize()), background=view, height=side + 40
                )
                figure.update_traces(showscale=False, selector=dict(type="heatmap"))
                figure.update_layout(width=side + 10)
                chart(figure, f"tour_depth_{layer}", fit=True)
                st.caption(f"{escape.markdown(layer)} · filter {channel} · a {values.shape[0]}×{values.shape[1]} grid")

    def one_filter() -> None:
        layer, channel = plan.unit
        st.markdown(
            f"Filter {channel} of {escape.markdown(layer)} ({escape.markdown(stage(layer))}) fires "
            "most strongly on this "
            "photo. Left: where it fires. Right: a picture painted from noise to make it fire as much as possible, "
            "which shows what it looks for."
        )
        left, right = st.columns(2, vertical_alignment="center")
        with left:
            figure = figures.channel_heatmap(
                maps.channel(layer, channel), title="Where it fires", background=view, height=PICTURE
            )
            figure.update_traces(showscale=False, selector=dict(type="heatmap"))
            figure.update_layout(width=PICTURE - 30)
            chart(figure, "tour_unit_map", fit=True)
        with right:
            if atlas_render is not None:
                st.image(atlas_render, caption="What it looks for (from the atlas)", width=PICTURE - 60, clamp=True)
            elif failed(story.RENDER):
                pass
            elif preparation.ready(story.RENDER):
                render = preparation.results[story.RENDER]
                st.image(render.image, caption="What it looks for", width=PICTURE - 60, clamp=True)
            else:
                waiting(story.RENDER, "the picture of what this filter looks for")

    def decision() -> None:
        st.markdown(
            f"Why did it say **{escape.markdown(label)}**? Grad-CAM asks which places in the deepest maps pushed that "
            "guess up, and paints them over the photo: bright where the evidence was."
        )
        cam = cache.attribution(handle.key, entry.key, "gradcam", plan.top_class, plan.cam_layer, handle, entry.image)
        figure = figures.attribution_overlay(
            view, cam.cells, title=f"Where it looked for '{escape.plotly(label)}'", height=PICTURE + 20
        )
        figure.update_layout(width=PICTURE + 110)
        chart(figure, "tour_gradcam", fit=True)

    def trust() -> None:
        st.markdown(
            "A map can look convincing and still be wrong. A test: grey out the pixels, brightest "
            "first, and watch the "
            f"model's confidence in {escape.markdown(label)} fall (left), or bring them back onto a blurred photo "
            "(right). A good map beats a random one (grey)."
        )
        if failed(story.TRUST):
            return
        if not preparation.ready(story.TRUST):
            waiting(story.TRUST, "the test")
            return
        report = preparation.results[story.TRUST]
        figure = figures.faithfulness_curves(report, verdict=False)  # the verdict is the line below, in words
        figure.update_layout(height=PICTURE - 65, margin=dict(t=30, b=0), legend=dict(y=-0.33))
        chart(figure, "tour_trust")
        answer, verdict = story.trust_verdict(report)
        {"yes": st.success, "partly": st.info, "no": st.warning}[answer](verdict)

    def dream() -> None:
        layer = plan.dream_layer
        st.markdown(
            f"Last, turn the network around: change the photo, step by step, so that {escape.markdown(layer)} "
            f"({escape.markdown(stage(layer))}) sees more of whatever it already sees. Its ideas appear in the photo."
        )
        if failed(story.DREAM):
            return
        if not preparation.ready(story.DREAM):
            waiting(story.DREAM, "the dream")
            return
        result = preparation.results[story.DREAM]
        left, right = st.columns(2)
        left.image(view, caption="The photo", width=PICTURE - 40)
        right.image(
            result.image,
            caption=f"The dream ({result.octaves} scales × {result.steps} steps)",
            width=PICTURE - 40,
            clamp=True,
        )

    drawers = {
        "see": see,
        "filters": first_filters,
        "depth": simple_to_abstract,
        "unit": one_filter,
        "decision": decision,
        "trust": trust,
        "dream": dream,
    }

    st.title(step.title)
    back, forward, where, elsewhere = st.columns([1, 1, 2.2, 2.6], vertical_alignment="center")
    back.button(
        "Back",
        icon=":material/arrow_back:",
        key="tour_back",
        shortcut="Left",
        disabled=index == 0,
        on_click=move,
        args=(-1,),
        width="stretch",
    )
    forward.button(
        "Next",
        icon=":material/arrow_forward:",
        key="tour_next",
        shortcut="Right",
        type="primary",
        disabled=index == LAST,
        on_click=move,
        args=(1,),
        width="stretch",
    )
    with where:
        progress_line()
    if elsewhere.button(f"Explore this: {step.page_title}", icon=":material/open_in_new:", key="tour_explore"):
        explore()
    with st.container(key="tour_step"):
        drawers[step.name]()


PAGE = Page("tour", SETTINGS, work, draw)

if __name__ == "__main__":
    show(PAGE)
