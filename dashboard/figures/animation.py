"""Animated grids: a layer's kernels or feature maps changing over training snapshots."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from dashboard.figures.maps import channel_mosaic, rgb_mosaic
from dashboard.figures.style import name_values


def kernel_animation(history: np.ndarray, labels: Sequence[str], *, columns: int = 8) -> go.Figure:
    """First-layer kernels over training: one frame per snapshot, with play and a slider.

    Args:
        history: ``(S, out, h, w)`` kernels (one map per filter, signed) or
            ``(S, out, h, w, 3)`` colour kernels in [0, 1].
        labels: one caption per snapshot (e.g. ``epoch 3 · 97.2% test accuracy``).
    """
    if history.ndim == 5:
        frames = [rgb_mosaic(snapshot, columns=columns).data[0] for snapshot in history]
        return _animate(rgb_mosaic(history[0], columns=columns), frames, labels)
    limit = float(np.abs(history).max()) or 1.0
    return mosaic_animation(
        history, labels, columns=columns, zmin=-limit, zmax=limit, colorscale="RdBu_r", colorbar_title="weight"
    )


def mosaic_animation(
    stack: np.ndarray,
    labels: Sequence[str],
    *,
    columns: int = 8,
    zmin: float | None = None,
    zmax: float | None = None,
    colorscale: str = "Viridis",
    colorbar_title: str = "activation",
    tile_px: int = 96,
) -> go.Figure:
    """``(S, C, h, w)`` maps as an animated grid: one frame per step, one colour range for all.
    ``colorbar_title`` names the values on the colour bar and on hover (``weight`` for kernels)."""
    low = float(np.nanmin(stack)) if zmin is None else zmin
    high = float(np.nanmax(stack)) if zmax is None else zmax
    high = high if high > low else low + 1.0
    channels = range(stack.shape[1])

    def trace(maps: np.ndarray):
        figure = channel_mosaic(
            maps, channels, columns=columns, colorscale=colorscale, per_channel_scale=False, tile_px=tile_px
        )
        figure.data[0].update(zmin=low, zmax=high)
        name_values(figure.data[0], colorbar_title)  # kernels say "weight" on hover and on the colour bar
        return figure

    base = trace(stack[0])
    return _animate(base, [trace(maps).data[0] for maps in stack], labels)


def _animate(base: go.Figure, traces: Sequence, labels: Sequence[str]) -> go.Figure:
    base.frames = [
        go.Frame(data=[trace], name=str(index), layout=dict(title=labels[index])) for index, trace in enumerate(traces)
    ]
    play = dict(frame=dict(duration=700, redraw=True), fromcurrent=True)
    steps = [
        dict(
            method="animate", label=str(i), args=[[str(i)], dict(mode="immediate", frame=dict(duration=0, redraw=True))]
        )
        for i in range(len(traces))
    ]
    base.update_layout(
        title=labels[0],
        updatemenus=[
            dict(
                type="buttons",
                showactive=False,
                x=0,
                y=-0.02,
                xanchor="left",
                yanchor="top",
                direction="right",
                buttons=[
                    dict(label="▶ Play", method="animate", args=[None, play]),
                    dict(
                        label="❚❚ Pause",
                        method="animate",
                        args=[[None], dict(mode="immediate", frame=dict(duration=0))],
                    ),
                ],
            )
        ],
        sliders=[dict(active=0, steps=steps, x=0.22, len=0.78, y=-0.02, currentvalue=dict(prefix="snapshot "))],
        margin=dict(l=10, r=10, t=50, b=80),
    )
    base.update_layout(height=(base.layout.height or 400) + 80)
    return base
