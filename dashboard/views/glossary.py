"""Glossary: every technical word of the dashboard, in plain language."""

from __future__ import annotations

import streamlit as st

from dashboard.words import heading, terms

heading.show(
    "Glossary",
    "The words these pages use, explained without mathematics. A control with a technical name has a "
    "**?** beside it that gives the same explanation.",
)

wanted = st.text_input("Find a word", key="gl_find", placeholder="e.g. filter, octave, SSIM").strip().lower()
shown = [
    term
    for term in terms.sorted_terms()
    if not wanted or wanted in " ".join((term.name, *term.also, term.meaning)).lower()
]
if not shown:
    st.info("No entry mentions that word; clear the box to see them all.")
for term in shown:
    st.subheader(term.name[0].upper() + term.name[1:], anchor=term.anchor)
    if term.also:
        st.caption("Also: " + ", ".join(term.also))
    st.markdown(term.meaning)
