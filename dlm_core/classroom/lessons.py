"""What each lesson step shows, computed from the models and the exact maths: a `Figure` (a run for the stage,
a table, a chart, texts) and its `finding`, the sentences that depend on the numbers, written from them. The
Lessons page draws a Figure live and the handout draws it as pictures (classroom/handout.py); the plan (texts,
views, questions) is classroom/lesson_plan.py. No Streamlit here.

`figure(view, models, lm)`: `models` maps a toy variant's name to its model; `lm` is a callable returning the
real model (only the real-model views load it). Swap a model and every finding follows (tests/test_lessons.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from dlm_core.classroom.lesson_plan import LESSONS, SEED, SENTENCE, Lesson, Step, View
from dlm_core.render.safe_html import Markup
from dlm_core.toy_language import MASK_ID, REASON_WORDS, UNITS, encode, sample_metrics, support_size
from dlm_core.trajectory import Trajectory

__all__ = ["LESSONS", "Lesson", "Step", "View", "Figure", "lesson_step", "STAGE_KINDS", "REAL_KINDS"]

STAGE_KINDS = ("autoregressive", "reverse", "forward", "errors", "propagation_masked", "propagation_uniform",
               "prefill_toy", "bert_real", "guidance_real", "prefill_real", "real_blocks", "real_strategies",
               "real_threshold")  # views whose run plays on the stage
REAL_KINDS = ("bert_real", "guidance_real", "prefill_real", "real_blocks", "real_strategies", "real_threshold")


@dataclass
class Figure:
    """What one step shows. Everything here may give a question's answer away: before the reveal the page
    shows only the stage's first column (the run truncated to step 0) and nothing else."""

    trajectory: Trajectory | None = None  # played on the stage
    stage: dict = field(default_factory=dict)  # the stage's extra options (forward words, states, step name)
    rows: list[dict] = field(default_factory=list)  # a table
    caption: str = ""  # what the table or chart shows
    chart: Markup | None = None  # an inline SVG chart (every value escaped)
    plot: object | None = None  # a plotly figure (render/study_figures), where an SVG chart would not do
    texts: list[tuple[str, str]] = field(default_factory=list)  # (label, generated text) of real-model runs
    finding: str = ""  # sentences computed from the numbers above


def lesson_step(lesson: int, step: int) -> Step:
    """Step `step` of lesson `lesson` (both from 1)."""
    return LESSONS[lesson - 1].steps[step - 1]


def autoregressive_trajectory(models: dict, sentence: str = SENTENCE) -> Trajectory:
    """The trained autoregressive twin writing `sentence`: one unit per step, left to right, each record with the
    model's prediction given the units before it (teacher forcing)."""
    from dlm_core.variants.autoregressive import teacher_forced_trajectory

    return teacher_forced_trajectory(models["autoregressive"], encode(sentence))


def autoregressive_rows(traj: Trajectory) -> list[dict]:
    """Per step of a teacher-forced run: the unit, the model's probability of it given the units before it, and
    the language's exact one."""
    import torch

    from dlm_core.variants.autoregressive import prefix_conditionals

    x = traj.final
    exact = prefix_conditionals(torch.as_tensor([x]))[0]
    return [{"step": k + 1, "unit": UNITS[x[k]],
             "model p(unit | before)": f"{dict(zip(rec.topk_ids[k], rec.topk_probs[k])).get(x[k], 0.0):.3f}",
             "exact p(unit | before)": f"{float(exact[k, x[k]]):.3f}"} for k, rec in enumerate(traj.records)]


def verdict(traj: Trajectory) -> str:
    """The toy language's verdict on a run's final sentence, with the rule it breaks in plain words."""
    from dlm_core.toy_language import validity_reason, writes_units

    if not writes_units(traj.vocab, traj.final):
        return ""
    reason = validity_reason(traj.final)
    return "Valid: a sentence of the toy language." if reason == "valid" else f"Not valid: {REASON_WORDS[reason]}."


# ------------------------------------------------------------------------------ the toy views


def exact_validity_curve(model) -> dict[int, float]:
    """The exact valid mass of the masked ancestral sampler at every step budget."""
    from dlm_core.variants.evaluate import VALIDITY_STEPS
    from dlm_core.variants.registry import VARIANTS

    return {T: VARIANTS["masked"].exact_validity(model, T) for T in VALIDITY_STEPS}


def validity_chart(curve: dict[int, float]) -> Markup:
    """The exact valid mass against T on a numeric (log) axis: the bars rise where the mass does."""
    import math

    from dlm_core.render.palette import SERIES
    from dlm_core.render.svg_chart import SvgChart

    steps = sorted(curve)
    xs = [math.log10(T) for T in steps]
    chart = SvgChart(xlim=(xs[0] - 0.15, xs[-1] + 0.15), ylim=(0, 1), label="exact valid mass against steps T",
                     width=560, height=260, xlabel="steps T (log scale)", ylabel="valid (exact)")
    chart.line(xs, [curve[T] for T in steps], SERIES[0], width=3)
    chart.points(xs, [curve[T] for T in steps], SERIES[0], r=6, labels=[str(T) for T in steps], label_dy=-12,
                 titles=[f"T = {T}: {curve[T]:.3f}" for T in steps])
    return chart.markup()


def steps_to_reach(curve: dict[int, float], level: float = 0.9) -> int | None:
    return next((T for T in sorted(curve) if curve[T] >= level), None)


def strategy_table(model, n: int = 2000, steps: int = 6) -> dict[str, dict]:
    """Validity (± SE), coverage and KL on valid samples of random order against low-confidence."""
    from dlm_core.variants.registry import VARIANTS

    out = {}
    for strategy in ("random", "low-confidence"):
        m = sample_metrics(VARIANTS["masked"].sample(model, n, steps, seed=SEED, strategy=strategy).tolist())
        out[strategy] = {"validity": m.validity, "validity_se": m.validity_stderr, "coverage": m.coverage,
                         "kl_valid_bits": m.kl_valid_bits}
    return out


def strategy_rows(table: dict) -> list[dict]:
    return [{"strategy": s, "valid": f"{c['validity']:.2%} ± {c['validity_se']:.2%}",
             "different valid sentences": f"{c['coverage']} of {support_size()}",
             "KL valid (bits)": f"{c['kl_valid_bits']:.3f}"} for s, c in table.items()]


def strategy_finding(table: dict) -> str:
    """Which strategy is more valid (or neither, within 2 standard errors) and which says more sentences."""
    r, c = table["random"], table["low-confidence"]
    gap = c["validity"] - r["validity"]
    se = (r["validity_se"] ** 2 + c["validity_se"] ** 2) ** 0.5
    if abs(gap) <= 2 * se:
        valid = (f"Both strategies are about equally valid here ({c['validity']:.2%} and {r['validity']:.2%}, "
                 "within two standard errors)")
    else:
        more, less = ("low-confidence", "random order") if gap > 0 else ("random order", "low-confidence")
        valid = f"{more.capitalize()} is more often valid than {less} ({abs(gap):.2%} more)"
    more_div = "random order" if r["coverage"] > c["coverage"] else "low-confidence"
    return (f"{valid}; {more_div} writes more different valid sentences ({max(r['coverage'], c['coverage'])} "
            f"against {min(r['coverage'], c['coverage'])} of {support_size()}).")


def error_counts(model, n: int = 2000, steps: int = 1) -> dict[str, int]:
    """How many of n samples of the T-step ancestral sampler break each rule (valid included)."""
    from dlm_core.variants.registry import VARIANTS

    return sample_metrics(VARIANTS["masked"].sample(model, n, steps, seed=SEED, strategy="ancestral").tolist()).reasons


def error_rows(counts: dict[str, int]) -> list[dict]:
    n = sum(counts.values())
    return [{"verdict": "valid" if r == "valid" else r.replace("_", " "), "what it means": REASON_WORDS[r],
             "samples": f"{c} of {n}"} for r, c in sorted(counts.items(), key=lambda kv: -kv[1])]


def bound_rows(results: dict, steps: tuple[int, ...] = (3, 6)) -> list[dict]:
    """From the comparison's results: each variant's NELBO − H against its validity at a few steps."""
    rows = []
    for v, row in results["variants"].items():
        cells = {f"valid at T = {T}": f"{row['by_steps'][str(T)]['validity']:.3f}" for T in steps
                 if str(T) in row["by_steps"]}
        rows.append({"variant": v, "NELBO − H (bits/unit)": f"{row['nelbo_minus_entropy_bits']:+.4f}", **cells})
    return rows


def bound_finding(results: dict, T: int = 3) -> str:
    """Which variant has the tightest bound and which is most valid at T steps, reconciled in words."""
    rows = {v: r for v, r in results["variants"].items() if str(T) in r["by_steps"]}
    tight = min(rows, key=lambda v: rows[v]["nelbo_minus_entropy_bits"])
    valid = max(rows, key=lambda v: rows[v]["by_steps"][str(T)]["validity"])
    same = tight == valid
    return (f"The tightest bound is {tight}'s (NELBO − H = {rows[tight]['nelbo_minus_entropy_bits']:+.4f} bits per "
            f"unit); at {T} steps the most valid samples are {valid}'s "
            f"({rows[valid]['by_steps'][str(T)]['validity']:.1%}). "
            + ("Here both rankings agree." if same else
               f"The bound scores how well {tight} knows the whole language; few-step validity scores how well a "
               f"sampler decides several units at once, and {valid} can still change a unit after writing it."))


def clamp_table(model, n: int = 1000, steps: int = 24) -> dict[str, dict]:
    """The Gaussian sampler with and without Diffusion-LM's clamping: validity ± SE and coverage."""
    from dlm_core.variants.registry import VARIANTS

    out = {}
    for clamp in (False, True):
        m = sample_metrics(VARIANTS["gaussian"].sample(model, n, steps, seed=SEED, clamp=clamp).tolist())
        out["clamped" if clamp else "plain"] = {"validity": m.validity, "validity_se": m.validity_stderr,
                                                "coverage": m.coverage}
    return out


def clamp_finding(table: dict) -> str:
    p, c = table["plain"], table["clamped"]
    se = (p["validity_se"] ** 2 + c["validity_se"] ** 2) ** 0.5
    change = c["validity"] - p["validity"]
    said = (f"raises validity from {p['validity']:.1%} to {c['validity']:.1%}" if change > 2 * se else
            f"lowers validity from {p['validity']:.1%} to {c['validity']:.1%}" if change < -2 * se else
            f"leaves validity where it was ({p['validity']:.1%} and {c['validity']:.1%})")
    return (f"Clamping {said}, and the number of different valid sentences goes from {p['coverage']} to "
            f"{c['coverage']}: snapping to the nearest unit at every step decides early.")


def propagation_trajectories(models: dict) -> tuple[Trajectory, Trajectory]:
    """One masked run from the article's canvas and one uniform run given the same units mid-flight."""
    import torch

    from dlm_core.sampling.sampler import run_trajectory
    from dlm_core.studies.mid_flight import ARTICLE, MidFlightSettings, canvas_of, uniform_given_mid_flight
    from dlm_core.variants.registry import VARIANTS

    canvas = canvas_of(ARTICLE)
    masked = VARIANTS["masked"].trajectory(models["masked"], sum(u == MASK_ID for u in canvas), SEED,
                                           x_init=torch.tensor([canvas]), strategy="random")
    rest = uniform_given_mid_flight(models["uniform"], canvas, MidFlightSettings(), SEED, batch=1)
    uniform = run_trajectory(rest, "uniform", list(VARIANTS["uniform"].vocab))
    return masked, uniform
