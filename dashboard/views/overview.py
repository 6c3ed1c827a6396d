"""Overview: the image as the model sees it, what it predicts, and the model's layers."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import figures
from dashboard.data import cache
from dashboard.share import present
from dashboard.views.declare import Flag, Page, Setting, View, show, widget
from dashboard.words import escape, heading, terms
from vis_core.layers import depths

SETTINGS = (Setting("overview_blocks_only", "blocks", Flag(), False, "Blocks only", "toggle"),)


def work(view: View) -> tuple:
    """The photo as the model sees it and the model's guesses for it."""
    handle, entry = view.handle, view.image
    return cache.model_view(handle.key, entry.key, handle, entry.image), cache.prediction(
        handle.key, entry.key, handle, entry.image
    )


def draw(view: View, results: tuple) -> None:
    handle, entry = view.handle, view.image
    picture, prediction = results

    heading.show(
        "Photo and guesses",
        "*Overview: the model's input, its prediction and its layers.* "
        "A convolutional network looks at a small, square version of your picture and passes it "
        "through a stack of layers, each turning the previous layer's output into a new set of "
        "**feature maps**. At the end it gives a probability for each of the "
        f"{len(handle.labels):,} things it knows. Pick a model, an image, a layer and a filter on "
        "the left; every page shows that choice.",
    )

    left, right = st.columns([1, 1.4])
    with left:
        st.subheader("What the model sees")
        st.image(
            picture,
            caption=f"{escape.markdown(entry.label)}, resized and cropped to {picture.shape[1]}×{picture.shape[0]}",
            width="stretch",
        )
    with right:
        st.subheader("What it thinks it is")
        st.plotly_chart(figures.prediction_bars(prediction), width="stretch", key="overview_predictions")
        if prediction.is_finite:
            st.caption(
                f"The model is {prediction.probabilities[0]:.0%} sure this is "
                f"**{escape.markdown(prediction.labels[0])}**. "
                "Bars show the five most likely classes; probabilities over all classes add up to 100%."
            )
        else:
            st.warning(
                "The model's outputs for this image are not numbers (NaN or infinite), so it names no class: "
                "its weights hold NaN or infinite values, or overflow. Check how the weights were trained and saved."
            )

    present.fold()  # a slide: the photo and its guesses
    total_params = sum(p.numel() for p in handle.model.parameters())
    columns = st.columns(5)
    columns[0].metric("Parameters", f"{total_params / 1e6:.1f} M")
    columns[1].metric("Input", f"{handle.input_size[1]}×{handle.input_size[0]}")
    columns[2].metric(
        "Blocks",
        len(handle.blocks()),
        help=terms.help("block", "Top-level building blocks, as listed in the sidebar."),
    )
    columns[3].metric(
        "Modules", len(handle.layers), help=terms.help("layer", "Every module with an output, sub-layers included.")
    )
    columns[4].metric("Runs on", str(handle.device).upper())

    st.subheader("Layers")
    st.caption(
        "Every module the image passes through, in order, with what its filters typically respond to at that "
        "depth, the shape of what it outputs (channels × height × width) and how many learned numbers it holds."
    )
    blocks_only = widget(view, PAGE, "overview_blocks_only")
    named = depths(handle.layers)
    rows = [
        {
            "name": info.name,
            "responds to": named[info.name].stage if info.name in named else "",
            "type": info.type_name,
            "output shape": info.shape_text,
            "parameters": info.params,
            "block": info.block,
        }
        for info in (handle.blocks() if blocks_only else handle.layers.values())
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", height=420)


PAGE = Page("overview", SETTINGS, work, draw)

if __name__ == "__main__":
    show(PAGE)
