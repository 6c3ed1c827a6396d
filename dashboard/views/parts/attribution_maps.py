"""Where it looked, its first half: the chosen method's map large, then the methods side by side.

A click-speed method's map comes from the cache; a slow one (Score-CAM, occlusion) is a shared
refinement (``dashboard.work.refine``): its quick first picture is shown at once, captioned with
how close it is, and the section redraws every second until every map is exact."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

import vis_core
from dashboard import figures
from dashboard.data import cache
from dashboard.share import present
from dashboard.views.declare import View
from dashboard.views.parts import staged
from dashboard.words import escape
from dashboard.work import refine

METHODS = vis_core.METHODS


def _latest(work: vis_core.Attribution | refine.Refinement | vis_core.VisCoreError) -> vis_core.Attribution | None:
    """The best map there is so far; a refinement's first picture is waited for."""
    if isinstance(work, vis_core.VisCoreError):
        return None
    if not isinstance(work, refine.Refinement):
        return work
    return staged.latest(work, METHODS[work.key[2]].label, "the first picture")


def _stage_caption(result: vis_core.Attribution, work) -> str:
    if result.exact:
        return ""
    agreement = METHODS[result.method].first_agreement
    done = f" ({work.fraction:.0%} done)" if work.fraction else ""
    return (
        f"First picture: {result.approximation}. It agrees with the exact map at r ≥ {agreement:.2f} on our test "
        f"photos; the exact map replaces it when ready{done}."
    )


def _notes(method: str, result: vis_core.Attribution, work) -> None:
    st.caption(f"{METHODS[method].summary} Computed with {METHODS[method].library} in {result.seconds:.2f} s.")
    if caption := _stage_caption(result, work):
        st.caption(caption)
    if result.completeness_error is not None:
        st.caption(
            "Completeness: the attributions add up to the change of the class score from a black image to this "
            f"one within {result.completeness_error:.1%} ({result.steps} steps along the path; the goal is 5%)."
        )
    if result.note:
        st.info(escape.markdown(result.note))


def draw(view: View, jobs: dict[str, Any]) -> None:
    """The maps section, as a fragment redrawn every second while a map sharpens."""
    handle, entry = view.handle, view.image
    method, compare = view.get("am_method"), view.get("am_compare")
    opacity, colorscale, absolute = view.get("am_opacity"), view.get("am_colorscale"), view.get("am_absolute")
    picture = cache.model_view(handle.key, entry.key, handle, entry.image)
    for name, job in jobs.items():
        if isinstance(job, vis_core.VisCoreError):
            st.warning(f"{METHODS[name].label}: {escape.markdown(job)}")

    def overlay(result: vis_core.Attribution, title: str, **size):
        signed = result.signed and not absolute
        values = result.cells if signed else abs(result.cells)
        return figures.attribution_overlay(
            picture, values, title=title, opacity=opacity, colorscale=colorscale, signed=signed, **size
        )

    def maps() -> None:
        for job in jobs.values():
            if isinstance(job, refine.Refinement):
                job.seen = time.monotonic()  # someone is watching: keep refining
        result = _latest(jobs[method])
        if result is not None:
            where = f" at {result.layer}" if result.layer else ""
            title = f"{METHODS[method].label} for '{escape.plotly(result.target_label)}'{where}"
            st.plotly_chart(overlay(result, title), width="stretch", key="am_main")
            _notes(method, result, jobs[method])
        if present.folded():  # a slide: the chosen method's map (the comparison is drawn with the whole page)
            return
        st.header("Compare methods")
        columns = st.columns(min(4, max(1, len(compare))))
        for index, name in enumerate(compare):
            with columns[index % len(columns)]:
                other = _latest(jobs[name])
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
    st.fragment(maps, run_every=1.0 if polling else None)()
