"""Back to pixels: which pixels drive the chosen filter (Zeiler & Fergus's deconvnet, guided backprop)."""

from __future__ import annotations

import streamlit as st

from dashboard import figures
from dashboard.data import atlases, cache
from dashboard.share import present
from dashboard.sidebar import layer_choice
from dashboard.views.declare import Choice, Number, Page, Setting, View, require_spatial, show
from dashboard.words import escape, heading, terms
from vis_core.projection import FOCUS_MASS, RULE_LABELS, RULES, crop, shared_focus

SCOPES = ("strongest position", "whole map")
SETTINGS = (
    Setting(
        "pr_scope",
        "project",
        Choice(SCOPES),
        SCOPES[0],
        "Project",
        "radio",
        terms.help(
            "activation",
            "Zeiler & Fergus project the single strongest activation; the whole map shows everything the filter saw.",
        ),
    ),
    Setting("pr_top_k", "top", Number(4, 16, 4), 8, "Strongest filters to show", "slider"),
    Setting(  # guided by default: the most legible for a room (deconvnet's strided checkerboard)
        "pr_top_rule",
        "rule",
        Choice(tuple(RULES), labels=RULE_LABELS),
        "guided",
        "Rule for that grid",
        help=terms.help("guided backprop", "How the response is passed back through each ReLU."),
    ),
)


def work(view: View):
    """The photo, the filter's projection by each rule, and the layer's strongest filters projected."""
    handle, entry, layer, channel = view.handle, view.image, view.layer, view.channel
    if not view.info.is_spatial:
        return None
    position = "max" if view.get("pr_scope") == SCOPES[0] else None
    picture = cache.model_view(handle.key, entry.key, handle, entry.image)
    results = {
        rule: cache.projection(handle.key, entry.key, layer, channel, rule, position, handle, entry.image)
        for rule in RULES
    }
    top_k, top_rule = view.get("pr_top_k"), view.get("pr_top_rule")
    tiles = cache.top_projections(handle.key, entry.key, layer, top_k, top_rule, handle, entry.image)
    return picture, results, tiles


def draw(view: View, computed) -> None:
    handle, layer, channel, info = view.handle, view.layer, view.channel, view.info
    heading.show(
        "Back to pixels",
        "*Projection to pixels by deconvnet and guided backprop.* A filter deep in the network responds to "
        "something in the picture, but what? Here its response is sent **backwards** through the network to the "
        "pixels, which shows the edges and textures it reacts to. The three ways of passing the signal back differ "
        "only at each ReLU; guided backprop gives the crispest pictures, the plain gradient the most honest ones.",
    )
    require_spatial(info)
    picture, results, tiles = computed
    top_k, top_rule = view.get("pr_top_k"), view.get("pr_top_rule")
    first = results["deconvnet"]
    focus = shared_focus(list(results.values()))  # every panel is cropped to where the projections fall

    # Two rows of large pictures: the photo (and what the filter sees), then the three projections.
    panels = [("The image", picture, focus if first.position is not None else None)]
    if first.position is not None:
        panels.append(("What it sees", crop(picture, focus), None))
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

    present.fold()  # a slide: the photo and the three projections
    st.subheader(f"The {top_k} strongest filters of {layer} for this image")
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


PAGE = Page("projection", SETTINGS, work, draw, controls="Projection")

if __name__ == "__main__":
    show(PAGE)
