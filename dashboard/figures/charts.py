"""Bars and curves: predictions, layer profiles, weight statistics, training and evidence charts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

import vis_core
from dashboard.figures.style import BLUE, GREY, HIGHLIGHT, MARGIN, PALETTE
from dashboard.words import escape
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
        height=300,
        margin=MARGIN,
        xaxis=dict(range=[0, 1], tickformat=".0%"),
        # class names as names: a digits model's "3" is a class, not a position on a number line
        yaxis=dict(type="category"),
        title="Top-5 predictions",
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


def layer_change_chart(
    change: np.ndarray, likeness: np.ndarray, smoothness: np.ndarray, labels: Sequence[str]
) -> go.Figure:
    """How a layer's kernels changed over training: bars for how far the whole layer moved between
    snapshots (a share of its starting size), and lines for how much the kernels still look like
    their random start and how smooth (stroke-like) they are, one point per snapshot.

    Args:
        change: ``(S-1,)`` relative change between consecutive snapshots.
        likeness, smoothness: ``(S,)`` per snapshot (see :mod:`vis_core.evolution`).
        labels: ``S`` snapshot names (``untrained``, ``epoch 1``...).
    """
    labels = list(labels)
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_trace(
        go.Bar(
            x=labels[1:],
            y=change,
            name="moved since the snapshot before (share of the starting weights)",
            marker_color=BLUE,
            hovertemplate="%{x}: moved %{y:.1%} of the starting size<extra></extra>",
        ),
        secondary_y=False,
    )
    for values, name, color, dash in (
        (likeness, "still like the random start (correlation)", GREY, "dash"),
        (smoothness, "smooth, stroke-like (neighbour correlation)", HIGHLIGHT, "solid"),
    ):
        figure.add_trace(
            go.Scatter(
                x=labels,
                y=values,
                name=name,
                mode="lines+markers",
                line=dict(color=color, dash=dash),
                hovertemplate=f"%{{x}}: {name.split(' (')[0]} %{{y:.2f}}<extra></extra>",
            ),
            secondary_y=True,
        )
    figure.update_yaxes(title_text="moved (share of start)", tickformat=".0%", rangemode="tozero", secondary_y=False)
    figure.update_yaxes(
        title_text="correlation", range=[-0.2, 1.05], tickmode="linear", tick0=0, dtick=0.2, secondary_y=True
    )
    figure.update_yaxes(showgrid=False, secondary_y=True)
    figure.update_xaxes(type="category", categoryorder="array", categoryarray=labels)  # untrained first
    figure.update_layout(height=340, margin=MARGIN, legend=dict(orientation="h", y=1.2), bargap=0.3)
    return figure


def method_label(method: str, names: Mapping[str, str] | None = None) -> str:
    """A method's display name (``Grad-CAM``, not ``gradcam``): ``names`` first, then the registry."""
    if names is not None and method in names:
        return names[method]
    known = vis_core.METHODS.get(method)
    return known.label if known is not None else method


def faithfulness_verdict(report, names: Mapping[str, str] | None = None) -> str:
    """One line: which maps beat the random map on both tests, on one, or on neither, e.g.
    ``Beat the random map on both tests: Grad-CAM · on deletion only: Saliency``."""
    groups: dict[str, list[str]] = {}
    for curve in report.curves:
        deletes, restores = report.beats_random(curve)
        kind = "on both tests" if deletes and restores else "on deletion only" if deletes else "on insertion only"
        groups.setdefault(kind if deletes or restores else "on neither", []).append(method_label(curve.method, names))
    order = ("on both tests", "on deletion only", "on insertion only", "on neither")
    parts = [f"{kind}: {', '.join(groups[kind])}" for kind in order if kind in groups]
    return "Beat the random map " + " · ".join(parts) if parts else ""


def faithfulness_curves(report, names: Mapping[str, str] | None = None, *, verdict: bool = True) -> go.Figure:
    """Deletion (left) and insertion (right) curves of several methods and, grey and dashed, of a
    random map (the baseline a map must beat), on the same axes; the AUCs in the legend and, as
    the title, one line saying which maps beat the baseline."""
    deletion, insertion = report.random.deletion_substrate, report.random.insertion_substrate
    figure = make_subplots(
        rows=1,
        cols=2,
        shared_yaxes=True,
        horizontal_spacing=0.06,
        subplot_titles=(
            f"Deletion (to {'grey' if deletion == 'zero' else 'a blurred copy'}): lower is better",
            f"Insertion (onto {'a blurred copy' if insertion == 'blur' else 'grey'}): higher is better",
        ),
    )
    for index, result in enumerate((*report.curves, report.random)):
        baseline = result is report.random
        label = "random map (baseline)" if baseline else method_label(result.method, names)
        line = dict(color=GREY, dash="dash") if baseline else dict(color=PALETTE[index % len(PALETTE)])
        name = f"{label}: deletion AUC {result.deletion_auc:.2f}, insertion AUC {result.insertion_auc:.2f}"
        for column, values, what in ((1, result.deletion, "deletion"), (2, result.insertion, "insertion")):
            figure.add_trace(
                go.Scatter(
                    x=result.fractions,
                    y=values,
                    name=name,
                    mode="lines",
                    line=line,
                    legendgroup=result.method,
                    showlegend=column == 1,
                    hovertemplate=f"{escape.plotly(label)} ({what})<br>%{{x:.0%}} of pixels: %{{y:.1%}}<extra></extra>",
                ),
                row=1,
                col=column,
            )
    figure.update_xaxes(title_text="share of pixels", tickformat=".0%", range=[0, 1])
    figure.update_yaxes(range=[0, 1.02], tickformat=".0%")
    figure.update_yaxes(title_text="class probability", row=1, col=1)
    title, lines = _title(_provisional(report, faithfulness_verdict(report, names)) if verdict else "")
    figure.update_layout(
        title=dict(text=title, font=dict(size=14)),
        height=420 + 20 * lines,
        margin=dict(l=10, r=10, t=50 + 20 * lines, b=10),
        legend=dict(orientation="h", y=-0.18, yanchor="top"),
    )
    return figure


def _title(verdict: str, width: int = 95) -> tuple[str | None, int]:
    """A verdict as a chart title (escaped), broken between its ``·`` parts into lines of at most
    about ``width`` characters (Plotly does not wrap titles); and how many lines it takes."""
    if not verdict:
        return None, 0
    lines: list[str] = []
    for part in verdict.split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= width:
            lines[-1] += " · " + part
        else:
            lines.append(part)
    return "<br>".join(escape.plotly(line) for line in lines), len(lines)


def _provisional(result, verdict: str) -> str:
    """A quick first version's verdict says it may still change."""
    return verdict if getattr(result, "exact", True) or not verdict else f"So far (quick first version): {verdict}"


#: When a map's rank correlation with the original stays at or above this after the whole network
#: is randomised, the map is not explaining the model (Adebayo et al. 2018 read it the same way).
SANITY_THRESHOLD = 0.5


def sanity_verdict(check, names: Mapping[str, str] | None = None) -> str:
    """One line: which maps change when the network is scrambled (they pass) and which do not."""
    passed = [method_label(m, names) for m, values in check.spearman.items() if values[-1] < SANITY_THRESHOLD]
    failed = [method_label(m, names) for m, values in check.spearman.items() if values[-1] >= SANITY_THRESHOLD]
    parts = []
    if passed:
        parts.append(f"Change with the weights (pass): {', '.join(passed)}")
    if failed:
        parts.append(f"still look the same with random weights (fail): {', '.join(failed)}")
    line = " · ".join(parts)
    return line[:1].upper() + line[1:]


def sanity_chart(check, names: Mapping[str, str] | None = None, *, verdict: bool = True) -> go.Figure:
    """Rank correlation (solid) and SSIM (dotted) of each method's map with its original, one
    colour per method, a key for the two line styles, and a one-line verdict as the title."""
    figure = go.Figure()
    steps = ["original"] + [f"…{name}" for name in check.steps[1:]]
    for index, method in enumerate(check.spearman):
        color = PALETTE[index % len(PALETTE)]
        label = method_label(method, names)
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=check.spearman[method],
                name=label,
                legendgroup=method,
                line=dict(color=color),
                mode="lines+markers",
                hovertemplate=f"{escape.plotly(label)}: rank correlation %{{y:.2f}}<extra></extra>",
            )
        )
        figure.add_trace(
            go.Scatter(
                x=steps,
                y=check.ssim[method],
                name=f"{label}: SSIM",
                legendgroup=method,
                showlegend=False,
                mode="lines",
                line=dict(color=color, dash="dot"),
                hovertemplate=f"{escape.plotly(label)}: SSIM %{{y:.2f}}<extra></extra>",
            )
        )
    for name, dash in (("solid: rank correlation", "solid"), ("dotted: SSIM", "dot")):  # the key to line styles
        figure.add_trace(
            go.Scatter(
                x=[None], y=[None], name=name, mode="lines", line=dict(color="#444", dash=dash), hoverinfo="skip"
            )
        )
    figure.add_hline(y=SANITY_THRESHOLD, line=dict(color=GREY, width=1, dash="dash"))
    figure.update_yaxes(title_text="similarity to the original map", range=[-0.5, 1.05])
    figure.update_xaxes(title_text="randomised down to block", tickangle=-45)
    title, lines = _title(_provisional(check, sanity_verdict(check, names)) if verdict else "")
    figure.update_layout(
        title=dict(text=title, font=dict(size=14)),
        height=440 + 20 * lines,
        margin=dict(l=10, r=10, t=70 + 20 * lines, b=10),
        legend=dict(orientation="h", y=1.02, yanchor="bottom"),
        hovermode="x unified",
    )
    return figure
