"""Feature reconstruction: what a layer still knows about the picture."""

from __future__ import annotations

import streamlit as st

from dashboard import cache, glossary, heading, live, settings, sidebar, state
from vis_core.inversion import reconstruct

selection = sidebar.current()
handle, entry, layer = selection.handle, selection.image, selection.layer

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
    steps = st.slider("Steps", 20, 600, 150, 10, key="rc_steps", help=glossary.help("step"))
    st.slider(
        "Smoothness (total variation weight)",
        0.0,
        2.0,
        0.5,
        0.05,
        key="rc_tv",
        help=glossary.help("total variation"),
    )
    st.slider(
        "Total variation exponent (beta)",
        1.0,
        3.0,
        2.0,
        0.5,
        key="rc_beta",
        help=glossary.help("total variation", "Higher: large jumps cost more than many small ones."),
    )
    st.select_slider(
        "Range (alpha-norm weight)",
        [0.0, 1e-4, 1e-3, 1e-2, 1e-1],
        1e-3,
        key="rc_alpha",
        help=glossary.help("alpha norm"),
    )
    st.number_input("Seed", 0, 2**31 - 1, 0, key="rc_seed", help=glossary.help("seed"))

strip = st.multiselect(
    "Layers for the strip",
    settings.rebuild_layers(handle),
    default=settings.rebuild_strip(handle),
    key="rc_layers",
    help=glossary.help("reconstruction", "Rebuild the photo from each of these layers, shallow to deep."),
)
live.estimate(handle, float(steps * len(strip)), "the steps or the layers")  # one image per step
left, right = st.columns(2)
one = left.button(f"Reconstruct from {layer}", type="primary", key="rc_one")
many = right.button(f"Reconstruct the strip ({len(strip)} layers)", key="rc_strip")
targets = [layer] if one else strip
args = settings.rebuild_args(st.session_state.get)  # the widgets' values, as the warm-up reads them
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
    ahead=lambda: settings.rebuild_ahead(handle, entry, strip, args),
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
        result.image, caption=f"from {result.layer}: pixel error {result.pixel_error:.4f}", width="stretch", clamp=True
    )
st.caption(
    "Pixel error is the mean squared difference to the photo: it grows with depth as the network keeps "
    "what it needs to recognise the picture and lets the rest go."
)
