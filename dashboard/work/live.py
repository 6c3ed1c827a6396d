"""Long work inside a page run, with a progress bar, a live preview and a stop button.

The optimisation pages (feature visualisation, deep dream, reconstruction) each make one
:func:`work` call: it runs the engine when the page's button was pressed, keeps the result in
the session, and shows what a stopped run had made.

The work runs in the script itself; the engine calls ``on_step`` after every step and we
update the bar and the preview there. Clicking Stop (or anything else) starts a new run of
the page, and Streamlit ends the old one at its next update: the engine's guard restores
the model on the way out and nothing stacks. What the stopped work had made so far is kept
(:func:`partial`): its latest preview.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np
import streamlit as st
from PIL import Image

import vis_core
from dashboard.share import present
from dashboard.words import escape
from vis_core import costs
from vis_core.arrays import to_uint8

T = TypeVar("T")
#: ``on_step(step, total, preview)``: the engine's progress callback; ``preview`` is a
#: ``(B, C, H, W)`` tensor in [0, 1] every few steps, None otherwise.
OnStep = Callable[[int, int, Any], None]


def preview_image(images) -> np.ndarray:
    """The first image of a ``(B, C, H, W)`` tensor in [0, 1] as ``(H, W, 3)``."""
    array = images[0].detach().float().clamp(0, 1).permute(1, 2, 0).numpy()
    return np.repeat(array, 3, axis=2) if array.shape[2] == 1 else array


@dataclass(frozen=True)
class Partial:
    """What stopped work had made: its latest preview, after ``step`` of ``total`` steps."""

    image: np.ndarray
    step: int
    total: int


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A finished result and the named settings it was made with (to tell when it is stale)."""

    value: T
    made_with: Mapping[str, Any] = field(default_factory=dict)


def partial(key: str) -> Partial | None:
    """The picture the last run of ``key`` had made when it was stopped (None if it finished)."""
    return st.session_state.get(f"{key}_partial")


def run(label: str, work: Callable[[OnStep], T], *, key: str, preview_width: int = 320) -> T:
    """Run ``work(on_step)`` with a progress bar, a preview and a Stop button.

    Each preview is also kept as :func:`partial`, so a Stop keeps the picture made so far;
    it is dropped when the work finishes.
    """
    bar = st.progress(0.0, text=label)
    stop = st.empty()  # gone with the bar when the work ends: a Stop button with nothing to stop misleads
    stop.button("Stop", key=f"{key}_stop", help="Stops now; the picture made so far stays.")
    slot = st.empty()
    st.session_state.pop(f"{key}_partial", None)

    def on_step(step: int, total: int, preview) -> None:
        bar.progress(step / total, text=f"{label}: step {step} of {total}")
        if preview is not None:
            image = preview_image(preview)
            st.session_state[f"{key}_partial"] = Partial(image, step, total)
            slot.image(image, caption="work in progress", width=preview_width)

    try:
        result = work(on_step)
        st.session_state.pop(f"{key}_partial", None)
        return result
    finally:
        bar.empty()
        stop.empty()
        slot.empty()


def work(
    start: bool,
    label: str,
    compute: Callable[[OnStep], T],
    *,
    key: str,
    result_key: str,
    made_with: Mapping[str, Any] | None = None,
    so_far: str,
    again: str,
    note: str = "",
    file: str,
    ahead: Callable[[], T | None] | None = None,
) -> Outcome[T] | None:
    """An optimisation page's run, stop and preview, in one call.

    When ``start`` (the page's button was pressed), run ``compute(on_step)`` through :func:`run`
    and keep its result with ``made_with`` in ``st.session_state[result_key]``; an engine error
    is shown on the page. When the last run was stopped, show the picture it had made
    (``so_far`` names it, ``note`` adds a remark, ``again`` is the button that starts over,
    ``file`` the download's name) and end the page there. Returns the latest finished outcome,
    or None when there is none yet. ``ahead``: what a presented slide shows, made when the talk
    started (:mod:`dashboard.share.settings`' warm-up); asked only while presenting, and its result is
    then the outcome. A None from it (past the work one request may use), or no ``ahead``, and the
    page works as above.
    """

    if ahead is not None and present.presenting() and (value := ahead()) is not None:
        return Outcome(value, dict(made_with or {}))
    if start:
        try:
            value = run(label, compute, key=key)
            st.session_state[result_key] = Outcome(value, dict(made_with or {}))
        except vis_core.VisCoreError as exc:
            st.error(escape.markdown(exc))
    if stopped := partial(key):
        st.image(
            stopped.image,
            caption=f"Stopped after step {stopped.step} of {stopped.total}: {so_far} so far{note}. "
            f"Press {again} to start again.",
            width="stretch",
            clamp=True,
        )
        st.download_button(
            f"Download {so_far} so far (PNG)", png_bytes(stopped.image), f"{file}-partial.png", "image/png"
        )
        st.stop()
    return st.session_state.get(result_key)


def in_turn(on_step: OnStep, index: int, count: int) -> OnStep:
    """Progress of the ``index``-th of ``count`` equally long jobs, as steps of the whole."""

    def report(step: int, total: int, preview) -> None:
        on_step(index * total + step, count * total, preview)

    return report


def png_bytes(image: np.ndarray) -> bytes:
    """An ``(H, W, 3)`` float image in [0, 1] as PNG bytes, for download buttons."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def estimate(handle: vis_core.ModelHandle, work: float, reduce: str) -> bool:
    """Say before a long job starts how long it will take on this machine (the measured cost
    model, ``vis_core.costs``), or, past the cap one request may use, what to reduce.
    Returns whether the work may start."""
    if work > costs.MAX_WORK:
        st.warning(
            f"These settings ask for {work:,.0f} passes of the network, more than the {costs.MAX_WORK:,} one "
            f"request may use here. Reduce {reduce}."
        )
        return False

    if not present.presenting():  # a slide's picture was made when the talk started: no wait to announce
        seconds = costs.seconds_for(handle, forward_backward=work)
        st.caption(f"About {duration(seconds)} on this machine ({work:,.0f} passes of the network).")
    return True


def duration(seconds: float) -> str:
    """``seconds`` in words a viewer reads at a glance: "a second", "40 s", "3 min"."""
    if seconds < 1.5:
        return "a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"
