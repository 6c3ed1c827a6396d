"""Activation maps: which parts of the image made the model choose a class, and how far to trust that."""

from __future__ import annotations

import streamlit as st

import vis_core
from dashboard import cache, escape, figures, sidebar, state

selection = sidebar.current()
handle, entry = selection.handle, selection.image

st.title("Activation maps")
st.markdown(
    "Which parts of the picture made the network say what it said? Each method below answers in its own way "
    "and paints the answer over the image: bright where the evidence for the chosen class is. They do not "
    "always agree, so the end of the page tests them: does hiding the bright parts really change the "
    "answer, and does the map change when the network is scrambled?"
)

METHODS = vis_core.METHODS
SLOW = {"scorecam"}
prediction = cache.prediction(handle.key, entry.key, handle, entry.image)
top = list(prediction.indices)
others = [i for i in range(len(handle.labels)) if i not in set(top)]

with st.sidebar:
    st.subheader("Activation maps")
    method = st.selectbox("Method", list(METHODS), format_func=lambda m: METHODS[m].label, key="am_method")
    target = st.selectbox(
        "Explain the class",
        top + others,
        key="am_target",
        format_func=lambda i: (
            f"{handle.labels[i]}" + (f" ({prediction.probabilities[top.index(i)]:.0%})" if i in top else "")
        ),
        help="The top five predictions come first; type to find any other class.",
    )
    opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.55, 0.05, key="am_opacity")
    colorscale = st.selectbox("Colour scale", ("Inferno", "Viridis", "Jet", "Hot", "Cividis"), key="am_colorscale")
    absolute = st.toggle(
        "Absolute values",
        value=False,
        key="am_absolute",
        help="Signed methods (integrated gradients, occlusion) show evidence for (red) and against "
        "(blue); switch on to show only the strength.",
    )

spatial = [info.name for info in handle.blocks() if info.is_spatial]
if selection.layer != st.session_state.get(state.ACTIVATION_SIDEBAR_LAYER):  # follow the sidebar when it changes
    if state.ACTIVATION_SIDEBAR_LAYER in st.session_state and selection.layer in spatial:
        st.session_state[state.ACTIVATION_LAYER] = selection.layer
    st.session_state[state.ACTIVATION_SIDEBAR_LAYER] = selection.layer
if st.session_state.get(state.ACTIVATION_LAYER) not in spatial:
    st.session_state[state.ACTIVATION_LAYER] = handle.last_spatial_layer()
with st.sidebar:
    cam_layer = st.selectbox(
        "Layer for CAM methods",
        spatial,
        key=state.ACTIVATION_LAYER,
        help="Starts at the last convolutional block (the usual choice) and follows the sidebar's layer when you "
        "change it.",
    )
view = cache.model_view(handle.key, entry.key, handle, entry.image)


def compute(name: str) -> vis_core.Attribution | None:
    layer = cam_layer if METHODS[name].uses_layer and name != "cam" else None  # CAM: only the pooled layer
    try:
        if name in SLOW:
            bar = st.progress(0.0, text=f"{METHODS[name].label}: masking the image with each feature map…")
            result = cache.slow_attribution(
                handle.key,
                entry.key,
                name,
                target,
                layer,
                handle,
                entry.image,
                lambda done, total: bar.progress(done / total, text=f"{done}/{total} maps"),
            )
            bar.empty()
            return result
        return cache.attribution(handle.key, entry.key, name, target, layer, handle, entry.image)
    except vis_core.VisCoreError as exc:
        st.warning(f"{METHODS[name].label}: {escape.markdown(exc)}")
        return None


def heat(result: vis_core.Attribution):
    signed = result.signed and not absolute
    values = result.model_map if signed else abs(result.model_map)
    return values, signed


result = compute(method)
if result is not None:
    values, signed = heat(result)
    where = f" at {result.layer}" if result.layer else ""
    st.plotly_chart(
        figures.attribution_overlay(
            view,
            values,
            title=f"{METHODS[method].label} for '{escape.plotly(result.target_label)}'{where}",
            opacity=opacity,
            colorscale=colorscale,
            signed=signed,
        ),
        width="stretch",
        key="am_main",
    )
    st.caption(f"{METHODS[method].summary} Computed with {METHODS[method].library} in {result.seconds:.2f} s.")
    if result.completeness_error is not None:
        st.caption(
            f"Completeness: the attributions add up to the change of the class score from a black image to this "
            f"one within {result.completeness_error:.1%} ({result.steps} steps along the path; the goal is 5%)."
        )
    if result.note:
        st.info(escape.markdown(result.note))

st.header("Compare methods")
compare = st.multiselect(
    "Methods side by side",
    list(METHODS),
    default=["gradcam", "layercam", "saliency", "guided_backprop"],
    format_func=lambda m: METHODS[m].label,
    key="am_compare",
    help="Score-CAM runs the network once per feature map; it takes a while on a CPU.",
)
columns = st.columns(min(4, max(1, len(compare))))
for index, name in enumerate(compare):
    with columns[index % len(columns)]:
        other = compute(name)
        if other is None:
            continue
        values, signed = heat(other)
        small = figures.attribution_overlay(
            view, values, title=METHODS[name].label, opacity=opacity, colorscale=colorscale, signed=signed, height=320
        )
        small.update_traces(showscale=False, selector=dict(type="heatmap"))
        st.plotly_chart(small, width="stretch", key=f"am_compare_{name}")
        if other.note:
            st.caption(escape.markdown(other.note))

st.header("Can we trust these maps?")
faith_tab, sanity_tab = st.tabs(["Deleting the evidence", "Scrambling the network"])
chosen = tuple(m for m in compare if m not in SLOW) or ("gradcam", "saliency")
with faith_tab:
    st.markdown(
        "If a map is right, greying out its brightest pixels first should make the model lose confidence fast "
        "(**deletion**: small area under the curve is good), and revealing them first on a blurred picture "
        "should restore it fast (**insertion**: large area is good)."
    )
    if st.button("Measure faithfulness", key="am_faith"):
        st.session_state[state.FAITHFULNESS_ON] = True
    if st.session_state.get(state.FAITHFULNESS_ON):
        report = cache.faithfulness(handle.key, entry.key, chosen, target, cam_layer, handle, entry.image)
        st.plotly_chart(figures.faithfulness_curves(report), width="stretch", key="am_faith_chart")
        st.markdown(
            "\n".join(f"- **{METHODS[curve.method].label}** {report.verdict(curve)}." for curve in report.curves)
        )
        st.caption(
            "The grey lines are a random map (the mean of three): a map that does not beat it says nothing about "
            "this decision. As in RISE (Petsiuk et al. 2018), deleted pixels turn grey and inserted pixels go onto "
            "a blurred copy."
        )
with sanity_tab:
    st.markdown(
        "A map that explains the model must change when the model is destroyed. Here the network's weights are "
        "replaced by random ones, block by block from the top, on a private copy. Lines that stay near 1 belong to "
        "methods that mostly show the image, not the model (guided backprop is the textbook case)."
    )
    if st.button("Run the sanity check", key="am_sanity"):
        st.session_state[state.SANITY_ON] = True
    if st.session_state.get(state.SANITY_ON):
        methods = tuple(dict.fromkeys(("saliency", "gradcam", "guided_backprop", *chosen)))[:5]
        check = cache.sanity(handle.key, entry.key, methods, target, cam_layer, handle, entry.image)
        st.plotly_chart(figures.sanity_chart(check), width="stretch", key="am_sanity_chart")
