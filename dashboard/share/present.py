"""Whether a talk is being presented, and where a presented slide's first screen ends.

The pages need only these two questions about presenting (the talk itself, its slides and the
presenter's bar are :mod:`dashboard.share.talks`), so they ask them here, without importing the talks.
"""

from __future__ import annotations

import streamlit as st

from dashboard import state


def presenting() -> bool:
    """Whether this session presents its talk now."""
    talk = st.session_state.get(state.TALK)
    return bool(st.session_state.get(state.TALK_PRESENTING)) and talk is not None and bool(talk.slides)


def folded() -> bool:
    """Whether this run draws a presented slide's first screen only (see :func:`fold`)."""
    return presenting() and not st.session_state.get(state.TALK_WHOLE)


def fold() -> None:
    """Where a page's first screen ends: its main picture and what explains it are above. A
    presented slide stops here (the rest of the page is drawn when the presenter asks for the
    whole page); anywhere else this does nothing."""
    if folded():
        st.caption("More on this page below: press **Whole page** (or W).")
        st.stop()
