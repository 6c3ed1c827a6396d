"""Feature visualisation: the picture a filter likes most."""

from __future__ import annotations

import streamlit as st

from dashboard import escape, glossary, heading, live, settings, sidebar, state
from vis_core.featurevis import feature_visualization

selection = sidebar.current()
handle, entry, layer, channel = selection.handle, selection.image, selection.layer, selection.channel

heading.show(
    "Ideal images",
    "*Feature visualisation (activation maximisation).* "
    "What is a filter looking for? Start from grey noise and let the network itself paint, step by step, "
    "the picture that excites the filter most. Early filters want stripes and colours, deeper ones textures, "
    "then eyes, wheels or fur. Gallery mode paints many filters at once; diversity mode shows several different "
    "things one filter likes.",
)
info = handle.layers[layer]
sidebar.require_spatial(info)

with st.sidebar:  # read back through settings.painting_args, as a talk's warm-up reads a slide's
    st.subheader("Feature visualisation")
    mode = st.radio(
        "Render",
        ["one filter", "gallery of filters", "diverse images of one filter", "a class"],
        key="fv_mode",
        help=glossary.help("feature visualisation", "What to paint the ideal image of."),
    )
    start = settings.painting_start(handle, entry, layer, mode)
    st.slider("Steps", 16, 512, 128, 16, key="fv_steps", help=glossary.help("step"))
    st.select_slider("Size (pixels)", [64, 96, 128, 160, 224, 320, 448], start["fv_size"], key="fv_size")
    st.toggle("Fourier parameterisation", value=True, key="fv_fft", help=glossary.help("Fourier parameterisation"))
    st.toggle("Decorrelated colour", value=True, key="fv_decorrelate", help=glossary.help("decorrelated colour"))
    st.toggle(
        "Robustness transforms (jitter, scale, rotate)",
        value=True,
        key="fv_transforms",
        help=glossary.help("robustness transforms"),
    )
    st.number_input("Seed", 0, 2**31 - 1, 0, key="fv_seed", help=glossary.help("seed"))
    if mode == "gallery of filters":
        st.slider("Filters", 0, info.channels - 1, start["fv_range"], key="fv_range")
    elif mode == "diverse images of one filter":
        st.slider("Images", 2, 8, 4, key="fv_count")
    elif mode == "a class":
        st.selectbox(
            "Class",
            list(range(len(handle.labels))),
            index=start["fv_class"],
            format_func=lambda i: handle.labels[i],
            key="fv_class",
            help=glossary.help("logit", "The class whose score the painting raises; at first, the photo's top guess."),
        )

args = settings.painting_args(st.session_state.get, handle, entry, layer, channel)
allowed = live.estimate(handle, settings.painting_work(handle, args), "the steps, the size or the number of filters")
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
    ahead=lambda: settings.painting_ahead(handle, args),
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
    f"{what} rose from {result.objective[0]:.3f} on the starting noise to {result.objective[-1]:.3f} on the painting "
    f"({len(result.objective)} steps, seed {result.seed}, {result.seconds:.1f} s)."
)
