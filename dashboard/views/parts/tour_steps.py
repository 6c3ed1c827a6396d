"""The Tour's seven steps, each drawn from one :class:`Scene` (the sidebar's model and photo, the
tour's plan for them and the slow results prepared in the background, ``dashboard.work.story``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from dashboard import figures
from dashboard.data import cache
from dashboard.sidebar.image_source import ImageEntry
from dashboard.words import escape
from dashboard.work import story
from vis_core import FeatureMaps, ModelHandle, Prediction
from vis_core.layers import depths

#: The picture's height in pixels: title, words, buttons and picture fit a 1280×720 screen.
PICTURE = 340


@dataclass(frozen=True)
class Scene:
    """What every step draws from: the model and photo, its maps and guesses, the photo as the model
    sees it, the tour's plan, an atlas picture of the step-4 filter (or None) and the preparation."""

    handle: ModelHandle
    entry: ImageEntry
    maps: FeatureMaps
    prediction: Prediction
    picture: np.ndarray
    plan: story.Plan
    atlas_render: Any
    tasks: tuple[str, ...]
    recipes: story.Recipes

    @property
    def label(self) -> str:
        return self.prediction.labels[0]

    @property
    def preparation(self) -> story.Preparation:
        """The shared preparation (started again if it had stopped: someone is looking)."""
        return story.prepare(self.handle, self.entry.key, self.entry.image, self.plan, list(self.tasks), self.recipes)

    def stage(self, layer: str) -> str:
        named = depths(self.handle.layers)
        return named[layer].text if layer in named else layer


def chart(figure, key: str, *, fit: bool = False) -> None:
    """A figure across the column, or at its own width (``fit``: square pictures, not stretched)."""
    st.plotly_chart(figure, width="content" if fit else "stretch", key=key, config={"displayModeBar": False})


def waiting(s: Scene, task: str, what: str) -> None:
    """A slow result not ready yet: a progress line, polled every second (the rest of the page
    stays usable); the whole page is drawn again once it is here."""

    @st.fragment(run_every=1.0)
    def poll() -> None:
        current = s.preparation
        current.look(task)
        if current.ready(task):
            st.rerun()
        share = f" ({current.fraction:.0%})" if current.working_on == task and current.fraction else ""
        ahead = "" if current.working_on in (task, None) else " after the step it is finishing"
        st.info(f"Preparing {what}{ahead}{share}… it appears here in a moment.", icon=":material/hourglass_top:")

    poll()


def failed(s: Scene, task: str) -> bool:
    errors = s.preparation.errors
    if task in errors:
        st.warning(f"This picture could not be made: {escape.markdown(errors[task])}")
        return True
    return False


def see(s: Scene) -> None:
    height, width = s.picture.shape[:2]
    st.markdown(
        f"The network never sees your whole photo, only this small square of {width}×{height} pixels. From it, it "
        f"scores each of the {len(s.handle.labels):,} things it knows; here are its five best guesses. It is "
        f"{s.prediction.probabilities[0]:.0%} sure this is **{escape.markdown(s.label)}**."
    )
    left, right = st.columns([PICTURE, 820 - PICTURE], vertical_alignment="center")
    left.image(s.picture, width=PICTURE)
    with right:
        figure = figures.prediction_bars(s.prediction)
        figure.update_layout(height=PICTURE, title="Its five best guesses")
        chart(figure, "tour_guesses")


def first_filters(s: Scene) -> None:
    if s.plan.first_conv is None:
        st.info(f"{escape.markdown(s.handle.name)} has no convolution layer, so there are no filters to show.")
        return
    kernels = cache.layer_filters(s.handle.key, s.plan.first_conv, s.handle)
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


def simple_to_abstract(s: Scene) -> None:
    st.markdown(
        "Each filter hands on a **feature map**: bright where it found its pattern. Early blocks find edges and "
        "colours in fine detail; deep blocks find bigger, more meaningful things on coarser grids. The strongest "
        "map of three blocks:"
    )
    side = min(PICTURE - 60, 780 // len(s.plan.depth) - 10)
    for column, (layer, channel) in zip(st.columns(len(s.plan.depth)), s.plan.depth):
        with column:
            values = s.maps.channel(layer, channel)
            figure = figures.channel_heatmap(
                values, title=escape.plotly(s.stage(layer).capitalize()), background=s.picture, height=side + 40
            )
            figure.update_traces(showscale=False, selector=dict(type="heatmap"))
            figure.update_layout(width=side + 10)
            chart(figure, f"tour_depth_{layer}", fit=True)
            st.caption(f"{escape.markdown(layer)} · filter {channel} · a {values.shape[0]}×{values.shape[1]} grid")


def one_filter(s: Scene) -> None:
    layer, channel = s.plan.unit
    st.markdown(
        f"Filter {channel} of {escape.markdown(layer)} ({escape.markdown(s.stage(layer))}) fires "
        "most strongly on this "
        "photo. Left: where it fires. Right: a picture painted from noise to make it fire as much as possible, "
        "which shows what it looks for."
    )
    left, right = st.columns(2, vertical_alignment="center")
    with left:
        figure = figures.channel_heatmap(
            s.maps.channel(layer, channel), title="Where it fires", background=s.picture, height=PICTURE
        )
        figure.update_traces(showscale=False, selector=dict(type="heatmap"))
        figure.update_layout(width=PICTURE - 30)
        chart(figure, "tour_unit_map", fit=True)
    with right:
        if s.atlas_render is not None:
            st.image(s.atlas_render, caption="What it looks for (from the atlas)", width=PICTURE - 60, clamp=True)
        elif failed(s, story.RENDER):
            pass
        elif s.preparation.ready(story.RENDER):
            render = s.preparation.results[story.RENDER]
            st.image(render.image, caption="What it looks for", width=PICTURE - 60, clamp=True)
        else:
            waiting(s, story.RENDER, "the picture of what this filter looks for")


def decision(s: Scene) -> None:
    st.markdown(
        f"Why did it say **{escape.markdown(s.label)}**? Grad-CAM asks which places in the deepest maps pushed that "
        "guess up, and paints them over the photo: bright where the evidence was."
    )
    cam = cache.attribution(
        s.handle.key, s.entry.key, "gradcam", s.plan.top_class, s.plan.cam_layer, s.handle, s.entry.image
    )
    figure = figures.attribution_overlay(
        s.picture, cam.cells, title=f"Where it looked for '{escape.plotly(s.label)}'", height=PICTURE + 20
    )
    figure.update_layout(width=PICTURE + 110)
    chart(figure, "tour_gradcam", fit=True)


def trust(s: Scene) -> None:
    st.markdown(
        "A map can look convincing and still be wrong. A test: grey out the pixels, brightest "
        "first, and watch the "
        f"model's confidence in {escape.markdown(s.label)} fall (left), or bring them back onto a blurred photo "
        "(right). A good map beats a random one (grey)."
    )
    if failed(s, story.TRUST):
        return
    if not s.preparation.ready(story.TRUST):
        waiting(s, story.TRUST, "the test")
        return
    report = s.preparation.results[story.TRUST]
    figure = figures.faithfulness_curves(report, verdict=False)  # the verdict is the line below, in words
    figure.update_layout(height=PICTURE - 65, margin=dict(t=30, b=0), legend=dict(y=-0.33))
    chart(figure, "tour_trust")
    answer, verdict = story.trust_verdict(report)
    {"yes": st.success, "partly": st.info, "no": st.warning}[answer](verdict)


def dream(s: Scene) -> None:
    layer = s.plan.dream_layer
    st.markdown(
        f"Last, turn the network around: change the photo, step by step, so that {escape.markdown(layer)} "
        f"({escape.markdown(s.stage(layer))}) sees more of whatever it already sees. Its ideas appear in the photo."
    )
    if failed(s, story.DREAM):
        return
    if not s.preparation.ready(story.DREAM):
        waiting(s, story.DREAM, "the dream")
        return
    result = s.preparation.results[story.DREAM]
    left, right = st.columns(2)
    left.image(s.picture, caption="The photo", width=PICTURE - 40)
    right.image(
        result.image,
        caption=f"The dream ({result.octaves} scales × {result.steps} steps)",
        width=PICTURE - 40,
        clamp=True,
    )


STEPS = {
    "see": see,
    "filters": first_filters,
    "depth": simple_to_abstract,
    "unit": one_filter,
    "decision": decision,
    "trust": trust,
    "dream": dream,
}
