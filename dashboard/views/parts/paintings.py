"""Ideal images, the result: each painting with its caption and a PNG download, and how far the
score it raised rose from the starting noise."""

from __future__ import annotations

import streamlit as st

from dashboard.words import escape
from dashboard.work import live
from vis_core import ModelHandle


def show(handle: ModelHandle, outcome: live.Outcome) -> None:
    """The paintings of ``outcome`` (a Render's or a slide's), captioned for the model in use."""
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
