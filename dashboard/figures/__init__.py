"""Plotly figure builders: pure functions, data in, figure out (no Streamlit here).

:mod:`~dashboard.figures.maps` draws heatmaps, grids of tiles and pictures;
:mod:`~dashboard.figures.charts` bars and curves; :mod:`~dashboard.figures.animation` grids
that change over training snapshots; :mod:`~dashboard.figures.style` holds the colours they share.
Pages call them as ``figures.<name>``.
"""

from dashboard.figures.animation import kernel_animation, mosaic_animation
from dashboard.figures.charts import (
    faithfulness_curves,
    faithfulness_verdict,
    layer_change_chart,
    layer_profile,
    method_label,
    norm_bars,
    prediction_bars,
    sanity_chart,
    sanity_verdict,
    training_curves,
    vector_bars,
    weight_histogram,
)
from dashboard.figures.maps import (
    MOSAIC_CELL_BUDGET,
    attribution_overlay,
    channel_heatmap,
    channel_mosaic,
    page_size_for,
    picture,
    rgb_mosaic,
    weight_change_chart,
    weight_matrix,
)
from dashboard.figures.style import COLORSCALES, name_values

__all__ = [
    "COLORSCALES",
    "MOSAIC_CELL_BUDGET",
    "attribution_overlay",
    "channel_heatmap",
    "channel_mosaic",
    "faithfulness_curves",
    "faithfulness_verdict",
    "kernel_animation",
    "layer_change_chart",
    "layer_profile",
    "method_label",
    "mosaic_animation",
    "name_values",
    "norm_bars",
    "page_size_for",
    "picture",
    "prediction_bars",
    "rgb_mosaic",
    "sanity_chart",
    "sanity_verdict",
    "training_curves",
    "vector_bars",
    "weight_change_chart",
    "weight_histogram",
    "weight_matrix",
]
