"""Back to pixels: which pixels drive the chosen filter (Zeiler & Fergus's deconvnet, guided backprop)."""

from __future__ import annotations

import streamlit as st

from dashboard import atlases, cache, escape, figures, glossary, heading, layer_choice, sidebar, talks
from vis_core.projection import FOCUS_MASS, RULE_LABELS, RULES, crop, shared_focus

selection = sidebar.current()
handle, entry, layer, channel = selection.handle, selection.image, selection.layer, selection.channel

heading.show(
    "Back to pixels",
    "*Projection to pixels by deconvnet and guided backprop.* A filter deep in the network responds to "
    "something in the picture, but what? Here its response is sent **backwards** through the network to the "
    "pixels, which shows the edges and textures it reacts to. The three ways of passing the signal back differ "
    "only at each ReLU; guided backprop gives the crispest pictures, the plain gradient the most honest ones.",
)

info = handle.layers[layer]
sidebar.require_spatial(info)

with st.sidebar:
    st.subheader("Projection")
    scope = st.radio(
        "Project",
        ["strongest position", "whole map"],
        key="pr_scope",
        help=glossary.help(
            "activation",
            "Zeiler & Fergus project the single strongest activation; the whole map shows everything the filter saw.",
        ),
    )
    top_k = st.slider("Strongest filters to show", 4, 16, 8, 4, key="pr_top_k")
    top_rule = st.selectbox(  # guided by default: the most legible for a room (deconvnet's strided checkerboard)
        "Rule for that grid",
        RULES,
        index=RULES.index("guided"),
        format_func=RULE_LABELS.get,
        key="pr_top_rule",
        help=glossary.help("guided backprop", "How the response is passed back through each ReLU."),
    )

position = "max" if scope == "strongest position" else None
view = cache.model_view(handle.key, entry.key, handle, entry.image)
results = {
    rule: cache.projection(handle.key, entry.key, layer, channel, rule, position, handle, entry.image) for rule in RULES
}
first = results["deconvnet"]
focus = shared_focus(list(results.values()))  # every panel is cropped to where the projections fall

# Two rows of large pictures: the photo (and what the filter sees), then the three projections.
panels = [("The image", view, focus if first.position is not None else None)]
if first.position is not None:
    panels.append(("What it sees", crop(view, focus), None))
projections = [(RULE_LABELS[rule], crop(results[rule].rgb, focus), None) for rule in RULES]
for row in (panels, projections):
    for column, (title, picture, box) in zip(st.columns(3), row):
        with column:
            st.plotly_chart(
                figures.picture(picture, title=title, box=box, height=360), width="stretch", key=f"pr_{title}"
            )
if first.position is not None:
    _, map_height, map_width = info.output_shape
    rf_top, rf_left, rf_bottom, rf_right = first.box
    st.caption(
        f"Filter {channel} of {layer} fires most at position {first.position} of its "
        f"{map_height}×{map_width} map (activation {first.activation:.3f}). The orange box is where "
        f"{FOCUS_MASS:.0%} of its projection falls, shown enlarged beside it with the three projections; in "
        f"principle that position can see a {rf_bottom - rf_top}×{rf_right - rf_left}-pixel region (its receptive "
        "field), but most of it barely matters. Grey means no effect; colours show which way each pixel pushes "
        "the filter."
    )
else:
    st.caption(
        f"The whole map of filter {channel} of {layer} (total activation {first.activation:.3f}), "
        "projected back. Grey means no effect."
    )
for result in results.values():
    if result.note:
        st.warning(escape.markdown(result.note))
        break
atlases.show_entry(handle, layer, channel)  # what the filter looks for, when the model has an atlas
layer_choice.unit_link(layer, channel, always=True)

talks.fold()  # a slide: the photo and the three projections
st.subheader(f"The {top_k} strongest filters of {layer} for this image")
tiles = cache.top_projections(handle.key, entry.key, layer, top_k, top_rule, handle, entry.image)
grid = st.columns(4)
for index, (filter_index, value, projected, patch) in enumerate(tiles):
    with grid[index % 4]:
        pair = st.columns(2)
        pair[0].image(patch, width="stretch")
        pair[1].image(projected, width="stretch", clamp=True)
        st.button(
            f"filter {filter_index} · peak {value:.2f}",
            key=f"pr_tile_{filter_index}",
            on_click=layer_choice.choose,
            args=(layer, filter_index),
            type="primary" if filter_index == channel else "secondary",
            width="stretch",
            help=f"Choose filter {filter_index} in the sidebar",
        )
st.caption(
    "Each pair is the image patch under one filter's strongest response and that response projected back with "
    f"{RULE_LABELS[top_rule].lower()}, both cropped to where {FOCUS_MASS:.0%} of the projection falls; "
    "computed together in one batched backward pass. Press a filter's button to choose it."
)
