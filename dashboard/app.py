"""Entry point: ``python -m dashboard`` (warms the engine first) or ``streamlit run dashboard/app.py``.

Sets up the page, draws the sidebar shared by every page (model, image, layer, filter) and
runs the page chosen in the navigation. Pages stay thin: they take the selection with
``shell.current()``, read their own controls, call one engine function through
``dashboard.data.cache``, and draw the result.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(ROOT))

import pandas  # noqa: E402, F401 - see below
import streamlit as st  # noqa: E402

import vis_core  # noqa: E402
from dashboard import shell  # noqa: E402
from dashboard.share import present, talks  # noqa: E402
from dashboard.words import escape  # noqa: E402

vis_core.keep_freed_memory()  # once per server process (see vis_core.memory)
# pandas is imported above, in every run, before any page builds a figure: Plotly checks for
# pandas through sys.modules without importing it, so a session building a figure while another
# thread was still importing pandas met a half-initialised module ("partially initialized module
# 'pandas' has no attribute 'Series'"; the load benchmark's four browsers hit it). A real import
# waits for the other thread to finish.

PAGES_DIR = (
    Path(__file__).parent / "views"
)  # not "pages/": that name switches on Streamlit's older automatic multipage mode

st.set_page_config(page_title="Inside a CNN", page_icon="🔬", layout="wide")

#: The pages in the navigation, grouped by what a visitor wants to do; plain titles (the page's own
#: heading names the technique too). Each page's address is its file name (``/activation_maps``);
#: the tour is the landing page.
PAGES = {
    "Start": [
        st.Page(PAGES_DIR / "tour.py", title="Tour", icon=":material/tour:", default=True),
        st.Page(PAGES_DIR / "glossary.py", title="Glossary", icon=":material/menu_book:"),
    ],
    "Look inside": [
        st.Page(PAGES_DIR / "overview.py", title="Photo and guesses", icon=":material/home:"),
        st.Page(PAGES_DIR / "feature_maps.py", title="Feature maps", icon=":material/grid_view:"),
        st.Page(PAGES_DIR / "filters.py", title="Filters", icon=":material/filter:"),
        st.Page(PAGES_DIR / "unit.py", title="One filter", icon=":material/center_focus_strong:"),
        st.Page(PAGES_DIR / "projection.py", title="Back to pixels", icon=":material/undo:"),
        st.Page(PAGES_DIR / "atlas.py", title="Atlas", icon=":material/apps:"),
    ],
    "Explain a decision": [
        st.Page(PAGES_DIR / "activation_maps.py", title="Where it looked", icon=":material/local_fire_department:"),
    ],
    "Make pictures": [
        st.Page(PAGES_DIR / "deep_dream.py", title="Deep dream", icon=":material/cloud:"),
        st.Page(PAGES_DIR / "feature_vis.py", title="Ideal images", icon=":material/palette:"),
        st.Page(PAGES_DIR / "reconstruction.py", title="Rebuild the photo", icon=":material/restore:"),
    ],
    "Present and train": [
        st.Page(PAGES_DIR / "talk.py", title="My talk", icon=":material/slideshow:"),
        st.Page(PAGES_DIR / "training_lab.py", title="Training lab", icon=":material/school:"),
    ],
}
# Every page listed (none hides behind "View more"); none while presenting: the sidebar is hidden
# then, and a slide change would still redraw the hidden list.
navigation = st.navigation(PAGES, expanded=True, position="hidden" if present.presenting() else "sidebar")
talks.style(st.empty())  # first in the main area, whatever the run draws after it
shell.render()
try:
    navigation.run()
except vis_core.VisCoreError as exc:  # one place for every page: an engine error is a message, never a traceback
    st.error(escape.markdown(exc), icon=":material/error:")
