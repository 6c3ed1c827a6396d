"""Bars and curves: predictions, layer profiles, weight statistics, training and evidence charts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard import escape
from dashboard.figures.style import BLUE, GREY, HIGHLIGHT, MARGIN, PALETTE
from vis_core import LayerStats, Prediction


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
            marker_color=BLUE,
        )
    )
    figure.update_layout(
        height=300, margin=MARGIN, xaxis=dict(range=[0, 1], tickformat=".0%"), title="Top-5 predictions"
    )
    return figure


def vector_bars(values: np.ndarray, *, title: str, highlight: int | None = None, labels: Sequence[str] | None = None):
    """A layer with no spatial extent (a vector) as bars, one per unit."""
    colors = [HIGHLIGHT if i == highlight else BLUE for i in range(values.size)]
    hover = "unit %{x}<br>value %{y:.4f}<extra></extra>"
    if labels is not None:
        hover = "unit %{x}: %{customdata}<br>value %{y:.4f}<extra></extra>"
    names = None if labels is None else [escape.plotly(label) for label in labels]
    figure = go.Figure(go.Bar(y=values, marker_color=colors, customdata=names, hovertemplate=hover))
    figure.update_layout(title=title, height=320, margin=MARGIN, xaxis_title="unit", yaxis_title="activation")
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
                line=dict(color=HIGHLIGHT, dash="dot"),
            )
        )
    return go.Figure(
        [mean, zeros],
        layout=dict(
            height=360,
            margin=MARGIN,
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


def weight_histogram(values: np.ndarray, *, title: str) -> go.Figure:
    """Distribution of a layer's weights."""
    figure = go.Figure(
        go.Histogram(
            x=values.ravel(),
            nbinsx=80,
            marker_color=BLUE,
            hovertemplate="weights %{x}<br>count %{y}<extra></extra>",
        )
    )
    figure.update_layout(title=title, height=300, margin=MARGIN, xaxis_title="weight", yaxis_title="count", bargap=0.02)
    return figure


def norm_bars(norms: np.ndarray, *, dead: Sequence[int] = (), highlight: int | None = None) -> go.Figure:
    """L2 norm of each filter; dead or tiny ones in grey, the chosen one in orange."""
    dead_set = set(dead)
    colors = [HIGHLIGHT if i == highlight else GREY if i in dead_set else BLUE for i in range(norms.size)]
    figure = go.Figure(
        go.Bar(y=norms, marker_color=colors, hovertemplate="filter %{x}<br>norm %{y:.4f}<extra></extra>")
    )
    figure.update_layout(
        title="Strength of each filter (L2 norm of its weights)",
        height=300,
        margin=MARGIN,
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
    figure.update_layout(height=320, margin=MARGIN, legend=dict(orientation="h", y=1.15), hovermode="x unified")
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
    for index, result in enumerate((*report.curves, report.random)):
        color = GREY if result is report.random else PALETTE[index % len(PALETTE)]
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
    figure.update_layout(height=380, margin=MARGIN, hovermode="x unified")
    return figure


def sanity_chart(check) -> go.Figure:
    """Rank correlation (solid) and SSIM (dotted) of each method's map with its original."""
    figure = go.Figure()
    steps = ["original"] + [f"…{name}" for name in check.steps[1:]]
    for index, method in enumerate(check.spearman):
        color = PALETTE[index % len(PALETTE)]
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
    figure.update_layout(height=420, margin=MARGIN, legend=dict(orientation="h", y=1.2), hovermode="x unified")
    return figure
