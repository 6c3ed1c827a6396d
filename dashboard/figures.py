"""Plotly figure builders: pure functions, data in, figure out (no Streamlit here).

Heatmaps put the value and the position in the hover label; colour scale and overlay
opacity are parameters so pages can offer them as controls.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.subplots import make_subplots

from dashboard import escape
from vis_core import LayerStats, Prediction

COLORSCALES = ("Viridis", "Inferno", "Magma", "Plasma", "Cividis", "Greys", "RdBu_r")
#: Upper bound on heatmap cells drawn in one channel grid (keeps the page light).
MOSAIC_CELL_BUDGET = 205_000

_MARGIN = dict(l=10, r=10, t=40, b=10)


def channel_heatmap(
    channel_map: np.ndarray,
    *,
    title: str,
    background: np.ndarray | None = None,
    opacity: float = 0.6,
    colorscale: str = "Viridis",
    height: int = 460,
) -> go.Figure:
    """One channel, large; optionally stretched over the image the model saw.

    Args:
        channel_map: ``(h, w)`` activations.
        title: figure title.
        background: ``(H, W, 3)`` uint8 image to overlay on, or None.
        opacity: heatmap opacity over the background.
        colorscale: a Plotly colour scale name.
        height: figure height in pixels.
    """
    rows, cols = channel_map.shape
    figure = go.Figure()
    hover = "x=%{customdata[1]}, y=%{customdata[0]}<br>activation %{z:.4f}<extra></extra>"
    grid_y, grid_x = np.mgrid[0:rows, 0:cols]
    customdata = np.stack([grid_y, grid_x], axis=-1)
    if background is not None:
        height_px, width_px = background.shape[:2]
        figure.add_trace(_photo(background))
        dy, dx = height_px / rows, width_px / cols
        figure.add_trace(
            go.Heatmap(
                z=channel_map,
                x0=dx / 2 - 0.5,
                dx=dx,
                y0=dy / 2 - 0.5,
                dy=dy,
                customdata=customdata,
                colorscale=colorscale,
                opacity=opacity,
                zsmooth="fast",  # over a photo, a smooth map reads better than blocks ("best" is slow in the browser)
                hovertemplate=hover,
                colorbar=dict(title="activation"),
            )
        )
    else:
        figure.add_trace(
            go.Heatmap(
                z=channel_map,
                customdata=customdata,
                colorscale=colorscale,
                hovertemplate=hover,
                colorbar=dict(title="activation"),
            )
        )
    figure.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False, showgrid=False)
    figure.update_xaxes(showticklabels=False, showgrid=False, constrain="domain")
    figure.update_layout(title=title, height=height, margin=_MARGIN)
    return figure


def _photo(rgb: np.ndarray) -> go.Image:
    """A photo as a PNG data URI: the browser decodes it natively, far faster than Plotly
    drawing a ``z`` array pixel by pixel."""
    array = np.ascontiguousarray(rgb, dtype=np.uint8)
    return go.Image(source=_png_uri(array.shape, array.tobytes()), hoverinfo="skip")


@functools.lru_cache(maxsize=32)
def _png_uri(shape: tuple[int, ...], pixels: bytes) -> str:
    """PNG data URI of raw RGB bytes; memoised because the same photo is redrawn on every click."""
    buffer = io.BytesIO()
    Image.fromarray(np.frombuffer(pixels, dtype=np.uint8).reshape(shape)).save(buffer, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def channel_mosaic(
    activations: np.ndarray,
    channels: Sequence[int],
    *,
    columns: int = 8,
    colorscale: str = "Viridis",
    per_channel_scale: bool = True,
    highlight: int | None = None,
    tile_px: int = 96,
) -> go.Figure:
    """Many channels of one layer as a grid of tiles, drawn as a single heatmap trace.

    One trace (tiles separated by gaps) renders far faster than one subplot per channel.
    Hover shows the channel, the position inside it and the raw activation.

    Args:
        activations: ``(C, h, w)`` array of the layer.
        channels: which channels to draw, in order.
        columns: tiles per row.
        colorscale: a Plotly colour scale name.
        per_channel_scale: scale each tile by its own range (shapes stand out) instead of
            one range for all tiles (strengths compare).
        highlight: a channel to outline, if drawn.
        tile_px: drawn size of one tile.
    """
    _, rows_px, cols_px = activations.shape
    count = len(channels)
    columns = max(1, min(columns, count))
    grid_rows = math.ceil(count / columns)
    scale = tile_px / max(rows_px, cols_px)  # screen pixels per activation cell
    gap = max(1, math.ceil(4 / scale))  # between columns
    label_gap = max(1, math.ceil(16 / scale))  # room above each row for the channel numbers
    height = grid_rows * (rows_px + label_gap)
    width = columns * (cols_px + gap) - gap
    z = np.full((height, width), np.nan, dtype=np.float32)
    custom = np.full((height, width, 4), np.nan, dtype=np.float32)
    grid_y, grid_x = np.mgrid[0:rows_px, 0:cols_px]
    label_x: list[float] = []
    label_y: list[float] = []
    shapes = []
    for slot, channel in enumerate(channels):
        row, column = divmod(slot, columns)
        top, left = label_gap + row * (rows_px + label_gap), column * (cols_px + gap)
        values = activations[channel].astype(np.float32)
        shown = values
        if per_channel_scale:
            low, high = float(values.min()), float(values.max())
            shown = (values - low) / (high - low) if high > low else np.zeros_like(values)
        z[top : top + rows_px, left : left + cols_px] = shown
        custom[top : top + rows_px, left : left + cols_px] = np.stack(
            [np.full_like(values, channel), grid_y, grid_x, values], axis=-1
        )
        label_x.append(left - 0.5)
        label_y.append(top - 0.5)
        if channel == highlight:
            shapes.append(_outline(top, left, rows_px, cols_px))
    heatmap = go.Heatmap(
        z=z,
        customdata=custom,
        colorscale=colorscale,
        hovertemplate="channel %{customdata[0]}<br>x=%{customdata[2]}, y=%{customdata[1]}"
        "<br>activation %{customdata[3]:.4f}<extra></extra>",
        colorbar=dict(title="relative" if per_channel_scale else "activation"),
        hoverongaps=False,
    )
    # Channel numbers as one text trace: 64 layout annotations cost Plotly's validator ~10x more.
    labels = go.Scatter(
        x=label_x,
        y=label_y,
        text=[str(channel) for channel in channels],
        mode="text",
        textposition="top right",
        textfont=dict(size=10, color="#444"),
        hoverinfo="skip",
        showlegend=False,
    )
    figure = go.Figure([heatmap, labels])
    figure.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_layout(
        shapes=shapes,
        height=int(min(2400, max(200, height * scale + 60))),
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="white",
    )
    return figure


def _outline(top: int, left: int, rows: int, cols: int) -> dict:
    """An orange rectangle around one tile of a grid (the chosen channel or filter)."""
    return dict(
        type="rect",
        x0=left - 0.5,
        x1=left + cols - 0.5,
        y0=top - 0.5,
        y1=top + rows - 0.5,
        line=dict(color="#e4572e", width=3),
    )


def page_size_for(rows_px: int, cols_px: int, wanted: int) -> int:
    """How many tiles of this size fit in :data:`MOSAIC_CELL_BUDGET` (at least 1; whole rows of 8)."""
    fit = min(wanted, MOSAIC_CELL_BUDGET // max(1, rows_px * cols_px))
    return max(1, fit - fit % 8 if fit >= 8 else fit)


def vector_bars(values: np.ndarray, *, title: str, highlight: int | None = None, labels: Sequence[str] | None = None):
    """A layer with no spatial extent (a vector) as bars, one per unit."""
    colors = ["#e4572e" if i == highlight else "#4c78a8" for i in range(values.size)]
    hover = "unit %{x}<br>value %{y:.4f}<extra></extra>"
    if labels is not None:
        hover = "unit %{x}: %{customdata}<br>value %{y:.4f}<extra></extra>"
    names = None if labels is None else [escape.plotly(label) for label in labels]
    figure = go.Figure(go.Bar(y=values, marker_color=colors, customdata=names, hovertemplate=hover))
    figure.update_layout(title=title, height=320, margin=_MARGIN, xaxis_title="unit", yaxis_title="activation")
    return figure


def layer_profile(stats: Sequence[LayerStats], selected: str | None = None) -> go.Figure:
    """Mean activation and fraction of zeros across layers, in forward order."""
    names = [row.name for row in stats]
    mean = go.Scatter(
        x=names,
        y=[row.mean for row in stats],
        name="mean activation",
        mode="lines+markers",
        hovertemplate="%{x}<br>mean %{y:.4f}<extra></extra>",
    )
    zeros = go.Scatter(
        x=names,
        y=[row.zero_fraction for row in stats],
        name="fraction of zeros",
        mode="lines+markers",
        yaxis="y2",
        hovertemplate="%{x}<br>%{y:.1%} zeros<extra></extra>",
    )
    shapes = []
    if selected in names:  # a dotted line at the chosen block (add_vline is slow: it validates twice)
        position = names.index(selected)
        shapes.append(
            dict(
                type="line",
                xref="x",
                yref="paper",
                x0=position,
                x1=position,
                y0=0,
                y1=1,
                line=dict(color="#e4572e", dash="dot"),
            )
        )
    return go.Figure(
        [mean, zeros],
        layout=dict(
            height=360,
            margin=_MARGIN,
            legend=dict(orientation="h", y=1.12),
            hovermode="x unified",
            shapes=shapes,
            yaxis=dict(title=dict(text="mean activation")),
            yaxis2=dict(
                title=dict(text="fraction of zeros"),
                tickformat=".0%",
                range=[0, 1],
                tickmode="linear",  # 0%, 20%, ... (the theme otherwise syncs ticks to the left axis)
                tick0=0,
                dtick=0.2,
                overlaying="y",
                side="right",
                showgrid=False,
            ),
        ),
    )


def prediction_bars(prediction: Prediction) -> go.Figure:
    """Top-k classes as horizontal bars, most probable on top."""
    figure = go.Figure(
        go.Bar(
            x=list(prediction.probabilities)[::-1],
            y=[f"{escape.plotly(label)} " for label in prediction.labels][::-1],
            orientation="h",
            text=[f"{p:.1%}" for p in prediction.probabilities][::-1],
            textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
            marker_color="#4c78a8",
        )
    )
    figure.update_layout(
        height=300, margin=_MARGIN, xaxis=dict(range=[0, 1], tickformat=".0%"), title="Top-5 predictions"
    )
    return figure


def rgb_mosaic(images: np.ndarray, *, columns: int = 8, highlight: int | None = None, tile_px: int = 64) -> go.Figure:
    """Small colour images (``(n, h, w, 3)`` in [0, 1]) in a grid, e.g. first-layer kernels."""
    count, rows_px, cols_px, _ = images.shape
    columns = max(1, min(columns, count))
    grid_rows = math.ceil(count / columns)
    gap = 1
    canvas = np.full((grid_rows * (rows_px + gap) + gap, columns * (cols_px + gap) + gap, 3), 255, dtype=np.uint8)
    shapes = []
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = gap + row * (rows_px + gap), gap + column * (cols_px + gap)
        canvas[top : top + rows_px, left : left + cols_px] = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
        if index == highlight:
            shapes.append(_outline(top, left, rows_px, cols_px))
    figure = go.Figure(go.Image(z=canvas, hovertemplate="x=%{x}, y=%{y}<br>rgb %{z}<extra></extra>"))
    scale = tile_px / max(rows_px, cols_px)
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(
        shapes=shapes,
        height=int(min(1600, max(160, canvas.shape[0] * scale + 40))),
        margin=dict(l=10, r=10, t=20, b=10),
    )
    return figure


def weight_matrix(matrix: np.ndarray, *, title: str, highlight: int | None = None) -> go.Figure:
    """A 1x1 convolution (or dense layer) as its ``out x in`` matrix, signed colours."""
    limit = float(np.abs(matrix).max()) or 1.0
    figure = go.Figure(
        go.Heatmap(
            z=matrix,
            colorscale="RdBu_r",
            zmin=-limit,
            zmax=limit,
            colorbar=dict(title="weight"),
            hovertemplate="filter %{y} ← input %{x}<br>weight %{z:.4f}<extra></extra>",
        )
    )
    if highlight is not None:
        figure.add_hrect(y0=highlight - 0.5, y1=highlight + 0.5, line=dict(color="#e4572e", width=2))
    figure.update_yaxes(autorange="reversed", title="filter (output channel)")
    figure.update_xaxes(title="input channel")
    figure.update_layout(title=title, height=min(900, max(320, 3 * matrix.shape[0] + 120)), margin=_MARGIN)
    return figure


def weight_histogram(values: np.ndarray, *, title: str) -> go.Figure:
    """Distribution of a layer's weights."""
    figure = go.Figure(
        go.Histogram(
            x=values.ravel(),
            nbinsx=80,
            marker_color="#4c78a8",
            hovertemplate="weights %{x}<br>count %{y}<extra></extra>",
        )
    )
    figure.update_layout(
        title=title, height=300, margin=_MARGIN, xaxis_title="weight", yaxis_title="count", bargap=0.02
    )
    return figure


def norm_bars(norms: np.ndarray, *, dead: Sequence[int] = (), highlight: int | None = None) -> go.Figure:
    """L2 norm of each filter; dead or tiny ones in grey, the chosen one in orange."""
    dead_set = set(dead)
    colors = ["#e4572e" if i == highlight else "#9aa0a6" if i in dead_set else "#4c78a8" for i in range(norms.size)]
    figure = go.Figure(
        go.Bar(y=norms, marker_color=colors, hovertemplate="filter %{x}<br>norm %{y:.4f}<extra></extra>")
    )
    figure.update_layout(
        title="Strength of each filter (L2 norm of its weights)",
        height=300,
        margin=_MARGIN,
        xaxis_title="filter",
        yaxis_title="L2 norm",
    )
    return figure


def training_curves(rows: Sequence[dict]) -> go.Figure:
    """Test accuracy and losses per snapshot."""
    epochs = [row["epoch"] for row in rows]
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Scatter(
            x=epochs,
            y=[row["test_accuracy"] for row in rows],
            name="test accuracy",
            mode="lines+markers",
            hovertemplate="epoch %{x}<br>%{y:.1%}<extra></extra>",
        ),
        secondary_y=False,
    )
    figure.add_trace(
        go.Scatter(
            x=epochs,
            y=[row["test_loss"] for row in rows],
            name="test loss",
            mode="lines+markers",
            line=dict(dash="dot"),
        ),
        secondary_y=True,
    )
    trained = [row for row in rows if row.get("train_loss") is not None]
    figure.add_trace(
        go.Scatter(
            x=[row["epoch"] for row in trained],
            y=[row["train_loss"] for row in trained],
            name="training loss",
            mode="lines+markers",
            line=dict(dash="dash"),
        ),
        secondary_y=True,
    )
    figure.update_yaxes(title_text="test accuracy", tickformat=".0%", range=[0, 1.02], secondary_y=False)
    figure.update_yaxes(title_text="loss", secondary_y=True, rangemode="tozero")
    figure.update_xaxes(title_text="epoch")
    figure.update_layout(height=320, margin=_MARGIN, legend=dict(orientation="h", y=1.15), hovermode="x unified")
    return figure


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
    """``(S, C, h, w)`` maps as an animated grid: one frame per step, one colour range for all."""
    low = float(np.nanmin(stack)) if zmin is None else zmin
    high = float(np.nanmax(stack)) if zmax is None else zmax
    high = high if high > low else low + 1.0
    channels = range(stack.shape[1])

    def trace(maps: np.ndarray):
        figure = channel_mosaic(
            maps, channels, columns=columns, colorscale=colorscale, per_channel_scale=False, tile_px=tile_px
        )
        figure.data[0].update(zmin=low, zmax=high, colorbar=dict(title=colorbar_title))
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


def weight_change_chart(changes: np.ndarray, labels: Sequence[str], highlight: int | None = None) -> go.Figure:
    """How far each filter moved between snapshots: ``(S-1, out)`` as a heatmap."""
    figure = go.Figure(
        go.Heatmap(
            z=changes.T,
            x=list(labels),
            colorscale="Viridis",
            colorbar=dict(title="change"),
            hovertemplate="filter %{y}<br>%{x}<br>moved %{z:.4f}<extra></extra>",
        )
    )
    if highlight is not None and highlight < changes.shape[1]:
        figure.add_hrect(y0=highlight - 0.5, y1=highlight + 0.5, line=dict(color="#e4572e", width=2))
    figure.update_yaxes(title="filter", autorange="reversed")
    figure.update_xaxes(title="between snapshots")
    figure.update_layout(
        title="How far each filter moved (L2 norm of the change in its weights)",
        height=min(700, max(300, 8 * changes.shape[1] + 120)),
        margin=_MARGIN,
    )
    return figure


def picture(
    rgb: np.ndarray, *, title: str = "", box: tuple[int, int, int, int] | None = None, height: int = 360
) -> go.Figure:
    """An RGB image (uint8 or floats in [0, 1]), optionally with a rectangle (top, left, bottom, right)."""
    array = rgb if rgb.dtype == np.uint8 else np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    figure = go.Figure(go.Image(z=array, hovertemplate="x=%{x}, y=%{y}<extra></extra>"))
    if box is not None:
        top, left, bottom, right = box
        figure.add_shape(
            type="rect",
            x0=left - 0.5,
            x1=right - 0.5,
            y0=top - 0.5,
            y1=bottom - 0.5,
            line=dict(color="#e4572e", width=3),
        )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=title, height=height, margin=dict(l=5, r=5, t=40 if title else 5, b=5))
    return figure


def attribution_overlay(
    background: np.ndarray,
    heat: np.ndarray,
    *,
    title: str,
    opacity: float = 0.55,
    colorscale: str = "Inferno",
    signed: bool = False,
    height: int = 420,
) -> go.Figure:
    """An attribution map over the image; signed maps get a diverging scale centred on zero."""
    figure = channel_heatmap(
        heat,
        title=title,
        background=background,
        opacity=opacity,
        colorscale="RdBu_r" if signed else colorscale,
        height=height,
    )
    if signed:
        limit = float(np.abs(heat).max()) or 1.0
        figure.data[-1].update(zmin=-limit, zmax=limit, zmid=0)
    figure.data[-1].update(colorbar=dict(title="attribution"), zsmooth=False)
    return figure


def faithfulness_curves(report) -> go.Figure:
    """Deletion (left) and insertion (right) curves of several methods and, in grey, of a
    random map (the baseline a map must beat); AUC in the legend."""
    deletion, insertion = report.random.deletion_substrate, report.random.insertion_substrate
    figure = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=(
            f"Deletion (to {'grey' if deletion == 'zero' else 'a blurred copy'}): lower is better",
            f"Insertion (onto {'a blurred copy' if insertion == 'blur' else 'grey'}): higher is better",
        ),
    )
    palette = ["#4c78a8", "#e4572e", "#54a24b", "#b279a2", "#f58518", "#72b7b2", "#9d755d", "#eeca3b"]
    for index, result in enumerate((*report.curves, report.random)):
        color = "#9aa0a6" if result is report.random else palette[index % len(palette)]
        figure.add_trace(
            go.Scatter(
                x=result.fractions,
                y=result.deletion,
                name=f"{result.method} ({result.deletion_auc:.3f})",
                line=dict(color=color),
                legendgroup=result.method,
            ),
            row=1,
            col=1,
        )
        figure.add_trace(
            go.Scatter(
                x=result.fractions,
                y=result.insertion,
                name=f"{result.method} ({result.insertion_auc:.3f})",
                line=dict(color=color, dash="dot"),
                legendgroup=result.method,
            ),
            row=1,
            col=2,
        )
    figure.update_xaxes(title_text="share of pixels", tickformat=".0%")
    figure.update_yaxes(title_text="class probability", range=[0, 1.02], row=1, col=1)
    figure.update_layout(height=380, margin=_MARGIN, hovermode="x unified")
    return figure


def sanity_chart(check) -> go.Figure:
    """Rank correlation (solid) and SSIM (dotted) of each method's map with its original."""
    figure = go.Figure()
    steps = ["original"] + [f"…{name}" for name in check.steps[1:]]
    palette = ["#4c78a8", "#e4572e", "#54a24b", "#b279a2", "#f58518", "#72b7b2"]
    for index, method in enumerate(check.spearman):
        color = palette[index % len(palette)]
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=check.spearman[method],
                name=f"{method}: rank correlation",
                line=dict(color=color),
                mode="lines+markers",
            )
        )
        figure.add_trace(
            go.Scatter(x=steps, y=check.ssim[method], name=f"{method}: SSIM", line=dict(color=color, dash="dot"))
        )
    figure.update_yaxes(title_text="similarity to the original map", range=[-0.5, 1.05])
    figure.update_xaxes(title_text="randomised down to block", tickangle=-45)
    figure.update_layout(height=420, margin=_MARGIN, legend=dict(orientation="h", y=1.2), hovermode="x unified")
    return figure
