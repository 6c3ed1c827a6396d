"""What tests and benchmarks share: reading the dashboard's text, and driving it in a browser
(:mod:`tests.support.browser`). Test code, not product: nothing in ``dashboard`` or ``vis_core``
imports it."""

from __future__ import annotations

import re


def shown(markdown: str) -> str:
    """The text a viewer reads from Markdown the dashboard escaped (``dashboard.words.escape``)."""
    return re.sub(r"\\(.)", r"\1", markdown)
