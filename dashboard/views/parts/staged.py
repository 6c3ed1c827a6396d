"""A staged result on a page (a map that refines, a check's quick version then its exact one):
the latest stage, after waiting for the first with a spinner; its error, if any, as a warning."""

from __future__ import annotations

import time
from typing import Any

import streamlit as st

from dashboard.words import escape
from dashboard.work import refine


def latest(work: refine.Refinement | None, what: str, first: str = "the quick first version") -> Any:
    """The latest stage of ``work`` (None for none), waiting for its first stage; watching it
    keeps it refining."""
    if work is None:
        return None
    work.seen = time.monotonic()  # someone is watching: keep refining
    if not work.first.is_set():
        with st.spinner(f"{what}: {first}…"):
            work.wait_first()
    if work.error is not None:
        st.warning(f"{what}: {escape.markdown(work.error)}")
    return work.latest
