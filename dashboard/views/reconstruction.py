"""Feature reconstruction: what a layer still knows about the picture."""

from __future__ import annotations

from typing import Any

import streamlit as st

import vis_core
from dashboard import state
from dashboard.data import cache
from dashboard.views.declare import Choice, Context, Many, Number, Page, Setting, View, show, widget
from dashboard.words import heading, terms
from dashboard.work import live
from vis_core import ModelHandle, costs
from vis_core.inversion import reconstruct


def rebuild_layers(handle: ModelHandle) -> list[str]:
    """The blocks the photo can be rebuilt from (a map more than one cell wide)."""
    return [name for name in handle.spatial_blocks() if handle.layers[name].output_shape[1] > 1]


def rebuild_strip(handle: ModelHandle) -> list[str]:
    """Where the strip's layers start: four spread from shallow to deep."""
    layers = rebuild_layers(handle)
    return sorted({layers[int(f * (len(layers) - 1))] for f in (0.1, 0.35, 0.6, 0.9)}, key=layers.index)


def _layers(context: Context) -> list[str]:
    return rebuild_layers(context.handle)


SETTINGS = (
    Setting("rc_steps", "steps", Number(20, 600, 10), 150, "Steps", "slider", terms.help("step")),
    Setting(
        "rc_tv",
        "tv",
        Number(0.0, 2.0, 0.05),
        0.5,
        "Smoothness (total variation weight)",
        "slider",
        terms.help("total variation"),
    ),
    Setting(
        "rc_beta",
        "beta",
        Number(1.0, 3.0, 0.5),
        2.0,
        "Total variation exponent (beta)",
        "slider",
        terms.help("total variation", "Higher: large jumps cost more than many small ones."),
    ),
    Setting(
        "rc_alpha",
        "alpha",
        Choice((0.0, 1e-4, 1e-3, 1e-2, 1e-1)),
        1e-3,
        "Range (alpha-norm weight)",
        "select_slider",
        terms.help("alpha norm"),
    ),
    Setting("rc_seed", "seed", Number(0, 2**31 - 1), 0, "Seed", "number", terms.help("seed")),
    Setting(
        "rc_layers",
        "strip",
        Many(_layers),
        lambda context: rebuild_strip(context.handle),
        "Layers for the strip",
        "multiselect",
        terms.help("reconstruction", "Rebuild the photo from each of these layers, shallow to deep."),
    ),
)


def rebuild_args(view: View) -> dict[str, Any]:
    """``vis_core.reconstruct``'s arguments (but the layer) from the view: one place for the
    buttons and a slide."""
    return dict(
        steps=int(view.get("rc_steps")),
        tv_weight=float(view.get("rc_tv")),
        tv_beta=float(view.get("rc_beta")),
        alpha_weight=float(view.get("rc_alpha")),
        seed=int(view.get("rc_seed")),
    )


def cost(view: View) -> float:
    """The strip's passes of the network: one per step and layer."""
    return float(view.get("rc_steps") * len(view.get("rc_layers")))


def work(view: View) -> list[vis_core.Reconstruction] | None:
    """The strip a presented slide shows (made once, then cached: a slide shows the page's story
    from shallow to deep), or None without layers or past the work one request may use."""
    layers = view.get("rc_layers")
    if not layers or cost(view) > costs.MAX_WORK:
        return None
    handle, image = view.handle, view.image
    return cache.reconstructions(
        handle.key, image.key, tuple(layers), cache.frozen(rebuild_args(view)), handle, image.image
    )


def draw(view: View, ahead: list[vis_core.Reconstruction] | None) -> None:
    handle, entry, layer = view.handle, view.image, view.layer
    heading.show(
        "Rebuild the photo",
        "*Feature reconstruction (inversion, Mahendran and Vedaldi, 2015).* "
        "Each layer keeps only part of what is in the picture. Here we start from noise and search for an image "
        "that the network sees exactly as it sees the photo at one layer. From an early layer the photo comes "
        "back almost perfectly; from a deep layer only the parts that matter for recognition survive, while exact "
        "positions and colours fade.",
    )
    with st.sidebar:
        st.subheader("Reconstruction")
        for key in ("rc_steps", "rc_tv", "rc_beta", "rc_alpha", "rc_seed"):
            widget(view, PAGE, key)
    strip = widget(view, PAGE, "rc_layers")
    steps = view.get("rc_steps")
    live.estimate(handle, float(steps * len(strip)), "the steps or the layers")  # one image per step
    left, right = st.columns(2)
    one = left.button(f"Reconstruct from {layer}", type="primary", key="rc_one")
    many = right.button(f"Reconstruct the strip ({len(strip)} layers)", key="rc_strip")
    targets = [layer] if one else strip
    args = rebuild_args(view)
    outcome = live.work(
        one or many,
        "Reconstructing",
        lambda on_step: [
            reconstruct(handle, entry.image, layer=target, **args, on_step=live.in_turn(on_step, index, len(targets)))
            for index, target in enumerate(targets)
        ],
        key="rc",
        result_key=state.RECONSTRUCTION_RESULTS,
        so_far="the reconstruction",
        again="a button",
        file="reconstruction",
        ahead=lambda: ahead,
    )
    if outcome is None or not outcome.value:
        st.image(
            cache.model_view(handle.key, entry.key, handle, entry.image),
            caption="The photo as the model sees it. Press a button to rebuild it from a layer.",
            width=320,
        )
        st.stop()

    results = outcome.value
    columns = st.columns(len(results) + 1)
    columns[0].image(results[0].original, caption="the photo, as the model sees it", width="stretch", clamp=True)
    for column, result in zip(columns[1:], results):
        column.image(
            result.image,
            caption=f"from {result.layer}: pixel error {result.pixel_error:.4f}",
            width="stretch",
            clamp=True,
        )
    st.caption(
        "Pixel error is the mean squared difference to the photo: it grows with depth as the network keeps "
        "what it needs to recognise the picture and lets the rest go."
    )


PAGE = Page("reconstruction", SETTINGS, work, draw, cost, eager=False)

if __name__ == "__main__":
    show(PAGE)
