"""Every page's heading: its title and the introduction in plain words, in one keyed container.

Presenter mode (:mod:`dashboard.share.talks`) hides this container: a slide shows its own title in
large type instead, and the page's picture moves up into a 1280x720 screen, where the heading
and introduction had pushed it below the fold.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

#: The container's key (its CSS class is ``st-key-page_heading``).
KEY = "page_heading"


def show(title: str, intro: str, **markdown: Any) -> None:
    """The page's title (h1) and its introduction."""
    with st.container(key=KEY):
        st.title(title)
        st.markdown(intro, **markdown)
