"""Where it looked: which parts of the image made the model choose a class, and how far to trust that.

Declared once (``dashboard.views.declare``): the settings below draw the sidebar's widgets and make the
link and the slide; :func:`work` computes the maps (a talk's warm-up calls it too); :func:`draw`
draws them and the evidence.
"""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

import vis_core
from dashboard import figures, state
from dashboard.data import cache
from dashboard.share import present
from dashboard.views.declare import Choice, ClassIndex, Context, Flag, Many, Number, Page, Setting, View, show
from dashboard.words import escape, heading, terms
from dashboard.work import refine
from vis_core import metrics

METHODS = vis_core.METHODS
SCALES = ("Inferno", "Viridis", "Jet", "Hot", "Cividis")
COMPARE = ["gradcam", "layercam", "saliency", "guided_backprop"]


def _prediction(context: Context) -> vis_core.Prediction:
    handle, image = context.handle, context.image
    return cache.prediction(handle.key, image.key, handle, image.image)


def _top(context: Context) -> list[int]:
    """The photo's top five guesses (the class menu offers them first)."""
    return [int(i) for i in _prediction(context).indices]


def _top_class(context: Context) -> int:
    """Where the class starts: the photo's top guess (the class the audience just saw named)."""
    top = _top(context)
    return top[0] if top and 0 <= top[0] < len(context.handle.labels) else 0


def _class_labels(context: Context):
    prediction, labels = _prediction(context), context.handle.labels
    shares = {int(i): p for i, p in zip(prediction.indices, prediction.probabilities, strict=True)}
    return lambda i: labels[i] + (f" ({shares[i]:.0%})" if i in shares else "")


def _spatial(context: Context) -> list[str]:
    return context.handle.spatial_blocks()


def _last_spatial(context: Context) -> str:
    return context.handle.last_spatial_layer()


LABELS = {name: method.label for name, method in METHODS.items()}
SETTINGS = (
    Setting("am_method", "method", Choice(list(METHODS), labels=LABELS), next(iter(METHODS)), "Method"),
    Setting(
        "am_target",
        "class",
        ClassIndex(first=_top, labels=_class_labels),
        _top_class,
        "Explain the class",
        help="The top five predictions come first; type to find any other class. It follows the photo's top guess "
        "until you choose another class.",
        follows=True,
    ),
    Setting(
        "am_opacity",
        "opacity",
        Number(0.0, 1.0, 0.05),
        0.55,
        "Overlay opacity",
        "slider",
        "How strongly the map's colours cover the photo. Where the map is near zero the photo always shows through.",
    ),
    Setting(
        "am_colorscale",
        "colors",
        Choice(SCALES),
        "Inferno",
        "Colour scale",
        help="The colours for weak to strong evidence. Signed maps always use red (for) and blue (against).",
    ),
    Setting(
        "am_absolute",
        "absolute",
        Flag(),
        False,
        "Absolute values",
        "toggle",
        "Signed methods (integrated gradients, occlusion) show evidence for (red) and against (blue); switch on to "
        "show only the strength.",
    ),
    Setting(
        state.ACTIVATION_LAYER,
        "cam_layer",
        Choice(_spatial, "a spatial block:"),
        _last_spatial,
        "Layer for CAM methods",
        help=terms.help(
            "Grad-CAM",
            "Which layer the CAM-style methods (CAM, Grad-CAM, Grad-CAM++, Score-CAM, Layer-CAM) read. It starts at "
            "the last block that still keeps a picture's layout, the usual choice: the most abstract maps that still "
            "say where. Earlier layers give finer but less class-specific maps.",
        ),
    ),
    Setting(
        "am_compare",
        "compare",
        Many(list(METHODS), labels=LABELS),
        COMPARE,
        "Methods side by side",
        "multiselect",
        "Slow methods (Score-CAM, occlusion) show a quick first picture and sharpen it while you watch.",
    ),
)


def work(view: View) -> dict[str, Any]:
    """Each method's map (the chosen one and the comparison): a click-speed method's from the cache,
    a slow one's shared refinement (``dashboard.work.refine``), or the engine's error for it."""
    handle, image, target = view.handle, view.image, view.get("am_target")
    cache.model_view(handle.key, image.key, handle, image.image)  # what the maps are drawn over
    jobs: dict[str, Any] = {}
    for name in dict.fromkeys([view.get("am_method"), *view.get("am_compare")]):
        layer = view.get(state.ACTIVATION_LAYER) if METHODS[name].layer_choice else None
        try:
            if METHODS[name].refines:
                jobs[name] = refine.refinement(handle, image.key, image.image, name, target, layer)
            else:
                jobs[name] = cache.attribution(handle.key, image.key, name, target, layer, handle, image.image)
        except vis_core.VisCoreError as exc:
            jobs[name] = exc
    return jobs


def cost(view: View) -> float:
    """Passes of the network its maps need, as the engine counts them (``Method.passes``)."""
    total = 0.0
    for name in dict.fromkeys([view.get("am_method"), *view.get("am_compare")]):
        spec = METHODS[name]
        layer = view.get(state.ACTIVATION_LAYER) if spec.uses_layer else None
        forward, both = spec.passes(view.handle, layer, {})
        total += forward + both
    return total


def draw(view: View, jobs: dict[str, Any]) -> None:
    handle, entry = view.handle, view.image
    method, target = view.get("am_method"), view.get("am_target")
    opacity, colorscale, absolute = view.get("am_opacity"), view.get("am_colorscale"), view.get("am_absolute")
    cam_layer, compare = view.get(state.ACTIVATION_LAYER), view.get("am_compare")
    heading.show(
        "Where it looked",
        "Which parts of the picture made the network say what it said? These are **activation / attribution "
        "maps** (also called saliency maps or heatmaps). Each method below answers in its own way "
        "and paints the answer over the image: bright where the evidence for the chosen class is. They do not "
        "always agree, so the end of the page tests them: does hiding the bright parts really change the "
        "answer, and does the map change when the network is scrambled?",
    )
    picture = cache.model_view(handle.key, entry.key, handle, entry.image)
    for name, job in jobs.items():
        if isinstance(job, vis_core.VisCoreError):
            st.warning(f"{METHODS[name].label}: {escape.markdown(job)}")

    def latest(work: vis_core.Attribution | refine.Refinement | None) -> vis_core.Attribution | None:
        """The best map there is so far; a refinement's first picture is waited for."""
        if isinstance(work, vis_core.VisCoreError):
            return None
        if not isinstance(work, refine.Refinement):
            return work
        if not work.first.is_set():
            with st.spinner(f"{METHODS[work.key[2]].label}: the first picture…"):
                work.wait_first()
        if work.error is not None:
            st.warning(f"{METHODS[work.key[2]].label}: {escape.markdown(work.error)}")
        return work.latest

    def overlay(result: vis_core.Attribution, title: str, **size):
        signed = result.signed and not absolute
        values = result.cells if signed else abs(result.cells)
        return figures.attribution_overlay(
            picture, values, title=title, opacity=opacity, colorscale=colorscale, signed=signed, **size
        )

    def stage_caption(result: vis_core.Attribution, work) -> str:
        if result.exact:
            return ""
        agreement = METHODS[result.method].first_agreement
        done = f" ({work.fraction:.0%} done)" if work.fraction else ""
        return (
            f"First picture: {result.approximation}. It agrees with the exact map at r ≥ {agreement:.2f} on our test "
            f"photos; the exact map replaces it when ready{done}."
        )

    def draw_maps() -> None:
        """The chosen method large, then the comparison; redrawn every second while a map sharpens."""
        for job in jobs.values():
            if isinstance(job, refine.Refinement):
                job.seen = time.monotonic()  # someone is watching: keep refining
        result = latest(jobs[method])
        if result is not None:
            where = f" at {result.layer}" if result.layer else ""
            title = f"{METHODS[method].label} for '{escape.plotly(result.target_label)}'{where}"
            st.plotly_chart(overlay(result, title), width="stretch", key="am_main")
            st.caption(f"{METHODS[method].summary} Computed with {METHODS[method].library} in {result.seconds:.2f} s.")
            if caption := stage_caption(result, jobs[method]):
                st.caption(caption)
            if result.completeness_error is not None:
                st.caption(
                    "Completeness: the attributions add up to the change of the class score from a "
                    "black image to this "
                    f"one within {result.completeness_error:.1%} ({result.steps} steps along the path; the goal is 5%)."
                )
            if result.note:
                st.info(escape.markdown(result.note))

        if present.folded():  # a slide: the chosen method's map (the comparison is drawn with the whole page)
            return
        st.header("Compare methods")
        columns = st.columns(min(4, max(1, len(compare))))
        for index, name in enumerate(compare):
            with columns[index % len(columns)]:
                other = latest(jobs[name])
                if other is None:
                    continue
                small = overlay(other, METHODS[name].label + ("" if other.exact else " (first picture)"), height=320)
                small.update_traces(showscale=False, selector=dict(type="heatmap"))
                st.plotly_chart(small, width="stretch", key=f"am_compare_{name}")
                if other.note:
                    st.caption(escape.markdown(other.note))
        sharpening = [job for job in jobs.values() if isinstance(job, refine.Refinement) and not job.done]
        if sharpening:
            st.caption(
                "Sharpening: " + ", ".join(f"{METHODS[job.key[2]].label} {job.fraction:.0%}" for job in sharpening)
            )
        elif polling:
            st.rerun()  # every map is exact now: one full run, which stops the polling

    polling = any(isinstance(job, refine.Refinement) and not job.done for job in jobs.values())
    st.fragment(draw_maps, run_every=1.0 if polling else None)()

    present.fold()
    st.header("Can we trust these maps?")
    faith_tab, sanity_tab = st.tabs(["Deleting the evidence", "Scrambling the network"])
    chosen = tuple(m for m in compare if METHODS[m].speed != "long") or ("gradcam", "saliency")
    sanity_methods = tuple(dict.fromkeys(("saliency", "gradcam", "guided_backprop", *chosen)))[:5]
    names = {name: METHODS[name].label for name in METHODS}

    def evidence(work: refine.Refinement | None, what: str):
        """The latest stage of a staged check (waiting for its quick first version), or None."""
        if work is None:
            return None
        work.seen = time.monotonic()  # someone is watching: keep refining
        if not work.first.is_set():
            with st.spinner(f"{what}: the quick first version…"):
                work.wait_first()
        if work.error is not None:
            st.warning(f"{what}: {escape.markdown(work.error)}")
        return work.latest

    def stage_note(result, work: refine.Refinement, agreement: str) -> None:
        """Under a quick version: what it leaves out, how close it is, and how far the exact one is."""
        if result.exact:
            return
        done = f" ({work.fraction:.0%} done)" if work.fraction else ""
        st.caption(f"Quick first version: {result.approximation}. {agreement} The exact result replaces it{done}.")

    def poll_until_exact(works) -> None:
        """One full run once every staged check is exact, which stops the polling."""
        if evidence_polling and all(work is None or work.done for work in works):
            st.rerun()

    def draw_faithfulness() -> None:
        work = None
        if st.session_state.get(state.FAITHFULNESS_ON):
            work = refine.faithfulness(handle, entry.key, entry.image, chosen, target, cam_layer)
        report = evidence(work, "Faithfulness")
        if report is not None:
            st.plotly_chart(figures.faithfulness_curves(report, names), width="stretch", key="am_faith_chart")
            st.markdown(
                "\n".join(
                    f"- **{METHODS[curve.method].label}** {report.verdict(curve)}{'' if report.exact else ' (so far)'}."
                    for curve in report.curves
                )
            )
            stage_note(
                report,
                work,
                f"On our test photos the area under each of its curves is within {metrics.FIRST_AUC_ERROR:.2f} of the "
                f"exact one's (the curves agree at r ≥ {metrics.FIRST_AGREEMENT:.2f}: they are "
                "jagged between the points "
                "it skips), so a verdict near the random line may still change.",
            )
            st.caption(
                "The grey dashed lines are a random map (the mean of three; of two in the quick first version): a map "
                "that does not beat it says nothing about this decision. As in RISE (Petsiuk et al. "
                "2018), deleted pixels "
                "turn grey and inserted pixels go onto a blurred copy. Methods that take hundreds of passes per map "
                "(Score-CAM, occlusion) are left out."
            )
        poll_until_exact([work, sanity_work()])

    def sanity_work() -> refine.Refinement | None:
        if not st.session_state.get(state.SANITY_ON):
            return None
        return refine.sanity(handle, entry.key, entry.image, sanity_methods, target, cam_layer)

    def draw_sanity() -> None:
        work = sanity_work()
        check = evidence(work, "Sanity check")
        if check is not None:
            st.plotly_chart(figures.sanity_chart(check, names), width="stretch", key="am_sanity_chart")
            stage_note(
                check,
                work,
                "Its points are the exact values at those steps, the fully scrambled end (and so "
                "the verdict) included; "
                "the steps in between fill in.",
            )

    with faith_tab:
        st.markdown(
            "If a map is right, greying out its brightest pixels first should make the model lose confidence fast "
            "(**deletion**: small area under the curve is good), and revealing them first on a blurred picture "
            "should restore it fast (**insertion**: large area is good)."
        )
        if st.button(
            "Measure faithfulness",
            key="am_faith",
            help="Runs the model on a few hundred copies of the photo with more and more of it greyed out or revealed. "
            "A quick first version comes within seconds; the exact curves follow.",
        ):
            st.session_state[state.FAITHFULNESS_ON] = True
    with sanity_tab:
        st.markdown(
            "A map that explains the model must change when the model is destroyed. Here the network's weights are "
            "replaced by random ones, block by block from the top, on a private copy. Lines that stay near 1 belong to "
            "methods that mostly show the image, not the model (guided backprop is the textbook case)."
        )
        if st.button(
            "Run the sanity check",
            key="am_sanity",
            help="Redraws the maps on a copy of the network whose layers are replaced by random ones, one block at a "
            "time from the top. The fully scrambled end comes first; the steps in between fill in.",
        ):
            st.session_state[state.SANITY_ON] = True
    staged = [
        refine.faithfulness(handle, entry.key, entry.image, chosen, target, cam_layer)
        if st.session_state.get(state.FAITHFULNESS_ON)
        else None,
        sanity_work(),
    ]
    evidence_polling = any(work is not None and not work.done for work in staged)
    with faith_tab:
        st.fragment(draw_faithfulness, run_every=1.0 if evidence_polling else None)()
    with sanity_tab:
        st.fragment(draw_sanity, run_every=1.0 if evidence_polling else None)()


PAGE = Page("activation_maps", SETTINGS, work, draw, cost, controls="Activation maps")

if __name__ == "__main__":
    show(PAGE)
