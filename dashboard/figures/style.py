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


def name_values(heatmap, quantity: str):
    """Call a heatmap trace's values ``quantity`` on its colour bar and in its hover label (a mosaic
    built for feature maps says "activation"; kernels are weights). Returns the trace."""
    template = heatmap.hovertemplate or ""
    heatmap.update(hovertemplate=template.replace("activation", quantity), colorbar=dict(title=quantity))
    return heatmap


def fade_near_zero(colorscale: str, *, signed: bool = False, fade: float = 0.2, samples: int = 33) -> list:
    """``colorscale`` as rgba stops whose opacity rises from 0 at zero to full at ``fade`` of the
    way to the extreme: an overlay then shows the photo itself where a map says nothing, instead
    of a band of the scale's zero colour (Inferno's black, RdBu's white) over the whole picture.

    Args:
        colorscale: a Plotly colour scale name.
        signed: zero is the middle of the scale (a diverging scale from -limit to +limit),
            else its bottom (a scale from 0 up).
        fade: share of the distance from zero to the extreme over which the colour fades in.
    """
    from plotly.colors import sample_colorscale, unlabel_rgb

    stops = [index / (samples - 1) for index in range(samples)]
    scale = []
    for stop, colour in zip(stops, sample_colorscale(colorscale, stops, colortype="rgb")):
        red, green, blue = unlabel_rgb(colour)
        distance = abs(stop - 0.5) * 2 if signed else stop
        alpha = min(1.0, distance / fade) if fade > 0 else 1.0
        scale.append([stop, f"rgba({red:.0f},{green:.0f},{blue:.0f},{alpha:.3f})"])
    return scale
