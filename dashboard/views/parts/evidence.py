"""Where it looked, its second half: can we trust these maps? Deleting the evidence (faithfulness
curves beside a random map) and scrambling the network (the sanity check), each started by its
button (a declared flag, so a link and the tour's "Explore this" carry it) and refined in the
background (``dashboard.work.refine``) while the page polls."""

from __future__ import annotations

import streamlit as st

import vis_core
from dashboard import figures, state
from dashboard.views.declare import Page, View, widget
from dashboard.views.parts import staged
from dashboard.work import refine
from vis_core import metrics

METHODS = vis_core.METHODS

DELETION = (
    "If a map is right, greying out its brightest pixels first should make the model lose confidence fast "
    "(**deletion**: small area under the curve is good), and revealing them first on a blurred picture "
    "should restore it fast (**insertion**: large area is good)."
)
SCRAMBLING = (
    "A map that explains the model must change when the model is destroyed. Here the network's weights are "
    "replaced by random ones, block by block from the top, on a private copy. Lines that stay near 1 belong to "
    "methods that mostly show the image, not the model (guided backprop is the textbook case)."
)
RANDOM_LINE = (
    "The grey dashed lines are a random map (the mean of three; of two in the quick first version): a map "
    "that does not beat it says nothing about this decision. As in RISE (Petsiuk et al. 2018), deleted pixels "
    "turn grey and inserted pixels go onto a blurred copy. Methods that take hundreds of passes per map "
    "(Score-CAM, occlusion) are left out."
)


def methods(compare: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The methods the faithfulness curves and the sanity check compare (quick ones only)."""
    chosen = tuple(m for m in compare if METHODS[m].speed != "long") or ("gradcam", "saliency")
    return chosen, tuple(dict.fromkeys(("saliency", "gradcam", "guided_backprop", *chosen)))[:5]


def checks(view: View) -> tuple[refine.Refinement | None, refine.Refinement | None]:
    """The two staged checks this view asked for (None: its button not pressed)."""
    handle, entry = view.handle, view.image
    target, layer = view.get("am_target"), view.get(state.ACTIVATION_LAYER)
    chosen, sanity_methods = methods(view.get("am_compare"))
    faith = sanity = None
    if view.get(state.FAITHFULNESS_ON):
        faith = refine.faithfulness(handle, entry.key, entry.image, chosen, target, layer)
    if view.get(state.SANITY_ON):
        sanity = refine.sanity(handle, entry.key, entry.image, sanity_methods, target, layer)
    return faith, sanity


def _stage_note(result, work: refine.Refinement, agreement: str) -> None:
    """Under a quick version: what it leaves out, how close it is, and how far the exact one is."""
    if result.exact:
        return
    done = f" ({work.fraction:.0%} done)" if work.fraction else ""
    st.caption(f"Quick first version: {result.approximation}. {agreement} The exact result replaces it{done}.")


def _faithfulness(work: refine.Refinement | None, names: dict[str, str]) -> None:
    report = staged.latest(work, "Faithfulness")
    if report is None:
        return
    st.plotly_chart(figures.faithfulness_curves(report, names), width="stretch", key="am_faith_chart")
    so_far = "" if report.exact else " (so far)"
    st.markdown(
        "\n".join(f"- **{METHODS[curve.method].label}** {report.verdict(curve)}{so_far}." for curve in report.curves)
    )
    _stage_note(
        report,
        work,
        f"On our test photos the area under each of its curves is within {metrics.FIRST_AUC_ERROR:.2f} of the "
        f"exact one's (the curves agree at r ≥ {metrics.FIRST_AGREEMENT:.2f}: they are jagged between the points "
        "it skips), so a verdict near the random line may still change.",
    )
    st.caption(RANDOM_LINE)


def _sanity(work: refine.Refinement | None, names: dict[str, str]) -> None:
    check = staged.latest(work, "Sanity check")
    if check is None:
        return
    st.plotly_chart(figures.sanity_chart(check, names), width="stretch", key="am_sanity_chart")
    _stage_note(
        check,
        work,
        "Its points are the exact values at those steps, the fully scrambled end (and so the verdict) included; "
        "the steps in between fill in.",
    )


def draw(view: View, page: Page) -> None:
    """The section: two tabs, each its explanation, its button and its chart (polled while it sharpens)."""
    st.header("Can we trust these maps?")
    faith_tab, sanity_tab = st.tabs(["Deleting the evidence", "Scrambling the network"])
    names = {name: METHODS[name].label for name in METHODS}
    with faith_tab:
        st.markdown(DELETION)
        widget(view, page, state.FAITHFULNESS_ON)
    with sanity_tab:
        st.markdown(SCRAMBLING)
        widget(view, page, state.SANITY_ON)
    polling = any(work is not None and not work.done for work in checks(view))

    def poll(draw_one, index: int) -> None:
        works = checks(view)
        draw_one(works[index], names)
        if polling and all(work is None or work.done for work in works):
            st.rerun()  # one full run once every check is exact, which stops the polling

    with faith_tab:
        st.fragment(poll, run_every=1.0 if polling else None)(_faithfulness, 0)
    with sanity_tab:
        st.fragment(poll, run_every=1.0 if polling else None)(_sanity, 1)
