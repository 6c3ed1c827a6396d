"""Deep dream: let the network amplify what it sees in the photo."""

from __future__ import annotations

import streamlit as st

from dashboard import glossary, heading, live, settings, sidebar, state
from vis_core.dream import MAX_OCTAVES, MAX_SIDE, deep_dream, dream_size, dream_work

selection = sidebar.current()
handle, entry, layer, channel = selection.handle, selection.image, selection.layer, selection.channel

heading.show(
    "Deep dream",
    "*DeepDream (Mordvintsev et al., 2015).* "
    "The network is asked to see *more* of whatever it already sees: the photo is changed, step by step, "
    "so that the chosen layer responds more strongly. Shallow layers paint strokes and textures, deep layers "
    "dream up eyes, fur and whole animals. It works at several scales (octaves), from coarse to fine.",
)
info = handle.layers[layer]
sidebar.require_spatial(info)

with st.sidebar:  # read back through settings.dream_args, as a talk's warm-up reads a slide's
    st.subheader("Deep dream")
    st.radio(
        "Amplify",
        ["the whole layer", "the sidebar's filter"],
        key="dd_target",
        help=glossary.help("deep dream", "Make every filter of the layer respond more, or only one."),
    )
    octaves = st.slider("Octaves", 1, MAX_OCTAVES, 4, key="dd_octaves", help=glossary.help("octave"))
    octave_scale = st.slider("Octave scale", 1.1, 2.0, 1.4, 0.1, key="dd_scale", help=glossary.help("octave scale"))
    steps = st.slider("Steps per octave", 1, 40, 10, key="dd_steps", help=glossary.help("step"))
    st.slider(
        "Step size",
        0.002,
        0.05,
        0.01,
        0.002,
        key="dd_step_size",
        help=glossary.help("gradient", "How far each step changes the photo: larger dreams faster and coarser."),
    )
    st.slider("Jitter (pixels)", 0, 64, 32, key="dd_jitter", help=glossary.help("jitter"))
    st.slider(
        "Gradient smoothing (sigma)",
        0.0,
        3.0,
        0.5,
        0.25,
        key="dd_smoothing",
        help=glossary.help("gradient", "Blurs each step's change a little (sigma: how much), for smoother dreams."),
    )
    st.select_slider(
        "Tile size",
        [128, 256, 384, 512, 768, 1024],
        512,
        key="dd_tile",
        help="Large images are processed in tiles of this size (less memory, no seams).",
    )
    st.number_input("Seed", 0, 2**31 - 1, 0, key="dd_seed", help=glossary.help("seed"))

# what a shown dream must share with the current selection to be up to date
made_with = {"model": handle.key, "image": entry.key, "layer": layer}
allowed = live.estimate(
    handle,
    dream_work(handle, entry.image.size, octaves=octaves, octave_scale=octave_scale, steps=steps),
    "the steps per octave or the octaves",
)
if dream_size(entry.image.size) != entry.image.size:
    width, height = dream_size(entry.image.size)
    st.caption(
        f"The photo ({entry.image.size[0]}×{entry.image.size[1]}) is dreamed at {width}×{height}: a dream's cost "
        f"grows with its pixels, so its longer side is kept to {MAX_SIDE}."
    )
args = settings.dream_args(st.session_state.get, layer, channel)  # the widgets' values, as the warm-up reads them
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
    ahead=lambda: settings.dream_ahead(handle, entry, args),
)
if outcome is None:
    st.image(entry.image, width=480)
    st.caption("The photo to dream into. Choose the settings on the left and press Dream.")
    st.stop()

dream = outcome.value
if outcome.made_with != made_with:
    st.caption("This dream was made with another model, image or layer; press Dream to update it.")
blend = st.slider(
    "Blend with the original",
    0.0,
    1.0,
    1.0,
    0.05,
    key="dd_blend",
    help="1 shows the dream alone, 0 the original photo.",
)
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
