"""The figures under the Reverse, Forward and Real stages, drawn as inline SVG / HTML.

They show what plotly versions showed (the predicted distribution of a position, the
unmasking order, the confidence of each commit, self-correction, paths in embedding space, the
forward marginals and the schedule) with no chart library to load, so these pages open at once
(see svg_chart). The Compare, Train and order-study pages keep plotly. No Streamlit, no torch.
"""

from __future__ import annotations

import numpy as np

from dlm_core.render.cells import cell_states, display_tokens
from dlm_core.render.palette import NEUTRAL, POSITION_COLORS, SERIES, STATES
from dlm_core.render.safe_html import Markup, html_of, join
from dlm_core.render.svg_chart import SvgChart, ink_on, viridis
from dlm_core.trajectory import Trajectory

EMBEDDING_FRAME = 2.5  # half-width of the Forward page's embedding view (units have norm 1)


def distribution_html(traj: Trajectory, k: int, position: int) -> Markup:
    """The predicted distribution of one position at step k (the record of step k, k >= 1): one bar per
    unit, most likely first; the unit the step drew is outlined."""
    if not traj.records:
        return _no_prediction("The run has no steps: nothing was predicted.")
    rec = traj.records[max(k, 1) - 1]
    if not rec.topk_ids or not 0 <= position < len(rec.topk_ids):
        return _no_prediction("This run did not record the model's predictions (a file exported without them).")
    ids, probs = rec.topk_ids[position], rec.topk_probs[position]
    if not ids:
        return _no_prediction("No prediction at this step: the position was already fixed (SUBS copies unmasked "
                              "positions through).")
    chosen = display_tokens(traj, max(k, 1))[position]  # what the stage shows there after the step
    rows = []
    for i, p in zip(ids, probs):
        p = float(p)
        mark = "3px solid #000000" if i == chosen else "3px solid transparent"
        rows.append(html_of(
            "<div style='display:flex;align-items:center;gap:8px;margin:2px 0' title='{label}: {p3}'>"
            "<span style='width:9rem;text-align:right;font-family:monospace;font-size:1rem;overflow:hidden;"
            "white-space:nowrap;text-overflow:ellipsis'>{label}</span>"
            "<span style='flex:1;background:#F2F2F2;height:1.5rem;border:{mark};box-sizing:border-box'>"
            "<span style='display:block;height:100%;width:{w}%;background:{fill}'></span></span>"
            "<span style='width:3.5rem;font-family:monospace'>{p3}</span></div>",
            label=traj.token_text(i), p3=f"{p:.3f}", mark=mark, w=f"{100 * p:.1f}", fill=viridis(p)))
    return html_of("<div role='figure' aria-label='predicted distribution of position {pos}'>{rows}</div>",
                   pos=position + 1, rows=join(rows))


def _no_prediction(text: str) -> Markup:
    return html_of("<div role='figure' aria-label='no prediction' style='padding:1rem;border:1px solid #DDD;"
                   "border-radius:6px'>{text}</div>", text=text)


def order_html(traj: Trajectory, k: int | None = None) -> Markup:
    """Unmasking order up to step k: each position with the step that committed its unit (colour = step)."""
    k = traj.n_steps if k is None else k
    steps = [s if s is not None and s <= k else None for s in traj.commit_step()]
    top = max(traj.n_steps, 2)
    cells = []
    for i, (tok, s) in enumerate(zip(traj.tokens_at(k), steps)):
        if i in traj.fixed:
            fill, ink, text = "#FFFFFF", "#000000", "prompt"
        elif s is None:
            fill, ink, text = STATES["mask"][0], STATES["mask"][1], "–"
        else:
            v = (s - 1) / (top - 1)
            fill, ink, text = viridis(v), ink_on(v), str(s)
        cells.append(html_of(
            "<div style='flex:1;min-width:4.5rem;border:1px solid #BBB;border-radius:4px;overflow:hidden' "
            "title='position {pos}: {state}'>"
            "<div style='font-family:monospace;font-size:0.9rem;padding:2px 4px;white-space:nowrap;overflow:hidden;"
            "text-overflow:ellipsis'>{pos}.&nbsp;{unit}</div>"
            "<div style='background:{fill};color:{ink};font-size:1.3rem;text-align:center;padding:4px'>{text}</div>"
            "</div>",
            pos=i + 1, unit="" if s is None and i not in traj.fixed else traj.token_text(tok), fill=fill, ink=ink,
            text=text,
            state="given in the prompt" if text == "prompt" else "not committed yet" if s is None
            else f"committed at step {s}"))
    return html_of("<div role='figure' aria-label='unmasking order' style='display:flex;flex-wrap:wrap;gap:4px'>"
                   "{cells}</div><div style='font-size:0.85rem;color:#555;margin-top:4px'>colour: the step, from "
                   "{first} (dark) to {last} (light)</div>", cells=join(cells), first=1, last=top)


def confidence_svg(traj: Trajectory, k: int) -> Markup:
    """Scores of the positions committed at each step (the confidence used for ordering)."""
    xs, ys, titles = [], [], []
    for rec in traj.records[: max(k, 0)]:
        for i in rec.committed:
            c = rec.confidence[i] if i < len(rec.confidence) else None
            if c is not None and np.isfinite(c):
                xs.append(rec.step)
                ys.append(float(c))
                titles.append(f"step {rec.step}: position {i + 1} = {traj.token_text(rec.tokens[i])}, score {c:.3f}")
    lo, hi = min([0.0, *ys]), max([1.0, *ys])
    chart = SvgChart((0.5, traj.n_steps + 0.5), (lo, hi), "score of each committed unit against the step",
                     xlabel="reverse step", ylabel="score when committed", integer_x=True)
    chart.points(xs, ys, [viridis((y - lo) / ((hi - lo) or 1)) for y in ys], r=7, titles=titles)
    return chart.markup()


def changes_svg(traj: Trajectory, k: int) -> Markup:
    """Self-correction: how many positions changed their unit at each step (uniform / Gaussian)."""
    states = cell_states(traj)
    steps = list(range(1, traj.n_steps + 1))
    counts = [sum(s == "changed" for s in states[j]) for j in steps]
    chart = SvgChart((0.5, traj.n_steps + 0.5), (0, traj.length), "positions changed at each step",
                     xlabel="reverse step", ylabel="positions changed", integer_x=True)
    chart.bars(steps, counts, [STATES["changed"][0] if j <= k else "#EEEEEE" for j in steps],
               titles=[f"step {j}: {c} positions changed" for j, c in zip(steps, counts)])
    return chart.markup()


def _legend(names, colors) -> Markup:
    chips = [html_of("<span style='white-space:nowrap'><span style='display:inline-block;width:12px;height:12px;"
                     "background:{c};border-radius:2px;margin-right:4px'></span>{n}</span>", c=c, n=n)
             for n, c in zip(names, colors)]
    return html_of("<div style='display:flex;flex-wrap:wrap;gap:4px 14px;font-size:0.9rem;margin-top:4px'>"
                   "{chips}</div>", chips=join(chips))


def _frame(points: np.ndarray, pad: float = 0.15) -> tuple[tuple[float, float], tuple[float, float]]:
    """Equal-aspect limits around the points (a square picture keeps distances honest)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    centre, half = (lo + hi) / 2, max(float((hi - lo).max()) / 2, 1e-6) * (1 + pad)
    return (centre[0] - half, centre[0] + half), (centre[1] - half, centre[1] + half)


def _unit_layer(chart: SvgChart, units_2d: np.ndarray, vocab) -> None:
    chart.points(list(units_2d[:, 0]), list(units_2d[:, 1]), NEUTRAL, r=7, diamonds=[True] * len(vocab),
                 labels=list(vocab), label_dy=-14, titles=[f"unit {v} (a row of E)" for v in vocab])


def embedding_paths_svg(traj: Trajectory, k: int, units_2d, proj) -> Markup:
    """Gaussian: the 2-D projection of E and each position's path z_s from noise (step 1) to step k."""
    units_2d = np.asarray(units_2d, dtype=float)
    paths = [np.array([np.asarray(r.state[i]) @ proj for r in traj.records[: max(k, 1)]])
             for i in range(traj.length)]
    xlim, ylim = _frame(np.vstack([units_2d, *paths]))
    chart = SvgChart(xlim, ylim, "each position's path in the 2-D projection of embedding space", width=520,
                     height=520, axes=False, margin=(10, 10, 10, 10))
    names, colors = [], []
    for i, pts in enumerate(paths):
        color = POSITION_COLORS[i % len(POSITION_COLORS)]
        chart.line(list(pts[:, 0]), list(pts[:, 1]), color, width=1.5)
        chart.points(list(pts[:-1, 0]), list(pts[:-1, 1]), color, r=3.5, stroke=color)  # the steps before k
        unit = traj.token_text(display_tokens(traj, max(k, 1))[i])
        chart.points([pts[-1, 0]], [pts[-1, 1]], color, r=8, titles=[f"position {i + 1} at step {max(k, 1)}: "
                                                                       f"nearest {unit}"])
        names.append(f"pos {i + 1} → {unit}")
        colors.append(color)
    _unit_layer(chart, units_2d, traj.vocab)  # last: the units' labels stay readable over the paths
    return join([chart.markup(), _legend(["units (rows of E)", *names], [NEUTRAL, *colors])])


def forward_embedding_svg(view: dict, x0, vocab) -> Markup:
    """Gaussian forward process: the units E[x] and the noisy z_t / alpha drifting away from them (dotted)."""
    lim = EMBEDDING_FRAME
    chart = SvgChart((-lim, lim), (-lim, lim), "noisy positions drifting away from their units", width=520,
                     height=520, axes=False, margin=(10, 10, 10, 10))
    units = np.asarray(view["units_2d"], dtype=float)
    clean, noisy = np.asarray(view["clean_2d"], dtype=float), np.asarray(view["scaled_2d"], dtype=float)
    _unit_layer(chart, units, list(vocab))
    shown = np.clip(noisy, -0.97 * lim, 0.97 * lim)  # a point beyond the frame sits on its edge, as a diamond
    off = [bool(o) for o in np.any(np.abs(noisy) > 0.97 * lim, axis=1)]
    for i in range(len(x0)):
        chart.line([clean[i, 0], shown[i, 0]], [clean[i, 1], shown[i, 1]], "#999999", width=1.5, dash="3 3")
    chart.points(list(shown[:, 0]), list(shown[:, 1]), STATES["changed"][0], r=11, diamonds=off,
                 labels=[str(i + 1) for i in range(len(x0))], label_colors=["#FFFFFF"] * len(x0),
                 titles=[f"position {i + 1} (clean: {vocab[int(u)]})" for i, u in enumerate(x0)])
    if any(off):
        chart.note("◆ on the edge: further out than the frame", 0, -lim + 0.12)
    return join([chart.markup(), _legend(["units (rows of E)", "noisy z_t / α (6 positions)"],
                                         [NEUTRAL, STATES["changed"][0]])])


def marginals_html(marginals, x0, vocab, mask_label: str | None = None) -> Markup:
    """q(z_t^i | x^i): for each position (row), the probability of every unit (and [MASK]) at time t."""
    m = np.asarray(marginals, dtype=float)
    labels = (list(vocab) + ([mask_label] if mask_label else []))[: m.shape[1]]
    head = join(html_of("<th style='font-family:monospace;font-weight:normal;padding:2px 0;writing-mode:vertical-rl;"
                        "transform:rotate(180deg);vertical-align:bottom;font-size:0.85rem'>{u}</th>", u=u)
                for u in labels)
    rows = []
    for i, u in enumerate(x0):
        cells = join(html_of("<td style='background:{f};color:{ink};text-align:center;padding:3px 0;min-width:1.9rem;"
                             "font-size:0.75rem' title='{pos}. {x} → {z}: {p3}'>{text}</td>",
                             f=viridis(p) if p > 0 else "#F2F2F2", ink=ink_on(p), pos=i + 1, x=vocab[int(u)], z=z,
                             p3=f"{p:.3f}",
                             text=f"{p:.2f}".lstrip("0") if p >= 0.005 else "")
                     for z, p in zip(labels, m[i]))
        rows.append(html_of("<tr><th style='text-align:right;font-family:monospace;font-weight:normal;"
                            "padding:2px 6px;white-space:nowrap'>{pos}. {x}</th>{cells}</tr>",
                            pos=i + 1, x=vocab[int(u)], cells=cells))
    return html_of("<div style='overflow-x:auto'><table role='figure' aria-label='q(z_t | x) per position' "
                   "style='border-collapse:separate;border-spacing:1px;margin:0'><tr><th></th>{head}</tr>{rows}"
                   "</table><div style='font-size:0.85rem;color:#555;margin-top:4px'>colour: the probability, from "
                   "dark (low) to yellow (1); grey: exactly 0</div></div>", head=head, rows=join(rows))


def schedule_svg(curve: dict, t: float) -> Markup:
    """The schedule over t, with a marker at the chosen t."""
    colors = SERIES[:2]
    tt = np.asarray(curve["t"], dtype=float)
    chart = SvgChart((0.0, 1.0), (0.0, 1.02), "the schedule over t", height=240,
                     xlabel="t (0 = data, 1 = noise)")
    chart.vline(t)
    names = []
    for j, (name, y) in enumerate(curve["curves"].items()):
        y = np.asarray(y, dtype=float)
        color = colors[j % 2]
        chart.line(list(tt), list(y), color, width=3)
        at_t = float(np.interp(t, tt, y))
        chart.points([t], [at_t], color, r=7, stroke_width=2, titles=[f"{name} at t = {t:.2f}: {at_t:.3f}"])
        names.append(f"{name} = {at_t:.2f} at t = {t:.2f}")
    return join([_legend(names, [colors[j % 2] for j in range(len(names))]), chart.markup()])
