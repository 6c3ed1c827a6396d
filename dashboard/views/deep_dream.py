"""Deep dream: let the network amplify what it sees in the photo."""

from __future__ import annotations

from typing import Any

import streamlit as st

import vis_core
from dashboard import state
from dashboard.data import cache
from dashboard.views.declare import Choice, Number, Page, Setting, View, require_spatial, show, widget
from dashboard.words import heading, terms
from dashboard.work import live
from vis_core import costs
from vis_core.dream import MAX_OCTAVES, MAX_SIDE, deep_dream, dream_size, dream_work

TARGETS = ("the whole layer", "the sidebar's filter")
SETTINGS = (
    Setting(
        "dd_target",
        "amplify",
        Choice(TARGETS),
        TARGETS[0],
        "Amplify",
        "radio",
        terms.help("deep dream", "Make every filter of the layer respond more, or only one."),
    ),
    Setting("dd_octaves", "octaves", Number(1, MAX_OCTAVES), 4, "Octaves", "slider", terms.help("octave")),
    Setting(
        "dd_scale", "octave_scale", Number(1.1, 2.0, 0.1), 1.4, "Octave scale", "slider", terms.help("octave scale")
    ),
    Setting("dd_steps", "steps", Number(1, 40), 10, "Steps per octave", "slider", terms.help("step")),
    Setting(
        "dd_step_size",
        "step_size",
        Number(0.002, 0.05, 0.002),
        0.01,
        "Step size",
        "slider",
        terms.help("gradient", "How far each step changes the photo: larger dreams faster and coarser."),
    ),
    Setting("dd_jitter", "jitter", Number(0, 64), 32, "Jitter (pixels)", "slider", terms.help("jitter")),
    Setting(
        "dd_smoothing",
        "smoothing",
        Number(0.0, 3.0, 0.25),
        0.5,
        "Gradient smoothing (sigma)",
        "slider",
        terms.help("gradient", "Blurs each step's change a little (sigma: how much), for smoother dreams."),
    ),
    Setting(
        "dd_tile",
        "tile",
        Choice((128, 256, 384, 512, 768, 1024)),
        512,
        "Tile size",
        "select_slider",
        "Large images are processed in tiles of this size (less memory, no seams).",
    ),
    Setting("dd_seed", "seed", Number(0, 2**31 - 1), 0, "Seed", "number", terms.help("seed")),
    Setting(
        "dd_blend",
        "blend",
        Number(0.0, 1.0, 0.05),
        1.0,
        "Blend with the original",
        "slider",
        "1 shows the dream alone, 0 the original photo.",
        placed=True,
    ),
)


def dream_args(view: View) -> dict[str, Any]:
    """``vis_core.deep_dream``'s arguments from the view: one place for the button and the slide."""
    get = view.get
    return dict(
        layer=view.layer,
        channel=view.channel if get("dd_target") == TARGETS[1] else None,
        octaves=int(get("dd_octaves")),
        octave_scale=float(get("dd_scale")),
        steps=int(get("dd_steps")),
        step_size=float(get("dd_step_size")),
        jitter=int(get("dd_jitter")),
        smoothing=float(get("dd_smoothing")),
        tile_size=int(get("dd_tile")),
        seed=int(get("dd_seed")),
    )


def cost(view: View) -> float:
    """The dream's passes of the network (``vis_core.costs``)."""
    args = dream_args(view)
    return dream_work(
        view.handle,
        view.image.image.size,
        octaves=args["octaves"],
        octave_scale=args["octave_scale"],
        steps=args["steps"],
    )


def work(view: View) -> vis_core.Dream | None:
    """The dream a presented slide shows (made once, then cached), or None past the work one
    request may use (the page then says what to reduce, as it does for the Dream button)."""
    if not view.info.is_spatial or cost(view) > costs.MAX_WORK:
        return None
    return cache.dream(view.handle.key, view.image.key, cache.frozen(dream_args(view)), view.handle, view.image.image)


def draw(view: View, ahead: vis_core.Dream | None) -> None:
    handle, entry, layer = view.handle, view.image, view.layer
    heading.show(
        "Deep dream",
        "*DeepDream (Mordvintsev et al., 2015).* "
        "The network is asked to see *more* of whatever it already sees: the photo is changed, step by step, "
        "so that the chosen layer responds more strongly. Shallow layers paint strokes and textures, deep layers "
        "dream up eyes, fur and whole animals. It works at several scales (octaves), from coarse to fine.",
    )
    require_spatial(view.info)
    # what a shown dream must share with the current selection to be up to date
    made_with = {"model": handle.key, "image": entry.key, "layer": layer}
    allowed = live.estimate(handle, cost(view), "the steps per octave or the octaves")
    if dream_size(entry.image.size) != entry.image.size:
        width, height = dream_size(entry.image.size)
        st.caption(
            f"The photo ({entry.image.size[0]}×{entry.image.size[1]}) is dreamed at {width}×{height}: a dream's cost "
            f"grows with its pixels, so its longer side is kept to {MAX_SIDE}."
        )
    args = dream_args(view)
    outcome = live.work(
        st.button("Dream", type="primary", key="dd_go", disabled=not allowed),
        "Dreaming",
        lambda on_step: deep_dream(handle, entry.image, **args, on_step=on_step),
        key="dd",
        result_key=state.DEEP_DREAM_RESULT,
        made_with=made_with,
        so_far="the dream",
        note=" (at the size of the octave it had reached)",
        again="Dream",
        file="deep-dream",
        ahead=lambda: ahead,
    )
    if outcome is None:
        st.image(entry.image, width=480)
        st.caption("The photo to dream into. Choose the settings on the left and press Dream.")
        st.stop()

    dream = outcome.value
    if outcome.made_with != made_with:
        st.caption("This dream was made with another model, image or layer; press Dream to update it.")
    blend = widget(view, PAGE, "dd_blend")
    what = f"filter {dream.channel} of {dream.layer}" if dream.channel is not None else dream.layer
    st.image(
        blend * dream.image + (1 - blend) * dream.original,
        caption=f"{what}: {dream.octaves} octave{'s' if dream.octaves != 1 else ''} × {dream.steps} steps, "
        f"seed {dream.seed}, {dream.seconds:.1f} s"
        + (f", dreamed at {dream.image.shape[1]}×{dream.image.shape[0]}" if dream.scaled_from else ""),
        width="stretch",
        clamp=True,
    )
    st.download_button(
        "Download the dream (PNG)",
        live.png_bytes(dream.image),
        file_name="deep-dream.png",
        mime="image/png",
        key="dd_download",
    )


PAGE = Page("deep_dream", SETTINGS, work, draw, cost, controls="Deep dream", eager=False)

if __name__ == "__main__":
    show(PAGE)
