"""Plotly figures of the unmasking-order study (dlm_core/order_study.py results). No Streamlit, no torch.

Every label that comes from the results file (strategy, role, class and bucket names) is HTML-escaped
before it reaches a figure: plotly draws a little HTML (links included) in its text.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from dlm_core.render.palette import NEUTRAL, SEQUENTIAL, STRATEGY_COLORS

MARGIN = {"l": 10, "r": 10, "t": 10, "b": 40}


def _e(text) -> str:
    return html.escape(str(text))


def _color(strategy: str) -> str:
    return STRATEGY_COLORS.get(strategy, NEUTRAL)


def _heatmap(z, se, x, y, exact=None, what: str = "committed at") -> go.Figure:
    """Shares in [0, 1] as a heatmap with the share written in each cell and its SE (and the exact value,
    where there is one) in the hover."""
    z = np.array(z, dtype=float)
    se = np.array([[np.nan if v is None else v for v in row] for row in se], dtype=float)
    shown = z if exact is None else np.array(exact, dtype=float)
    custom = np.dstack([z, se, shown])
    text = [[f"{100 * v:.0f}%" for v in row] for row in shown]
    hover = ("%{y}: " + what + " %{x}<br>sampled %{customdata[0]:.3f} ± %{customdata[1]:.3f}"
             + ("" if exact is None else "<br>exact %{customdata[2]:.4f}") + "<extra></extra>")
    fig = go.Figure(go.Heatmap(z=shown, x=x, y=y, text=text, texttemplate="%{text}", customdata=custom,
                               colorscale=SEQUENTIAL, zmin=0, zmax=1, xgap=2, ygap=2, hovertemplate=hover,
                               colorbar={"title": "share", "thickness": 12, "tickformat": ".0%"}))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=60 + 42 * len(y), margin=MARGIN)
    return fig


def position_heatmap(cell: dict) -> go.Figure:
    """P[i, j] = P(position i is committed at step j) for one (strategy, T) toy cell (exact where known)."""
    L, T = len(cell["P"]), cell["T"]
    fig = _heatmap(cell["P"], cell["P_se"], [f"step {j}" for j in range(1, T + 1)],
                   [f"position {i}" for i in range(1, L + 1)], cell.get("P_exact"))
    fig.update_xaxes(title="reverse step j")
    return fig


def role_heatmap(cell: dict, roles: list[str]) -> go.Figure:
    """P(a unit of this role is committed at step j), one row per role (mean step in the row label); sampled."""
    names = [r for r in roles if r in cell["roles"]]
    rows = [cell["roles"][r] for r in names]
    labels = [f"{_e(r)} (mean step {v['mean_step']:.2f})" for r, v in zip(names, rows)]
    fig = _heatmap([v["P"] for v in rows], [v["P_se"] for v in rows],
                   [f"step {j}" for j in range(1, cell["T"] + 1)], labels)
    fig.update_xaxes(title="reverse step j")
    return fig


def _defined_shares(exact: dict) -> list[list[float]]:
    """An exact tau distribution as shares of the sequences where tau is defined (as the sampled bars)."""
    defined = 1.0 - exact["p_undefined"]
    return [[v, p / defined] for v, p in exact["values"]]


def tau_figure(cell: dict, edges: list[float], reference: dict | None = None) -> go.Figure:
    """The distribution of Kendall's tau-b over sequences for one cell: a bar at each value taken (the
    sampled share), the exact probability of each value where known, and a reference cell's exact
    distribution (e.g. random order) dotted. Cells without distinct values fall back to the histogram."""
    s = _e(cell["strategy"])
    tau = cell["tau"]
    if "values" in tau:
        x, y = [v for v, _ in tau["values"]], [p for _, p in tau["values"]]
        width = 0.035
    else:
        e = np.array(edges)
        x, y, width = (e[:-1] + e[1:]) / 2, tau["hist"], float(np.diff(e).min()) * 0.9
    fig = go.Figure(go.Bar(x=x, y=y, width=width, name=f"{s} (sampled)", marker={"color": _color(cell["strategy"])},
                           hovertemplate="τ = %{x:.3f}: %{y:.4f} of the sentences<extra></extra>"))
    if cell.get("tau_exact"):
        ex = _defined_shares(cell["tau_exact"])
        fig.add_trace(go.Scatter(x=[v for v, _ in ex], y=[p for _, p in ex], mode="markers", name=f"{s} (exact)",
                                 marker={"symbol": "diamond", "size": 9, "color": "#000000"},
                                 hovertemplate="τ = %{x:.3f}: exactly %{y:.4f}<extra></extra>"))
    if reference is not None and reference.get("tau_exact") and reference is not cell:
        ex = _defined_shares(reference["tau_exact"])
        fig.add_trace(go.Scatter(x=[v for v, _ in ex], y=[p for _, p in ex], mode="lines+markers",
                                 name=f"{_e(reference['strategy'])} (exact)", marker={"size": 4, "color": "#444"},
                                 line={"dash": "dot", "color": "#444", "width": 1},
                                 hovertemplate="τ = %{x:.3f}: exactly %{y:.4f}<extra></extra>"))
    fig.add_vline(x=0, line={"color": "#999", "width": 1})
    fig.update_xaxes(title="Kendall's τ (−1 right to left, +1 left to right)", range=[-1.05, 1.05])
    fig.update_yaxes(title="share of sentences")
    fig.update_layout(height=300, margin=MARGIN, legend={"orientation": "h", "y": 1.15})
    return fig


def real_group_figure(real: dict, key: str, axis_title: str) -> go.Figure:
    """Mean relative commit step (0 = the first step, 1 = the last) of each group (word class, frequency
    bucket or position bucket), one bar per strategy, with the standard error."""
    fig = go.Figure()
    for strategy, r in real["strategies"].items():
        view = r[key]
        groups = [g for g in view if view[g]["count"]]
        fig.add_trace(go.Bar(
            x=[_e(g) for g in groups], y=[view[g]["mean_rel_step"] for g in groups], name=_e(strategy),
            marker={"color": _color(strategy)},
            error_y={"type": "data", "array": [view[g]["se"] or 0 for g in groups]},
            customdata=[[view[g]["count"], 100 * view[g]["share"]] for g in groups],
            hovertemplate=f"{_e(strategy)}, %{{x}}: mean relative step %{{y:.3f}} "
                          "(%{customdata[0]} tokens, %{customdata[1]:.1f}% of all)<extra></extra>"))
    fig.add_hline(y=0.5, line={"dash": "dot", "color": "#444", "width": 1})
    fig.update_xaxes(title=axis_title)
    fig.update_yaxes(title="mean relative commit step", range=[0, 1])
    fig.update_layout(height=330, margin=MARGIN, barmode="group", legend={"orientation": "h", "y": 1.15})
    return fig


def real_step_heatmap(real: dict, strategy: str, key: str) -> go.Figure:
    """P(a token of this group is committed in step bin b) for one strategy."""
    view = real["strategies"][strategy][key]
    groups = [g for g in view if view[g]["count"]]
    K, S = real["step_bins"], real["steps"]
    bins = [f"{b * S // K + 1}–{(b + 1) * S // K}" for b in range(K)]
    fig = _heatmap([view[g]["P_bins"] for g in groups], [view[g]["P_bins_se"] for g in groups],
                   [f"steps {_e(b)}" for b in bins], [_e(g) for g in groups], what="committed in")
    fig.update_xaxes(title="reverse steps")
    return fig


def real_tau_figure(real: dict) -> go.Figure:
    """Kendall's tau-b of each generation, one histogram per strategy."""
    e = np.array(real["tau_edges"])
    mid = (e[:-1] + e[1:]) / 2
    fig = go.Figure()
    for strategy, r in real["strategies"].items():
        fig.add_trace(go.Bar(x=mid, y=r["tau"]["hist"], name=_e(strategy), width=np.diff(e) * 0.9,
                             marker={"color": _color(strategy)}, opacity=0.7,
                             hovertemplate=f"{_e(strategy)}: τ ≈ %{{x:.2f}}, %{{y:.3f}} of the generations"
                                           "<extra></extra>"))
    fig.add_vline(x=0, line={"color": "#999", "width": 1})
    fig.update_xaxes(title="Kendall's τ (−1 right to left, +1 left to right)", range=[-1.05, 1.05])
    fig.update_yaxes(title="share of generations")
    fig.update_layout(height=300, margin=MARGIN, barmode="overlay", legend={"orientation": "h", "y": 1.15})
    return fig
