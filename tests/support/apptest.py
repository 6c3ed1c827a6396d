"""Running the dashboard in Streamlit's AppTest: shared by the page tests and the security tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dashboard.share import talks
from dashboard.work import refine, story

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 120


@pytest.fixture
def clear_caches():
    """Empty Streamlit's caches around a test (they persist across AppTest instances in one process)."""
    st.cache_data.clear()
    st.cache_resource.clear()
    talks.clear()  # which slides are ready says nothing once the caches are empty
    yield
    st.cache_data.clear()
    st.cache_resource.clear()
    refine.clear()  # maps still sharpening in the background stop before the next test
    story.clear()  # and the tour's slow steps being prepared
    talks.clear()  # and a talk's slides


def start(page: str | None = None, **state) -> AppTest:
    """A fresh session on ``page`` with ``state`` set before its first run; no exception raised.

    The keys are those named in ``dashboard.state`` (``start(page, **{LAYER: "features.2"})``)
    or a page's own widget keys (``start(page, fm_show="Top-N by max")``).
    """
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


def setting(widgets, key: str):
    """The widget of a page's setting ``key`` among ``widgets`` (``at.selectbox``...): a setting's
    widget is drawn under ``key@<its offer>`` (``dashboard.views.declare``)."""
    for widget in widgets:
        if widget.key is not None and widget.key.split("@")[0] == key:
            return widget
    raise KeyError(key)
