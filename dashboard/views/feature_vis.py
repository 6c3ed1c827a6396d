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
    View,
    require_spatial,
    show,
    widget,
)
from dashboard.words import escape, heading, terms
from dashboard.work import live
from vis_core import costs
from vis_core.featurevis import feature_visualization, render_work
from vis_core.optim import MAX_SIZE

MODES = ("one filter", "gallery of filters", "diverse images of one filter", "a class")
SIZES = (64, 96, 128, 160, 224, 320, 448)
#: The gallery's filters (a range slider whose ends depend on the layer: not a setting of a link).
RANGE = "fv_range"


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
        "fv_class",
        "class",
        ClassIndex(labels=lambda context: context.handle.labels.__getitem__),
        _top_class,
        "Class",
        help=terms.help("logit", "The class whose score the painting raises; at first, the photo's top guess."),
        follows=True,
    ),
)


def gallery_range(view: View, chosen: Any = None) -> tuple[int, int]:
    """The gallery's first and last filter: ``chosen`` where it fits the layer, else the first eight."""
    last = view.info.channels - 1
    pair = isinstance(chosen, tuple | list) and len(chosen) == 2 and all(type(v) is int for v in chosen)
    if pair and 0 <= chosen[0] <= chosen[1] <= last:
        return int(chosen[0]), int(chosen[1])
    return 0, min(last, 7)


def painting_args(view: View, chosen_range: Any = None) -> dict[str, Any]:
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
        first, last = gallery_range(view, chosen_range)
        return {**args, "channel": list(range(first, first + min(16, last - first + 1)))}
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
            st.session_state[RANGE] = gallery_range(view, st.session_state.get(RANGE))
            st.slider("Filters", 0, info.channels - 1, key=RANGE)
        elif mode == MODES[2]:
            widget(view, PAGE, "fv_count")
        elif mode == MODES[3]:
            widget(view, PAGE, "fv_class")
    args = painting_args(view, st.session_state.get(RANGE))
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

    result, shown_mode = outcome.value, outcome.made_with["mode"]
    columns = st.columns(min(4, len(result.images)))
    # One image at most twice its size (a 224-pixel render blown up to the page's width is mostly
    # blur); several fill their columns (a fixed width would spill over the next column).
    single_width = min(2 * result.images[0].shape[1], 512)
    for index, image in enumerate(result.images):
        with columns[index % len(columns)]:
            if shown_mode == "a class":
                label = escape.markdown(handle.labels[result.channels[index]])
                caption = f"class '{label}'" if outcome.made_with["model"] == handle.key else "a class"
            else:
                caption = f"{result.layer} filter {result.channels[index]}"
            st.image(image, caption=caption, width=single_width if len(columns) == 1 else "stretch", clamp=True)
            st.download_button(
                "Download PNG",
                live.png_bytes(image),
                file_name=f"featurevis-{index}.png",
                mime="image/png",
                key=f"fv_download_{index}",
            )
    what = {
        "a class": "The class score",
        "gallery of filters": "The filters' average response",
        "diverse images of one filter": "The score (the filter's response, less a penalty for alike images)",
    }.get(shown_mode, "The filter's average response")
    st.caption(
        f"{what} rose from {result.objective[0]:.3f} on the starting noise to "
        f"{result.objective[-1]:.3f} on the painting "
        f"({len(result.objective)} steps, seed {result.seed}, {result.seconds:.1f} s)."
    )


PAGE = Page("feature_vis", SETTINGS, work, draw, cost, eager=False)

if __name__ == "__main__":
    show(PAGE)
