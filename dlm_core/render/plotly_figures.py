"""Plotly figures of the pages that show studies (Compare, Train, the lessons): the token x step grid of
small multiples, the live training curve, quality against steps, strategies, schedules, ReMDM. Colours
come from render/palette: states for states, series colours for series. No Streamlit here."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from dlm_core.render.cells import cell_states, display_tokens
from dlm_core.render.palette import (
    NEUTRAL,
    PROMPT_OUTLINE,
    SERIES,
    STATE_ORDER,
    STATES,
    STRATEGY_COLORS,
    series_color,
)
from dlm_core.render.safe_html import plot_text
from dlm_core.trajectory import Trajectory


def trajectory_grid(traj: Trajectory, k: int, max_text_steps: int = 40, compact: bool = False) -> go.Figure:
    """Token x step grid: colour = state, text = unit; columns after step k are left blank.
    `compact`: small multiples (smaller text, [MASK] drawn as a dot)."""
    states = cell_states(traj)
    n_pos, n_cols = traj.length, traj.n_steps + 1
    code = {s: j for j, s in enumerate(STATE_ORDER)}
    z = np.full((n_pos, n_cols), np.nan)
    text = np.full((n_pos, n_cols), "", dtype=object)
    for col in range(min(k, traj.n_steps) + 1):
        toks = display_tokens(traj, col)
        for i in range(n_pos):
            z[i, col] = code[states[col][i]]
            word = plot_text(traj.token_text(toks[i])) if n_cols <= max_text_steps else ""
            text[i, col] = "·" if compact and traj.mask_id is not None and toks[i] == traj.mask_id else word
    n = len(STATE_ORDER)
    scale = []
    for j, s in enumerate(STATE_ORDER):
        scale += [[j / n, STATES[s][0]], [(j + 1) / n, STATES[s][0]]]
    ys = [f"pos {i + 1}" for i in range(n_pos)]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(range(n_cols)),
            y=ys,
            customdata=text,
            colorscale=scale,
            zmin=-0.5,
            zmax=n - 0.5,
            showscale=False,
            xgap=2,
            ygap=2,
            hovertemplate="step %{x}, %{y}: %{customdata}<extra></extra>",
        )
    )
    # text in the state's own text colour (white on blue / vermillion), one trace per colour
    for fg in sorted({STATES[s][1] for s in STATE_ORDER}):
        cells = [(c, i) for c in range(n_cols) for i in range(n_pos)
                 if text[i, c] and STATES[STATE_ORDER[int(z[i, c])]][1] == fg]
        fig.add_trace(go.Scatter(x=[c for c, _ in cells], y=[ys[i] for _, i in cells],
                                 text=[text[i, c] for c, i in cells], mode="text", hoverinfo="skip",
                                 textfont={"color": fg, "size": 10 if compact else 14}, showlegend=False))
    for i in traj.fixed:  # prompt / pinned: black outline
        fig.add_shape(type="rect", x0=-0.5, x1=min(k, traj.n_steps) + 0.5, y0=i - 0.5, y1=i + 0.5,
                      line={"color": PROMPT_OUTLINE, "width": 2})
    fig.add_shape(type="rect", x0=k - 0.5, x1=k + 0.5, y0=-0.5, y1=n_pos - 0.5,
                  line={"color": "#000000", "width": 3})
    if traj.block_length:  # semi-autoregressive block boundaries
        end = traj.gen_start + traj.settings.get("gen_length", traj.length - traj.gen_start)
        for b in range(traj.gen_start + traj.block_length, end, traj.block_length):
            fig.add_hline(y=b - 0.5, line={"color": "#000000", "width": 2, "dash": "dash"})
    fig.update_yaxes(autorange="reversed", title=None)
    fig.update_xaxes(title="reverse step", range=[-0.5, n_cols - 0.5], dtick=1 if n_cols <= 30 else None)
    row = 42 if n_pos <= 12 else 14
    fig.update_layout(height=60 + row * n_pos, margin={"l": 60, "r": 10, "t": 10, "b": 40},
                      plot_bgcolor="#FFFFFF", paper_bgcolor="#FFFFFF")
    return fig


def training_figure(losses, nelbo, entropy_bits_per_unit: float, units: int = 6) -> go.Figure:
    """Live training curve: loss and NELBO in bits per unit against the exact entropy H."""
    import math

    fig = go.Figure()
    if losses:
        steps = [s for s, _ in losses]
        bits = [v / (units * math.log(2)) for _, v in losses]
        w = max(1, len(bits) // 100)  # a running mean keeps a noisy Monte-Carlo loss readable
        smooth = np.convolve(bits, np.ones(w) / w, mode="valid")
        fig.add_trace(go.Scatter(x=steps, y=bits, mode="lines", name="training loss (one batch)",
                                 line={"color": "#BBBBBB", "width": 1}))
        fig.add_trace(go.Scatter(x=steps[w - 1:], y=smooth, mode="lines", name=f"running mean ({w} steps)",
                                 line={"color": SERIES[0], "width": 2}))
    if nelbo:
        fig.add_trace(go.Scatter(x=[s for s, _ in nelbo], y=[v for _, v in nelbo], mode="markers+lines",
                                 name="NELBO (evaluation)",
                                 marker={"color": SERIES[3], "size": 9, "symbol": "diamond"}))
    fig.add_hline(y=entropy_bits_per_unit, line={"color": "#000000", "dash": "dash"},
                  annotation_text=f"entropy H = {entropy_bits_per_unit:.3f}", annotation_position="top right")
    top = max([entropy_bits_per_unit * 2.2] + [v for _, v in nelbo[:1]])
    fig.update_yaxes(title="bits per unit", range=[0, top])
    fig.update_xaxes(title="training step")
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 30, "b": 40}, legend={"orientation": "h", "y": 1.12})
    return fig


def quality_vs_steps_figure(results: dict, metric: str = "validity") -> go.Figure:
    """Validity or coverage against the number of steps T (log axis), one line per variant."""
    fig = go.Figure()
    label = {"validity": "validity", "coverage_fraction": "coverage of the support"}[metric]
    for j, (v, row) in enumerate(results["variants"].items()):
        steps = sorted(int(k) for k in row["by_steps"])
        y = [row["by_steps"][str(T)][metric] for T in steps]
        err = [row["by_steps"][str(T)]["validity_stderr"] for T in steps] if metric == "validity" else None
        fig.add_trace(go.Scatter(x=steps, y=y, mode="lines+markers", name=v,
                                 error_y={"type": "data", "array": err, "visible": err is not None},
                                 line={"color": series_color(v, j), "width": 3}, marker={"size": 8}))
        if metric == "validity" and "validity_exact" in row["by_steps"][str(steps[0])]:
            fig.add_trace(go.Scatter(x=steps, y=[row["by_steps"][str(T)]["validity_exact"] for T in steps],
                                     mode="lines", name=f"{v} (exact)",
                                     line={"color": series_color(v, j), "dash": "dot"}))
    fig.update_xaxes(type="log", title="steps T", tickvals=steps)
    fig.update_yaxes(title=label, range=[0, 1.02])
    fig.update_layout(height=330, margin={"l": 10, "r": 10, "t": 10, "b": 40}, legend={"orientation": "h", "y": 1.15})
    return fig


def strategy_figure(results: dict, steps: int) -> go.Figure:
    """Masked strategies: validity against coverage (confidence ordering trades diversity for validity)."""
    cells = results["strategies"][str(steps)]
    fig = go.Figure()
    symbols = ("circle", "square", "diamond", "triangle-up", "cross", "star")
    for j, (name, c) in enumerate(cells.items()):
        fig.add_trace(go.Scatter(x=[c["coverage_fraction"]], y=[c["validity"]], mode="markers+text", text=[name],
                                 textposition="top center", name=name,
                                 marker={"size": 16, "color": STRATEGY_COLORS.get(name, NEUTRAL),
                                         "symbol": symbols[j % len(symbols)]},
                                 error_y={"type": "data", "array": [c["validity_stderr"]]},
                                 hovertemplate=f"{name}: validity %{{y:.3f}}, coverage %{{x:.3f}}, "
                                               f"KL valid {c['kl_valid_bits']:.3f} bits<extra></extra>"))
    fig.update_xaxes(title="coverage of the support (diversity)", range=[0, 1.05])
    fig.update_yaxes(title="validity")
    fig.update_layout(height=360, margin={"l": 10, "r": 10, "t": 10, "b": 40}, showlegend=False)
    return fig


def schedule_compare_figure(results: dict) -> go.Figure:
    """Exact validity of the ancestral masked sampler against T for each schedule."""
    fig = go.Figure()
    for j, (sched, cells) in enumerate(results["schedules"].items()):
        steps = sorted(int(k) for k in cells)
        fig.add_trace(go.Scatter(x=steps, y=[cells[str(T)]["validity_exact"] for T in steps], mode="lines+markers",
                                 name=f"{sched} (exact)", line={"width": 3, "color": SERIES[j % len(SERIES)]}))
    fig.update_xaxes(type="log", title="steps T", tickvals=steps)
    fig.update_yaxes(title="validity (exact)", range=[0, 1.02])
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 40}, legend={"orientation": "h", "y": 1.15})
    return fig


def remdm_figure(results: dict) -> go.Figure:
    """ReMDM: validity and coverage against the remasking cap eta."""
    by = results["remdm"]["by_eta"]
    etas = list(by)
    fig = go.Figure()
    fig.add_trace(go.Bar(x=etas, y=[by[e]["validity"] for e in etas], name="validity", marker={"color": SERIES[0]},
                         error_y={"type": "data", "array": [by[e]["validity_stderr"] for e in etas]}))
    fig.add_trace(go.Bar(x=etas, y=[by[e]["coverage_fraction"] for e in etas], name="coverage",
                         marker={"color": SERIES[2], "pattern": {"shape": "/"}}))
    fig.update_xaxes(title="η (remasking cap)", type="category")
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(height=300, barmode="group", margin={"l": 10, "r": 10, "t": 10, "b": 40},
                      legend={"orientation": "h", "y": 1.15})
    return fig
