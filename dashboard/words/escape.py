"""Text that came from a user (class names, file names, link values, run names, messages that
quote them) shown as text, never as markup.

Streamlit renders Markdown in messages, captions and labels: ``[Log in](https://…)`` becomes a
link and ``![x](http://…)`` makes every viewer's browser fetch a URL. Plotly renders a subset of
HTML (``<a href>``, ``<b>``, ``<br>``, ``<img>`` is dropped but ``<a>`` is live) in titles, tick
labels and hover text. Each function here turns text into what shows those characters as they are.
"""

from __future__ import annotations

import html
import re

#: Characters with a meaning in Streamlit's Markdown (CommonMark, GitHub extensions, LaTeX with
#: ``$``, ``:material/icon:`` and ``:color[text]`` directives): each gets a backslash.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:=^&\"'])")


def markdown(text: object) -> str:
    """``text`` for ``st.markdown``, ``st.error``, ``st.toast``, captions...: shown literally."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def plotly(text: object) -> str:
    """``text`` for Plotly titles, tick labels and hover text: tags and entities shown literally."""
    return html.escape(str(text), quote=False)
