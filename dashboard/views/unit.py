"""One filter: everything about the sidebar's filter in one place.

Where it fires on this photo (its feature map), which pixels drive it (its projection), what it
looks for (its feature visualisation: the atlas's, or a quick painting on request) and the photo
patches that excite it most (the atlas's, or from the bundled sample photos). A click on a tile
of any grid (Feature maps, Filters, Back to pixels, Atlas) brings a filter here.
"""

from __future__ import annotations

import streamlit as st

import vis_core
from dashboard import figures, state
from dashboard.data import atlases, cache
from dashboard.share import present
from dashboard.sidebar import layer_choice
from dashboard.views.declare import Page, View, require_spatial, show
from dashboard.words import escape, heading, terms
from dashboard.work import live
from vis_core import ModelHandle, costs
from vis_core.featurevis import feature_visualization
from vis_core.projection import crop, shared_focus

QUICK_STEPS, QUICK_SIZE = cache.QUICK_STEPS, cache.QUICK_SIZE


def painting_args(layer: str, channel: int) -> dict:
    """The quick painting's arguments (``vis_core.feature_visualization``): "Paint it", a slide's
    painting made ahead (``cache.quick_painting``) and the tour's step 4 paint the same picture."""
    return dict(layer=layer, channel=channel, steps=QUICK_STEPS, size=QUICK_SIZE)


def quick_painting_ahead(handle: ModelHandle, layer: str, channel: int) -> vis_core.FeatureVisualization | None:
    """The quick painting a presented slide shows (made once, then cached), or None past the work
    one request may use."""
    if cache.quick_painting_work(handle) > costs.MAX_WORK:
        return None
    return cache.quick_painting(handle.key, layer, channel, handle)


def work(view: View):
    """The filter's map (every layer's, one forward pass), the photo, the projection, the atlas,
    and the strongest patches (the atlas's, or the sample photos'); while presenting, the quick
    painting of a filter the atlas does not have."""
    handle, entry, layer, channel = view.handle, view.image, view.layer, view.channel
    if not view.info.is_spatial:
        return None
    maps = cache.feature_maps(handle.key, entry.key, handle, entry.image)
    picture = cache.model_view(handle.key, entry.key, handle, entry.image)
    projected = cache.projection(handle.key, entry.key, layer, channel, "guided", "max", handle, entry.image)
    atlas = atlases.find(handle)
    unit = atlases.entry(atlas, layer, channel)[0]
    patches = unit.examples if unit is not None and unit.examples else None
    if patches is None:
        patches = cache.sample_patches(handle.key, layer, channel, handle)
    if unit is None and (view.ahead or present.presenting()):
        quick_painting_ahead(handle, layer, channel)
    return maps, picture, projected, atlas, patches


def draw(view: View, results) -> None:
    handle, entry, layer, channel = view.handle, view.image, view.layer, view.channel
    heading.show(
        "One filter",
        "Everything about one **filter** in one place: where it fires on your photo, which pixels make it fire, "
        "what it looks for, and the photo patches that excite it most. Choose a filter in the sidebar, or click a "
        "tile on *Feature maps*, *Filters*, *Back to pixels* or *Atlas*.",
    )
    info = view.info
    require_spatial(info)
    st.subheader(f"Filter {channel} of {layer}")
    st.caption(layer_choice.describe(handle, layer))

    maps, picture, projected, atlas, patches = results
    activation = maps.activations[layer][channel]
    signed = bool((maps.activations[layer] < 0).any())
    summary = maps.channel_summary(layer)
    unit, damaged = atlases.entry(atlas, layer, channel)
    if damaged:
        st.warning(escape.markdown(damaged))

    where, pixels, looks = st.columns(3)
    with where:
        st.markdown("**Where it fires on this photo**", help=terms.help("feature map"))
        st.plotly_chart(
            figures.channel_heatmap(
                activation,
                title="",
                background=picture,
                colorscale="RdBu_r" if signed else "Viridis",
                signed=signed,
                height=320,
            ),
            width="stretch",
            key="un_map",
        )
        st.caption(
            f"Strongest response {summary.max[channel]:.2f}, mean {summary.mean[channel]:.2f}: rank "
            f"{summary.rank(channel)} of {info.channels} in this layer on {escape.markdown(entry.label)}."
            + (" Red: its pattern is there; blue: its opposite." if signed else "")
        )

    with pixels:
        st.markdown("**Which pixels make it fire**", help=terms.help("guided backprop"))
        focus = shared_focus([projected])
        pair = st.columns(2)
        pair[0].image(crop(picture, focus), caption="the photo there", width="stretch")
        pair[1].image(crop(projected.rgb, focus), caption="projected back", width="stretch", clamp=True)
        st.caption(
            f"At its strongest position {projected.position}, the filter's response sent back to the pixels "
            "(guided backprop). Grey: no effect. More on *Back to pixels*."
        )
        if projected.note:
            st.warning(escape.markdown(projected.note))

    with looks:
        st.markdown("**What it looks for**", help=terms.help("feature visualisation"))
        if unit is not None:
            st.image(unit.render, caption="its feature visualisation, from the atlas", width="stretch", clamp=True)
        else:
            made_with = {"model": handle.key, "layer": layer, "channel": channel}
            shown = st.session_state.get(state.UNIT_RENDER)
            if shown is not None and shown.made_with == made_with:
                st.image(shown.value.images[0], caption="its feature visualisation", width="stretch", clamp=True)
            elif present.presenting() and (painting := quick_painting_ahead(handle, layer, channel)) is not None:
                st.image(painting.images[0], caption="its feature visualisation", width="stretch", clamp=True)
            else:
                stopped = live.partial("un_paint")
                if stopped is not None:
                    st.image(
                        stopped.image, caption=f"stopped at step {stopped.step} of {stopped.total}", width="stretch"
                    )
                st.caption(
                    f"The network paints the picture that excites filter {channel} most ({QUICK_STEPS} steps at "
                    f"{QUICK_SIZE} pixels; the *Ideal images* page paints larger)."
                )
                allowed = live.estimate(handle, cache.quick_painting_work(handle), "nothing: it is small")
                if st.button("Paint it", type="primary", key="un_paint_go", disabled=not allowed):
                    try:
                        result = live.run(
                            "Painting",
                            lambda on_step: feature_visualization(
                                handle, **painting_args(layer, channel), on_step=on_step
                            ),
                            key="un_paint",
                            preview_width=160,
                        )
                    except vis_core.VisCoreError as exc:
                        st.error(escape.markdown(exc))
                    else:
                        st.session_state[state.UNIT_RENDER] = live.Outcome(result, made_with)
                        st.rerun()

    present.fold()  # a slide: where it fires, which pixels, what it looks for
    st.markdown("**The photo patches that excite it most**", help=terms.help("top patches"))
    origin = "the atlas's photos" if unit is not None and unit.examples else "the bundled sample photos"
    if patches:
        st.image(
            [patch.patch for patch in patches],
            caption=[atlases.example_caption(patch) for patch in patches],
            width=128,
            clamp=True,
        )
        st.caption(
            f"Strongest first, at most one per photo, from {origin}: each patch is what the filter can see at its "
            "strongest position (its receptive field), with the photo's name and the filter's response there."
        )
    else:
        st.info(f"Filter {channel} responds to none of {origin}.")


PAGE = Page("unit", (), work, draw)

if __name__ == "__main__":
    show(PAGE)
