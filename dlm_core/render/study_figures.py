"""Plotly figures of the study pages' results (infill, threshold decoding). They read plain result objects
and dicts and import no study: render draws what studies computed. No Streamlit."""

from __future__ import annotations

import plotly.graph_objects as go

from dlm_core.render.palette import NEUTRAL, SERIES, STRATEGY_COLORS, series_color


def infill_figure(result, top: int = 12) -> go.Figure:
    """The top completions of an infill result (studies.infill.InfillResult): the language's exact
    conditional next to the model's sampled shares (± 1 SE) and, where it applies, the model's exact
    infill; then every completion that is not a sentence, as one bar. Horizontal bars, the most likely on
    top; each series has its own colour and pattern."""
    rows = result.top_rows(top)
    labels = [r.text if r.reason == "valid" else f"{r.text} ✗" for r in rows]
    language, shares, ses = [r.language_p for r in rows], [r.share for r in rows], [r.share_se for r in rows]
    exact = [r.model_exact_p for r in rows]
    d = result.sampled
    if d.valid_mass < 1 or (result.exact is not None and result.exact.valid_mass < 1):  # the invalid ones, together
        labels.append("not a sentence (all together)")
        language.append(0.0)
        shares.append(1 - d.valid_mass)
        ses.append(d.valid_mass_se)
        exact.append(None if result.exact is None else max(1 - result.exact.valid_mass, 0.0))
    fig = go.Figure()
    fig.add_trace(go.Bar(y=labels, x=language, orientation="h", name="language (exact)",
                         marker={"color": "#999999", "pattern": {"shape": "/"}},
                         hovertemplate="%{y}: %{x:.4f}<extra>language</extra>"))
    fig.add_trace(go.Bar(y=labels, x=shares, orientation="h", name=f"{result.settings.variant} model (sampled)",
                         marker={"color": series_color(result.settings.variant)},
                         error_x={"type": "data", "array": ses},
                         hovertemplate="%{y}: %{x:.4f}<extra>sampled</extra>"))
    if result.exact is not None:
        fig.add_trace(go.Bar(y=labels, x=exact, orientation="h", name="masked model (exact)",
                             marker={"color": SERIES[5], "pattern": {"shape": "."}},
                             hovertemplate="%{y}: %{x:.4f}<extra>model exact</extra>"))
    fig.update_xaxes(title="probability of the completion")
    fig.update_yaxes(tickfont={"family": "monospace"}, autorange="reversed")  # the most likely on top
    fig.update_layout(barmode="group", height=120 + 34 * len(labels) * (1 + (result.exact is not None) * 0.4),
                      margin={"l": 10, "r": 10, "t": 10, "b": 40}, legend={"orientation": "h", "y": 1.02,
                                                                              "yanchor": "bottom"})
    return fig


def threshold_figure(results: dict) -> go.Figure:
    """Threshold decoding (studies.threshold_decoding.study's results): validity against forward passes
    per sentence, for the threshold strategy (one point per threshold) and the fixed-count strategies
    (one point per T), with their standard errors; a dotted line where an autoregressive model would be
    (one pass per unit)."""
    fig = go.Figure()
    cells = results["threshold"]
    labels, last = [], None  # points that (nearly) coincide share one label: "0.7, 0.9"
    for t, c in cells.items():
        if last is not None and abs(c["passes"] - last[0]) < 0.3 and abs(c["validity"] - last[1]) < 0.03:
            labels[last[2]] += f", {t}"
            labels.append("")
        else:
            last = (c["passes"], c["validity"], len(labels))
            labels.append(t)
    fig.add_trace(go.Scatter(
        x=[c["passes"] for c in cells.values()], y=[c["validity"] for c in cells.values()],
        error_x={"type": "data", "array": [c["passes_stderr"] for c in cells.values()]},
        error_y={"type": "data", "array": [c["validity_stderr"] for c in cells.values()]},
        mode="lines+markers+text", text=labels, customdata=list(cells), textposition="top left", cliponaxis=False,
        name="threshold (label: threshold)",
        line={"color": STRATEGY_COLORS["threshold"], "width": 3}, marker={"size": 9},
        hovertemplate="threshold %{customdata}: %{x:.2f} passes, validity %{y:.3f}<extra></extra>"))
    dashes = ("dash", "dot", "dashdot")
    places = ("bottom left", "bottom right", "top right")
    for j, (strategy, by_T) in enumerate(results["fixed"].items()):
        fig.add_trace(go.Scatter(
            x=[c["passes"] for c in by_T.values()], y=[c["validity"] for c in by_T.values()],
            error_y={"type": "data", "array": [c["validity_stderr"] for c in by_T.values()]},
            mode="lines+markers+text", text=[f"T={T}" for T in by_T], textposition=places[j % len(places)],
            cliponaxis=False,
            name=f"{strategy}, fixed count (label: T)",
            line={"dash": dashes[j % len(dashes)], "width": 2, "color": STRATEGY_COLORS.get(strategy, NEUTRAL)},
            marker={"size": 8, "symbol": "square"},
            hovertemplate=f"{strategy} %{{text}}: %{{x:.2f}} passes, validity %{{y:.3f}}<extra></extra>"))
    n = results["length"]
    fig.add_vline(x=n, line={"dash": "dot", "color": "#777"},
                  annotation_text=f"autoregressive: {n} passes", annotation_position="bottom left")
    fig.update_xaxes(title="forward passes per sentence", range=[0.5, n + 0.5], dtick=1)
    fig.update_yaxes(title="validity", range=[0, 1.02])
    fig.update_layout(height=400, margin={"l": 10, "r": 30, "t": 30, "b": 40}, legend={"orientation": "h", "y": 1.2})
    return fig


def lab_figure(curves: list[tuple[str, list[float], list[float]]], x_title: str = "training step") -> go.Figure:
    """The training lab's runs side by side: each run's exact bound minus its floor (bits per unit) against the
    step or the epoch, log scale (a run that reaches its floor would touch 0). `curves`: (label, x, gap)."""
    fig = go.Figure()
    for j, (label, xs, gaps) in enumerate(curves):
        fig.add_trace(go.Scatter(x=xs, y=[max(g, 1e-5) for g in gaps], mode="lines+markers", name=label,
                                 line={"color": SERIES[j % len(SERIES)], "width": 3, "dash": DASHES[j % len(DASHES)]},
                                 hovertemplate=f"{label}: %{{y:.4f}} bits per unit above the floor at %{{x:.0f}}"
                                               "<extra></extra>"))
    # plotly's own ticks: a run's gap often spans less than one decade, where one tick per decade shows none
    fig.update_yaxes(title="bound − its floor (bits per unit, log)", type="log")
    fig.update_xaxes(title=x_title)
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 10, "b": 40}, legend={"orientation": "h", "y": 1.15})
    return fig


DASHES = ("solid", "dash", "dot", "dashdot")  # a series is told by its line too, not by colour alone


def data_study_figure(study: dict, unique: int) -> go.Figure:
    """The data-constrained study at one training-set size U: each family's held-out loss (bits per sentence)
    against epochs (log), the DLM's bound with ± 1 standard error, the entropy H as the floor."""
    fig = go.Figure()
    for j, run in enumerate(r for r in study["runs"] if r["unique_sentences"] == unique):
        name = {"ar": "autoregressive (exact NLL)", "dlm": "masked diffusion (NELBO ± SE)"}[run["family"]]
        fig.add_trace(go.Scatter(
            x=run["epochs"], y=run["heldout_bits_per_sentence"], mode="lines+markers", name=name,
            line={"color": series_color("autoregressive" if run["family"] == "ar" else "masked"), "width": 3,
                  "dash": DASHES[j % len(DASHES)]},
            error_y={"type": "data", "array": run.get("heldout_stderr_bits"), "visible": "heldout_stderr_bits" in run},
            hovertemplate=f"{name}: %{{y:.3f}} bits per sentence at epoch %{{x}}<extra></extra>"))
    h = study["entropy_bits_per_sentence"]
    fig.add_hline(y=h, line={"color": "#000000", "dash": "dash"}, annotation_text=f"entropy H = {h:.2f}",
                  annotation_position="bottom right")
    fig.update_xaxes(title="epochs over the training set (log)", type="log")
    fig.update_yaxes(title="held-out loss (bits per sentence)")
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 10, "b": 40}, legend={"orientation": "h", "y": 1.15})
    return fig
