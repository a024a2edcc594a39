"""Plotly figures and HTML snippets built from Trajectories. No Streamlit here.

One colour meaning everywhere (design.md section 4, Okabe-Ito, colour-blind safe).
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from .trajectory import Trajectory

# state -> (fill, text colour, legend label)
STATES = {
    "mask": ("#D9D9D9", "#222222", "[MASK] / still noise"),
    "committed_now": ("#E69F00", "#000000", "committed at this step"),
    "committed_earlier": ("#0072B2", "#FFFFFF", "committed earlier (unchanged)"),
    "changed": ("#D55E00", "#FFFFFF", "changed at this step (self-correction)"),
    "remasked": ("#CC79A7", "#000000", "re-masked at this step (ReMDM)"),
}
STATE_ORDER = list(STATES)
PROMPT_OUTLINE = "#000000"  # prompt / pinned by the user: black outline
SEQUENTIAL = "Viridis"  # the one scale for confidence and probability


def legend_html(include=STATE_ORDER, pinned: bool = True) -> str:
    """The colour legend, as inline HTML chips."""
    chips = [_chip(STATES[s][2], s) for s in include]
    if pinned:
        chips.append(_chip("prompt / pinned by the user", "committed_earlier", outlined=True))
    return "<div style='display:flex;flex-wrap:wrap;gap:6px'>" + "".join(chips) + "</div>"


def _chip(text: str, state: str, outlined: bool = False, big: bool = False) -> str:
    fill, fg, _ = STATES[state]
    border = f"3px solid {PROMPT_OUTLINE}" if outlined else "3px solid transparent"
    size = "1.6rem" if big else "0.95rem"
    return (
        f"<span style='background:{fill};color:{fg};border:{border};border-radius:6px;"
        f"padding:2px 10px;font-family:monospace;font-size:{size};white-space:nowrap'>"
        f"{html.escape(text)}</span>"
    )


def cell_states(traj: Trajectory) -> list[list[str]]:
    """states[k][i]: the state of position i after k steps (k = 0: the start)."""
    mask = traj.mask_id
    out = [["mask" if (mask is not None and tok == mask) or (mask is None and i not in traj.fixed) else
            "committed_earlier" for i, tok in enumerate(traj.initial)]]
    for rec in traj.records:
        row = list(out[-1])
        for i, tok in enumerate(rec.tokens):
            if mask is not None and tok == mask:
                row[i] = "mask"
            elif row[i] in ("committed_now", "changed"):
                row[i] = "committed_earlier"
            elif row[i] == "remasked":
                row[i] = "mask"
        for i in rec.committed:
            row[i] = "committed_now"
        for i in rec.changed:
            row[i] = "changed"
        for i in rec.remasked:
            row[i] = "remasked"
        out.append(row)
    return out


def sequence_html(traj: Trajectory, k: int, big: bool = True) -> str:
    """The sequence after k steps as coloured chips (the view a class reads from afar)."""
    states = cell_states(traj)[k]
    toks = traj.tokens_at(k)
    fixed = set(traj.fixed)
    chips = [_chip(traj.token_text(t), states[i], outlined=i in fixed, big=big) for i, t in enumerate(toks)]
    return "<div style='display:flex;flex-wrap:wrap;gap:8px;margin:6px 0 10px 0'>" + "".join(chips) + "</div>"


def trajectory_grid(traj: Trajectory, k: int, max_text_steps: int = 40) -> go.Figure:
    """Token x step grid: colour = state, text = unit; columns after step k are left blank."""
    states = cell_states(traj)
    n_pos, n_cols = traj.length, traj.n_steps + 1
    code = {s: j for j, s in enumerate(STATE_ORDER)}
    z = np.full((n_pos, n_cols), np.nan)
    text = np.full((n_pos, n_cols), "", dtype=object)
    for col in range(min(k, traj.n_steps) + 1):
        toks = traj.tokens_at(col)
        for i in range(n_pos):
            z[i, col] = code[states[col][i]]
            text[i, col] = traj.token_text(toks[i]) if n_cols <= max_text_steps else ""
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
                                 textfont={"color": fg, "size": 14}, showlegend=False))
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


def distribution_bar(traj: Trajectory, k: int, position: int) -> go.Figure:
    """The predicted distribution of one position at step k (the record of step k, k >= 1)."""
    rec = traj.records[max(k, 1) - 1]
    ids, probs = rec.topk_ids[position], rec.topk_probs[position]
    if not ids:
        fig = go.Figure()
        fig.add_annotation(text="No prediction at this step: the position was already fixed<br>"
                                "(SUBS copies unmasked positions through).", showarrow=False, font={"size": 15})
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 40})
        return fig
    labels = [traj.token_text(i) for i in ids]
    chosen = rec.tokens[position]
    fig = go.Figure(
        go.Bar(
            x=labels,
            y=probs,
            marker={"color": probs, "colorscale": SEQUENTIAL, "cmin": 0, "cmax": 1,
                    "line": {"color": ["#000000" if i == chosen else "rgba(0,0,0,0)" for i in ids], "width": 3}},
            hovertemplate="%{x}: %{y:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(range=[0, 1], title="probability")
    fig.update_layout(height=300, margin={"l": 10, "r": 10, "t": 10, "b": 40})
    return fig


def order_figure(traj: Trajectory, k: int | None = None) -> go.Figure:
    """Unmasking order up to step k: for each position, the step at which its unit was committed."""
    k = traj.n_steps if k is None else k
    steps = [s if s is not None and s <= k else None for s in traj.commit_step()]
    labels = [f"{i + 1}. {traj.token_text(t)}" for i, t in enumerate(traj.tokens_at(k))]
    z = [[np.nan if s is None else s for s in steps]]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=labels,
            y=["commit step"],
            text=[["prompt" if i in traj.fixed else "–" if s is None else str(s) for i, s in enumerate(steps)]],
            texttemplate="%{text}",
            textfont={"size": 16},
            colorscale=SEQUENTIAL,
            zmin=1,
            zmax=max(traj.n_steps, 2),
            colorbar={"title": "step", "thickness": 12},
            xgap=3,
            hovertemplate="%{x}: committed at step %{z}<extra></extra>",
        )
    )
    fig.update_layout(height=170, margin={"l": 10, "r": 10, "t": 10, "b": 30})
    return fig


def confidence_figure(traj: Trajectory, k: int) -> go.Figure:
    """Scores of the positions committed at each step (the confidence used for ordering)."""
    xs, ys, text = [], [], []
    for rec in traj.records[: max(k, 0)]:
        for i in rec.committed:
            c = rec.confidence[i] if i < len(rec.confidence) else None
            if c is not None and np.isfinite(c):
                xs.append(rec.step)
                ys.append(c)
                text.append(f"pos {i + 1}: {traj.token_text(rec.tokens[i])}")
    fig = go.Figure(
        go.Scatter(x=xs, y=ys, mode="markers", text=text,
                   marker={"size": 11, "color": ys, "colorscale": SEQUENTIAL, "line": {"width": 1}},
                   hovertemplate="step %{x}: %{text}, score %{y:.3f}<extra></extra>")
    )
    fig.update_xaxes(title="reverse step", range=[0.5, traj.n_steps + 0.5])
    fig.update_yaxes(title="score when committed")
    fig.update_layout(height=260, margin={"l": 10, "r": 10, "t": 10, "b": 40})
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
                                 line={"color": "#0072B2", "width": 2}))
    if nelbo:
        fig.add_trace(go.Scatter(x=[s for s, _ in nelbo], y=[v for _, v in nelbo], mode="markers+lines",
                                 name="NELBO (evaluation)", marker={"color": "#E69F00", "size": 9}))
    fig.add_hline(y=entropy_bits_per_unit, line={"color": "#000000", "dash": "dash"},
                  annotation_text=f"entropy H = {entropy_bits_per_unit:.3f}", annotation_position="top right")
    top = max([entropy_bits_per_unit * 2.2] + [v for _, v in nelbo[:1]])
    fig.update_yaxes(title="bits per unit", range=[0, top])
    fig.update_xaxes(title="training step")
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 30, "b": 40}, legend={"orientation": "h", "y": 1.12})
    return fig
