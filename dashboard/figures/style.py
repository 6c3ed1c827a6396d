"""What every figure shares: colours, margins and the outline that marks a chosen tile."""

from __future__ import annotations

#: Colour scales a page may offer for heatmaps.
COLORSCALES = ("Viridis", "Inferno", "Magma", "Plasma", "Cividis", "Greys", "RdBu_r")
#: Bars and single lines.
BLUE = "#4c78a8"
#: The chosen channel, filter, layer or box.
HIGHLIGHT = "#e4572e"
#: What a viewer should read past: dead filters, the random baseline.
GREY = "#9aa0a6"
#: One colour per method in charts that compare methods (wraps around after eight).
PALETTE = (BLUE, HIGHLIGHT, "#54a24b", "#b279a2", "#f58518", "#72b7b2", "#9d755d", "#eeca3b")
#: Margins around most figures (room for a title).
MARGIN = dict(l=10, r=10, t=40, b=10)


def outline(top: int, left: int, rows: int, cols: int) -> dict:
    """An orange rectangle around ``rows`` x ``cols`` cells from (top, left): the chosen tile or box."""
    return dict(
        type="rect",
        x0=left - 0.5,
        x1=left + cols - 0.5,
        y0=top - 0.5,
        y1=top + rows - 0.5,
        line=dict(color=HIGHLIGHT, width=3),
    )
