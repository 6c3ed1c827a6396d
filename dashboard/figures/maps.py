"""Heatmaps, grids of tiles and pictures: feature maps, kernels, attribution overlays, images.

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

from dashboard.figures.style import HIGHLIGHT, MARGIN, fade_near_zero, outline
from vis_core.arrays import to_uint8

#: Upper bound on heatmap cells drawn in one channel grid (keeps the page light).
MOSAIC_CELL_BUDGET = 205_000


def channel_heatmap(
    channel_map: np.ndarray,
    *,
    title: str,
    background: np.ndarray | None = None,
    opacity: float = 0.6,
    colorscale: str = "Viridis",
    height: int = 460,
    signed: bool = False,
) -> go.Figure:
    """One channel, large; optionally stretched over the image the model saw.

    Args:
        channel_map: ``(h, w)`` activations.
        title: figure title.
        background: ``(H, W, 3)`` uint8 image to overlay on, or None.
        opacity: heatmap opacity over the background.
        colorscale: a Plotly colour scale name.
        height: figure height in pixels.
        signed: the map has both signs (a layer without a ReLU): the colour scale (pass a
            diverging one) is centred on zero, so zero is its middle colour.
    """
    rows, cols = channel_map.shape
    figure = go.Figure()
    # The map's cells sit at whole coordinates (column x, row y), so the hover names the cell
    # without a position array sent beside the values; a photo is stretched over the same
    # grid (its pixels 1/dx of a cell each).
    hover = "x=%{x}, y=%{y}<br>activation %{z:.4f}<extra></extra>"
    if background is not None:
        figure.add_trace(_photo(background, cells=(rows, cols)))
    heat = go.Heatmap(z=channel_map, colorscale=colorscale, hovertemplate=hover, colorbar=dict(title="activation"))
    if background is not None:
        # over a photo, a smooth map reads better than blocks ("best" is slow in the browser)
        heat.update(opacity=opacity, zsmooth="fast")
    figure.add_trace(heat)
    if signed:
        extent = float(np.nanmax(np.abs(channel_map))) if channel_map.size else 0.0
        extent = extent if np.isfinite(extent) and extent > 0 else 1.0
        figure.data[-1].update(zmin=-extent, zmax=extent, zmid=0)
        if background is not None:  # over the photo, values near zero let it show through
            figure.data[-1].update(colorscale=fade_near_zero(colorscale, signed=True))
    figure.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False, showgrid=False)
    figure.update_xaxes(showticklabels=False, showgrid=False, constrain="domain")
    figure.update_layout(title=title, height=height, margin=MARGIN)
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
    """An attribution map over the image; signed maps get a diverging scale centred on zero.

    The colours fade to transparent near zero (:func:`~dashboard.figures.style.fade_near_zero`):
    where a map gives no evidence the photo shows through, not a band of the scale's zero colour.
    A map coarser than the photo (a CAM at its layer's grid, ``Attribution.cells``) is smoothed by
    the browser, as the engine upsamples it (bilinear): the same picture, a fraction of the numbers
    to send and draw; a map at the photo's resolution is drawn pixel for pixel.
    """
    figure = channel_heatmap(
        heat,
        title=title,
        background=background,
        opacity=opacity,
        colorscale="RdBu_r" if signed else colorscale,
        height=height,
    )
    limit = float(np.nanmax(np.abs(heat))) if heat.size else 0.0
    limit = limit if np.isfinite(limit) and limit > 0 else 1.0
    if signed:
        figure.data[-1].update(zmin=-limit, zmax=limit, zmid=0)
    elif heat.size and float(np.nanmin(heat)) >= 0:
        figure.data[-1].update(zmin=0, zmax=limit)  # zero at the bottom of the scale, where it fades out
    figure.data[-1].update(
        colorscale=fade_near_zero("RdBu_r" if signed else colorscale, signed=signed),
        colorbar=dict(title="attribution"),
        hovertemplate="x=%{x}, y=%{y}<br>attribution %{z:.4f}<extra></extra>",
        zsmooth=False if heat.shape == background.shape[:2] else "fast",
    )
    return figure


def _photo(rgb: np.ndarray, *, cells: tuple[int, int] | None = None, hover: str | None = None) -> go.Image:
    """A photo as a PNG data URI: the browser decodes it natively, far faster than Plotly
    drawing a ``z`` array pixel by pixel. With ``cells`` (rows, columns of a map drawn over it)
    the photo is stretched to that grid's coordinates: its edges on the cells' outer edges.
    ``hover`` is its hover template (none by default: a map over it has its own)."""
    array = np.ascontiguousarray(rgb, dtype=np.uint8)
    source = _png_uri(array.shape, array.tobytes())
    photo = go.Image(source=source, hovertemplate=hover) if hover else go.Image(source=source, hoverinfo="skip")
    if cells is not None:
        dy, dx = cells[0] / array.shape[0], cells[1] / array.shape[1]
        photo.update(x0=dx / 2 - 0.5, dx=dx, y0=dy / 2 - 0.5, dy=dy)
    return photo


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
    signed: bool = False,
    quantity: str = "activation",
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
        signed: the values have both signs (a layer without a ReLU): zero stays in the middle of
            the colour scale (pass a diverging one), each tile scaled by its largest magnitude.
        quantity: what the values are, on hover and the colour bar ("weight" for kernels).

    Each tile also carries an invisible click target at its centre (a scatter point whose
    ``customdata[0]`` is the channel): Plotly selects scatter points, not heatmap cells, so a
    page showing the figure with ``on_select`` learns which tile was clicked.
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
        if per_channel_scale and signed:
            extent = float(np.abs(values).max())
            shown = values / extent if extent > 0 else np.zeros_like(values)
        elif per_channel_scale:
            low, high = float(values.min()), float(values.max())
            shown = (values - low) / (high - low) if high > low else np.zeros_like(values)
        z[top : top + rows_px, left : left + cols_px] = shown
        custom[top : top + rows_px, left : left + cols_px] = np.stack(
            [np.full_like(values, channel), grid_y, grid_x, values], axis=-1
        )
        label_x.append(left - 0.5)
        label_y.append(top - 0.5)
        if channel == highlight:
            shapes.append(outline(top, left, rows_px, cols_px))
    centre: dict = {}
    if signed:
        extent = 1.0 if per_channel_scale else float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
        centre = dict(zmin=-(extent or 1.0), zmax=extent or 1.0, zmid=0)
    heatmap = go.Heatmap(
        z=z,
        customdata=custom,
        colorscale=colorscale,
        hovertemplate="channel %{customdata[0]}<br>x=%{customdata[2]}, y=%{customdata[1]}"
        f"<br>{quantity} %{{customdata[3]:.4f}}<extra></extra>",
        colorbar=dict(title="relative" if per_channel_scale else quantity),
        hoverongaps=False,
        **centre,
    )
    # Channel numbers as one text trace: Plotly validates each layout annotation on its own, far slower.
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
    targets = click_targets(
        [x + cols_px / 2 for x in label_x], [y + rows_px / 2 for y in label_y], list(channels), size=tile_px * 0.8
    )
    figure = go.Figure([heatmap, labels, targets])
    figure.update_yaxes(autorange="reversed", scaleanchor="x", visible=False)
    figure.update_xaxes(visible=False, constrain="domain")
    figure.update_layout(
        shapes=shapes,
        height=int(min(2400, max(200, height * scale + 60))),
        margin=dict(l=10, r=10, t=30, b=10),
        plot_bgcolor="white",
    )
    return figure


def click_targets(x: Sequence[float], y: Sequence[float], channels: Sequence[int], *, size: float) -> go.Scatter:
    """Invisible squares at the tiles' centres, one per channel, that a click selects (``customdata[0]``
    is the channel). Hovering one names the filter and says what a click does."""
    return go.Scatter(
        x=list(x),
        y=list(y),
        customdata=[[int(channel)] for channel in channels],
        mode="markers",
        marker=dict(symbol="square", size=max(8.0, size), opacity=0, color="#000"),
        hovertemplate="filter %{customdata[0]}: click to choose it<extra></extra>",
        showlegend=False,
    )


def page_size_for(rows_px: int, cols_px: int, wanted: int) -> int:
    """How many tiles of this size fit in :data:`MOSAIC_CELL_BUDGET` (at least 1; whole rows of 8)."""
    fit = min(wanted, MOSAIC_CELL_BUDGET // max(1, rows_px * cols_px))
    return max(1, fit - fit % 8 if fit >= 8 else fit)


def rgb_mosaic(images: np.ndarray, *, columns: int = 8, highlight: int | None = None, tile_px: int = 64) -> go.Figure:
    """Small colour images (``(n, h, w, 3)`` in [0, 1]) in a grid, e.g. first-layer kernels; each
    carries a click target (:func:`click_targets`, ``customdata[0]`` its index)."""
    count, rows_px, cols_px, _ = images.shape
    columns = max(1, min(columns, count))
    grid_rows = math.ceil(count / columns)
    gap = 1
    canvas = np.full((grid_rows * (rows_px + gap) + gap, columns * (cols_px + gap) + gap, 3), 255, dtype=np.uint8)
    shapes = []
    centres: list[tuple[float, float]] = []
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = gap + row * (rows_px + gap), gap + column * (cols_px + gap)
        canvas[top : top + rows_px, left : left + cols_px] = to_uint8(image)
        centres.append((left + (cols_px - 1) / 2, top + (rows_px - 1) / 2))
        if index == highlight:
            shapes.append(outline(top, left, rows_px, cols_px))
    scale = tile_px / max(rows_px, cols_px)
    figure = go.Figure(
        [
            go.Image(z=canvas, hovertemplate="x=%{x}, y=%{y}<br>rgb %{z}<extra></extra>"),
            click_targets([x for x, _ in centres], [y for _, y in centres], range(count), size=tile_px * 0.8),
        ]
    )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(
        shapes=shapes,
        height=int(min(1600, max(160, canvas.shape[0] * scale + 40))),
        margin=dict(l=10, r=10, t=20, b=10),
    )
    return figure


def picture(
    rgb: np.ndarray, *, title: str = "", box: tuple[int, int, int, int] | None = None, height: int = 360
) -> go.Figure:
    """An RGB image (uint8 or floats in [0, 1]), optionally with a rectangle (top, left, bottom, right).

    Sent as a PNG (:func:`_photo`), which the browser decodes natively, rather than as ``z``
    values Plotly paints pixel by pixel; the hover still names the pixel."""
    array = rgb if rgb.dtype == np.uint8 else to_uint8(rgb)
    figure = go.Figure(_photo(array, hover="x=%{x}, y=%{y}<extra></extra>"))
    if box is not None:
        top, left, bottom, right = box
        figure.add_shape(outline(top, left, bottom - top, right - left))
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False)
    figure.update_layout(title=title, height=height, margin=dict(l=5, r=5, t=40 if title else 5, b=5))
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
        figure.add_hrect(y0=highlight - 0.5, y1=highlight + 0.5, line=dict(color=HIGHLIGHT, width=2))
    figure.update_yaxes(autorange="reversed", title="filter (output channel)")
    figure.update_xaxes(title="input channel")
    figure.update_layout(title=title, height=min(900, max(320, 3 * matrix.shape[0] + 120)), margin=MARGIN)
    return figure


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
        figure.add_hrect(y0=highlight - 0.5, y1=highlight + 0.5, line=dict(color=HIGHLIGHT, width=2))
    figure.update_yaxes(title="filter", autorange="reversed")
    figure.update_xaxes(title="between snapshots")
    figure.update_layout(
        title="How far each filter moved (L2 norm of the change in its weights)",
        height=min(700, max(300, 8 * changes.shape[1] + 120)),
        margin=MARGIN,
    )
    return figure
