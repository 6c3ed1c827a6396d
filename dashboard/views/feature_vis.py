"""Feature visualisation: the picture a filter likes most."""

from __future__ import annotations

from typing import Any

import streamlit as st

import vis_core
from dashboard import state
from dashboard.data import cache
from dashboard.views.declare import (
    Choice,
    ClassIndex,
    Context,
    Flag,
    Number,
    Page,
    Setting,
    Span,
    View,
    require_spatial,
    show,
    widget,
)
from dashboard.views.parts import paintings
from dashboard.words import heading, terms
from dashboard.work import live
from vis_core import costs
from vis_core.atlas.renders import chunk_images
from vis_core.featurevis import feature_visualization, render_work
from vis_core.optim import MAX_SIZE

MODES = ("one filter", "gallery of filters", "diverse images of one filter", "a class")
SIZES = (64, 96, 128, 160, 224, 320, 448)
#: Most filters a gallery paints at once (fewer past 224 pixels: ``vis_core.atlas.renders.chunk_images``).
GALLERY = 16


def _top_class(context: Context) -> int:
    """The class painted at first: the photo's top guess (the class the audience just saw named)."""
    handle, image = context.handle, context.image
    top = int(cache.prediction(handle.key, image.key, handle, image.image).indices[0])
    return top if 0 <= top < len(handle.labels) else 0


SETTINGS = (
    Setting(
        "fv_mode",
        "mode",
        Choice(MODES),
        MODES[0],
        "Render",
        "radio",
        terms.help("feature visualisation", "What to paint the ideal image of."),
    ),
    Setting("fv_steps", "steps", Number(16, 512, 16), 128, "Steps", "slider", terms.help("step")),
    Setting(
        "fv_size",
        "size",
        Choice(SIZES),
        lambda context: 224 if context.values["fv_mode"] == MODES[0] else 128,
        "Size (pixels)",
        "select_slider",
        follows=True,
    ),
    Setting(
        "fv_fft", "fft", Flag(), True, "Fourier parameterisation", "toggle", terms.help("Fourier parameterisation")
    ),
    Setting(
        "fv_decorrelate",
        "decorrelate",
        Flag(),
        True,
        "Decorrelated colour",
        "toggle",
        terms.help("decorrelated colour"),
    ),
    Setting(
        "fv_transforms",
        "transforms",
        Flag(),
        True,
        "Robustness transforms (jitter, scale, rotate)",
        "toggle",
        terms.help("robustness transforms"),
    ),
    Setting("fv_seed", "seed", Number(0, 2**31 - 1), 0, "Seed", "number", terms.help("seed")),
    Setting("fv_count", "images", Number(2, 8), 4, "Images", "slider"),
    Setting(
        "fv_range",
        "filters",
        Span(lambda context: context.handle.layers[context.layer].channels - 1),
        lambda context: (0, min(context.handle.layers[context.layer].channels - 1, 7)),
        "Filters",
        "slider",
        f"The gallery's filters, first to last; it paints at most {GALLERY} of them from the first (fewer for "
        "pictures larger than 224 pixels).",
    ),
    Setting(
        "fv_class",
        "class",
        ClassIndex(labels=lambda context: context.handle.labels.__getitem__),
        _top_class,
        "Class",
        help=terms.help("logit", "The class whose score the painting raises; at first, the photo's top guess."),
        follows=True,
    ),
)


def painting_args(view: View) -> dict[str, Any]:
    """``vis_core.feature_visualization``'s arguments from the view: one place for the Render
    button and a slide."""
    get, mode = view.get, view.get("fv_mode")
    args = dict(
        layer=view.layer,
        steps=int(get("fv_steps")),
        size=min(int(get("fv_size")), MAX_SIZE),
        seed=int(get("fv_seed")),
        fft=bool(get("fv_fft")),
        decorrelate=bool(get("fv_decorrelate")),
        transforms=bool(get("fv_transforms")),
    )
    if mode == MODES[1]:
        first, last = get("fv_range")
        most = min(GALLERY, chunk_images(args["size"]))  # no more pixels at once than an atlas batch
        return {**args, "channel": list(range(first, first + min(most, last - first + 1)))}
    if mode == MODES[2]:
        return {**args, "channel": view.channel, "diversity": int(get("fv_count"))}
    if mode == MODES[3]:
        return {**args, "channel": int(get("fv_class")), "mode": "class"}
    return {**args, "channel": view.channel}


def painting_work(handle, args: dict[str, Any]) -> float:
    """A painting's passes of the network (``vis_core.costs``): its steps over every image it paints."""
    channels = args["channel"]
    images = max(len(channels) if isinstance(channels, list) else 1, args.get("diversity", 1))
    return render_work(handle, steps=args["steps"], size=args["size"], images=images)


def cost(view: View) -> float:
    return painting_work(view.handle, painting_args(view))


def work(view: View) -> vis_core.FeatureVisualization | None:
    """The painting a presented slide shows (made once, then cached), or None past the work one
    request may use."""
    args = painting_args(view)
    if not view.info.is_spatial or painting_work(view.handle, args) > costs.MAX_WORK:
        return None
    return cache.painting(view.handle.key, cache.frozen(args), view.handle)


def draw(view: View, ahead: vis_core.FeatureVisualization | None) -> None:
    handle, info, mode = view.handle, view.info, view.get("fv_mode")
    heading.show(
        "Ideal images",
        "*Feature visualisation (activation maximisation).* "
        "What is a filter looking for? Start from grey noise and let the network itself paint, step by step, "
        "the picture that excites the filter most. Early filters want stripes and colours, deeper ones textures, "
        "then eyes, wheels or fur. Gallery mode paints many filters at once; diversity mode shows several different "
        "things one filter likes.",
    )
    require_spatial(info)
    with st.sidebar:
        st.subheader("Feature visualisation")
        for key in ("fv_mode", "fv_steps", "fv_size", "fv_fft", "fv_decorrelate", "fv_transforms", "fv_seed"):
            widget(view, PAGE, key)
        if mode == MODES[1]:
            widget(view, PAGE, "fv_range")
        elif mode == MODES[2]:
            widget(view, PAGE, "fv_count")
        elif mode == MODES[3]:
            widget(view, PAGE, "fv_class")
    args = painting_args(view)
    allowed = live.estimate(handle, painting_work(handle, args), "the steps, the size or the number of filters")
    made_with = {"mode": mode, "model": handle.key}
    outcome = live.work(
        st.button("Render", type="primary", key="fv_go", disabled=not allowed),
        "Painting",
        lambda on_step: feature_visualization(handle, **args, on_step=on_step),
        key="fv",
        result_key=state.FEATURE_VIS_RESULT,
        made_with=made_with,
        so_far="the painting",
        again="Render",
        file="featurevis",
        ahead=lambda: ahead,
    )
    if outcome is None:
        st.caption("Press Render to paint.")
        st.stop()

    paintings.show(handle, outcome)


PAGE = Page("feature_vis", SETTINGS, work, draw, cost, eager=False)

if __name__ == "__main__":
    show(PAGE)
