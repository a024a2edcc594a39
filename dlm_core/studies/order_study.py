"""The unmasking-order study: what a masked DLM commits first, and how far from left to right.

For a masked sampler (docs/maths.md section 1) every generated position is committed at exactly one
step j (its final commit: `Trajectory.commit_step`). The study measures, over many sequences:

- **Toy model** (the shipped masked checkpoint, L = 6): for each strategy of
  `masked_sampler.STRATEGIES` and several T, the matrix P[i, j] = P(position i is committed at step j),
  the same by grammatical role (`toy_language.unit_roles`), and Kendall's tau between commit step and
  position. For `random` and `ancestral` the order does not depend on the model, so P and the
  distribution of tau are exact (the role view is not: what is written at a position, hence its role,
  depends on what was committed before it):

  - random (LLaDA's fixed-count sampler with uniform scores): step j commits c_j = spread_counts(L, T)[j]
    of the still-masked positions, chosen uniformly, so the order is a uniform random permutation cut
    into blocks of c_1, ..., c_T and P[i, j] = c_j / L for every i;
  - ancestral (MDLM): a position still masked before step k is revealed with probability
    q_k = (alpha_s - alpha_t) / (1 - alpha_t) (q_T = 1), independently of the others, so its step is
    j with probability pi_j = q_j prod_{k<j} (1 - q_k) (pi_j = 1 / T for the linear schedule) and
    P[i, j] = pi_j.

  The confidence strategies (low-confidence, margin, entropy) are sampled, with standard errors.
- **Real model** (the embedded one, or any loaded `HFMaskedLM`): for low-confidence and random order,
  the commit step of each generated token by relative position, by word class (punctuation, function
  word, content word, subword continuation) and by frequency rank.

Kendall's tau is tau-b (Kendall 1945), which accounts for ties (positions committed at the same step):
tau_b = (C - D) / sqrt((n0 - n1)(n0 - n2)), n0 = m(m - 1)/2 pairs, n1 = 0 ties in position, n2 = pairs
committed at the same step. +1: strictly left to right, -1: right to left, 0: no tendency. It is
undefined when every position is committed at the same step (n2 = n0); such sequences are left out
and counted.

`compute()` returns one JSON-able dict (shipped as assets/order_study.json, drawn by the Unmasking
order page). Only numpy is imported at the top, so the page reads the file without loading torch.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dlm_core.studies.order_measures import (
    EXACT_STRATEGIES,
    RESULTS,
    OrderStudySettings,
    clustered_share,
    commit_steps,
    exact_hist,
    exact_step_probs,
    exact_tau_distribution,
    kendall_tau_b,
    tau_edges,
    tau_summary,
)
from dlm_core.studies.order_real import real_study

# ------------------------------------------------------------------------------- toy part


def toy_commit_steps(model, strategy: str, steps: int, n: int, seed: int, temperature: float = 1.0,
                     schedule: str = "linear") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n toy sentences through the masked sampler in one batch: (final ids (n, L), commit steps (n, L),
    commits per step (n, T))."""
    from dlm_core.variants.registry import VARIANTS

    variant = VARIANTS["masked"]
    cfg = variant.sampler_config(steps, seed, strategy=strategy, temperature=temperature, schedule=schedule)
    cfg.top_k = 2  # no records are kept; margin needs the top 2
    sampler = variant.make_sampler(model, cfg, batch=n)
    s, per_step = commit_steps(sampler, 0, sampler.x.shape[1])
    return sampler.x.cpu().numpy(), s, per_step


def role_table(x: np.ndarray) -> np.ndarray:
    """(n, L) role index (into toy_language.ROLES) of each unit of each sentence."""
    from dlm_core.toy_language import ROLES, unit_roles

    uniq, inverse = np.unique(x, axis=0, return_inverse=True)
    table = np.array([[ROLES.index(r) for r in unit_roles(tuple(row))] for row in uniq.tolist()])
    return table[inverse.reshape(-1)]


def toy_cell(model, strategy: str, steps: int, st: OrderStudySettings, seed: int) -> dict:
    """One (strategy, T) cell: P[i, j] and tau_b (sampled, and exact where the order is model-independent),
    and P(step j | role) (always sampled: the role depends on the content)."""
    from dlm_core.sampling.masked_sampler import SCORES, spread_counts
    from dlm_core.toy_language import ROLES, support

    x, s, _ = toy_commit_steps(model, strategy, steps, st.toy_n, seed, st.toy_temperature, st.toy_schedule)
    n, length = s.shape
    edges = tau_edges(st.tau_bins)
    P = np.stack([(s == j).mean(0) for j in range(1, steps + 1)], 1)  # (L, T): P[i, j]
    cell = {"strategy": strategy, "T": steps, "n": n, "seed": seed,
            "counts": spread_counts(length, steps) if strategy in SCORES else None,
            "P": P.tolist(), "P_se": np.sqrt(P * (1 - P) / n).tolist(),
            "mean_step": (s.mean(0)).tolist(), "mean_step_se": (s.std(0, ddof=1) / math.sqrt(n)).tolist(),
            "validity": float(np.mean([tuple(r) in support() for r in x.tolist()]))}
    exact = exact_step_probs(strategy, steps, length, st.toy_schedule)
    cell["P_exact"] = None if exact is None else np.tile(exact, (length, 1)).tolist()
    # by role: P(step j | role) and the mean step, clustered by sentence
    roles = role_table(x)
    by_role = {}
    for r, name in enumerate(ROLES):
        member = roles == r
        if not member.any():
            continue
        shares = [clustered_share(s == j, member) for j in range(1, steps + 1)]
        mean, mean_se = clustered_share(s, member)
        first, first_se = clustered_share(member, s == 1)  # share of the step-1 commits that have this role
        by_role[name] = {"count": int(member.sum()), "P": [a for a, _ in shares], "P_se": [b for _, b in shares],
                         "mean_step": mean, "mean_step_se": mean_se, "first_share": first, "first_share_se": first_se}
    # sampled even for random / ancestral: which role a position takes depends on what was committed before
    # it (units committed together are drawn independently; the model errs), so role and step need not be
    # independent although the order is blind to content
    cell["roles"] = by_role
    cell["tau"] = tau_summary(kendall_tau_b(s), edges, distinct=True)
    ex = exact_tau_distribution(strategy, steps, length, st.toy_schedule)
    if ex is not None:
        ex["hist"] = exact_hist(ex["values"], edges)
    cell["tau_exact"] = ex
    return cell


def toy_study(st: OrderStudySettings, model=None, progress: Callable | None = None) -> dict:
    """Every strategy at every T on the toy model (default: the shipped masked checkpoint)."""
    import torch

    from dlm_core.sampling.masked_sampler import STRATEGIES
    from dlm_core.studies import training
    from dlm_core.toy_language import ROLES, L

    if model is None:
        model = training.load_checkpoint(training.default_checkpoint("masked"))[0]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tiny toy model (docs/maths.md: two threads are erratic)
    cells: dict = {s: {} for s in STRATEGIES}
    jobs = [(s, T) for T in st.toy_steps for s in STRATEGIES]
    try:
        for done, (strategy, T) in enumerate(jobs):
            seed = st.seed + 1000 * T + STRATEGIES.index(strategy)
            cells[strategy][str(T)] = toy_cell(model, strategy, T, st, seed)
            if progress is not None:
                progress((done + 1) / len(jobs), f"toy: {strategy}, T = {T}")
    finally:
        torch.set_num_threads(threads)
    return {"L": L, "steps": list(st.toy_steps), "strategies": list(STRATEGIES), "roles": list(ROLES),
            "exact_strategies": list(EXACT_STRATEGIES), "tau_edges": tau_edges(st.tau_bins).tolist(),
            "cells": cells}


# ---------------------------------------------------------------------------- findings


def _pct(p: float, se: float | None) -> str:
    """A share in percent, with as many decimals as its standard error needs (at most 2)."""
    if se is None or se == 0:  # no error to show (e.g. every sequence alike)
        return f"{100 * p:.0f} %"
    d = 0 if se >= 0.005 else min(2, -math.floor(math.log10(100 * se)))
    return f"{100 * p:.{d}f} % ± {100 * se:.{d}f} %"


def _exact(v: float) -> str:
    return "0 (exact)" if abs(v) < 1e-12 else f"{v:+.3f} (exact)"


CLASS_WORDS = {"punctuation": "punctuation", "function word": "function words", "content word": "content words",
               "subword": "subword continuations", "special": "special tokens"}
MIN_GENERATIONS = 10  # a class is named in the findings only when this many generations contain it


def format_mean(v: float, se: float | None, signed: bool = False) -> str:
    """v ± se with as many decimals as the standard error needs (2 to 4)."""
    d = 2 if not se or se >= 0.005 else min(4, -math.floor(math.log10(se)))
    v = round(v, d) + 0.0  # no "-0.00"
    return f"{v:{'+' if signed else ''}.{d}f}" + (f" ± {se:.{d}f}" if se is not None else "")


def _lean(mean: float, se: float | None) -> str | None:
    """'left to right' or 'right to left' when tau is more than 3 SE from 0, else None."""
    if not se or abs(mean) <= 3 * se:
        return None
    return "left to right" if mean > 0 else "right to left"


def toy_findings(toy: dict) -> str:
    """Two sentences from the toy numbers at the largest T: which position the first confidence strategy
    commits first and which roles it fills first and last; how left-to-right each strategy is, with the
    exact neutrality of the model-independent orders (random, ancestral)."""
    T = str(max(toy["steps"]))
    sampled = [s for s in toy["strategies"] if s not in toy["exact_strategies"]]
    lead = toy["cells"][sampled[0]][T]
    P, P_se = np.array(lead["P"]), np.array(lead["P_se"])
    i = int(P[:, 0].argmax())
    roles = {r: v for r, v in lead["roles"].items() if r != "other" and v["mean_step_se"]}
    early = min(roles, key=lambda r: roles[r]["mean_step"])
    late = max(roles, key=lambda r: roles[r]["mean_step"])
    taus = [(s, toy["cells"][s][T]["tau"]) for s in sampled]
    leans = {_lean(t["mean"], t["se"]) for _, t in taus}
    text = (f"With {sampled[0]} at T = {T}, position {i + 1} is committed first in {_pct(P[i, 0], P_se[i, 0])} of "
            f"the toy sentences; by grammatical role, {early} comes first (mean step "
            f"{format_mean(roles[early]['mean_step'], roles[early]['mean_step_se'])}) and {late} last "
            f"({format_mean(roles[late]['mean_step'], roles[late]['mean_step_se'])}). "
            f"Kendall's τ between commit step and position (+1 = left to right): "
            + ", ".join(f"{s} {format_mean(t['mean'], t['se'], signed=True)}" for s, t in taus)
            + (f" (all {leans.pop()})" if len(leans) == 1 and None not in leans else ""))
    exact = [(s, toy["cells"][s][T]["tau_exact"]) for s in toy["exact_strategies"]]
    neutral = [s for s, e in exact if e is not None and abs(e["mean"]) < 1e-12]
    if neutral:
        text += f"; {' and '.join(neutral)} order {'is' if len(neutral) == 1 else 'are'} left-to-right-neutral " \
                f"(τ = 0 exactly, from the exact distribution)"
    return text + "."


def real_findings(real: dict) -> str:
    """One or two sentences from the real-model numbers: which word class each strategy commits earliest
    and latest, and whether random order favours any class (beyond 3 standard errors)."""
    parts, blind = [], None
    for strategy, r in real["strategies"].items():
        cls = {c: v for c, v in r["by_class"].items() if v["generations"] >= MIN_GENERATIONS and v["se"]}
        if not cls:
            parts.append(f"{strategy}: too few tokens of any class to compare")
            continue
        early = min(cls, key=lambda c: cls[c]["mean_rel_step"])
        late = max(cls, key=lambda c: cls[c]["mean_rel_step"])
        z = max(abs(v["mean_rel_step"] - 0.5) / v["se"] for v in cls.values())
        lean = _lean(r["tau"]["mean"], r["tau"]["se"])
        parts.append(f"{strategy} commits {CLASS_WORDS.get(early, early)} earliest (mean relative step "
                     f"{format_mean(cls[early]['mean_rel_step'], cls[early]['se'])}) and {CLASS_WORDS.get(late, late)} "
                     f"latest ({format_mean(cls[late]['mean_rel_step'], cls[late]['se'])}), τ = "
                     f"{format_mean(r['tau']['mean'], r['tau']['se'], signed=True)}"
                     + (f" ({lean})" if lean else " (no left-to-right tendency)"))
        if strategy == "random" and z > 3:
            blind = z
    n = next(iter(real["strategies"].values()))["n"]
    text = (f"On the {real['model']} model ({n} generations of {real['gen_length']} tokens in {real['steps']} "
            f"steps per strategy), " + "; ".join(parts) + ".")
    if blind is not None:
        text += (" Random order picks positions blindly, so its class differences (up to "
                 f"{blind:.0f} SE from the middle, 0.5) come from what the model writes with little context, not "
                 "from which positions it picks.")
    return text


def summary_text(results: dict) -> str:
    """A short human summary of the results (the CLI without --json)."""
    toy = results["toy"]
    lines = [f"Unmasking-order study ({results['command']}; {results['wall_time_s']:.0f} s)",
             "toy model, Kendall's τ between commit step and position (mean ± SE; exact where marked):"]
    for T in toy["steps"]:
        cells = [toy["cells"][s][str(T)] for s in toy["strategies"]]
        row = [f"{c['strategy']} " + (_exact(c["tau_exact"]["mean"]) if c["tau_exact"] else
                                      format_mean(c["tau"]["mean"], c["tau"]["se"], signed=True)) for c in cells]
        lines.append(f"  T = {T}: " + " | ".join(row))
    real = results.get("real")
    if real:
        lines.append(f"real model ({real['model']}), mean relative commit step by word class (0 = first step):")
        for strategy, r in real["strategies"].items():
            row = [f"{c} {v['mean_rel_step']:.2f}" for c, v in r["by_class"].items() if v["mean_rel_step"] is not None]
            lines.append(f"  {strategy}: " + " | ".join(row))
    lines += ["findings:"] + [f"  - {f}" for f in results["findings"]]
    return "\n".join(lines)


# ------------------------------------------------------------------------------- compute


def compute(settings: OrderStudySettings | None = None, progress: Callable | None = None, toy_model=None,
            lm=None) -> dict:
    """The whole study as one JSON-able dict. `progress(fraction, text)` reports along the way."""
    st = settings or OrderStudySettings()
    t0 = time.perf_counter()
    toy_share = 0.15 if st.real else 1.0

    def toy_progress(f, text):
        if progress is not None:
            progress(toy_share * f, text)

    def real_progress(f, text):
        if progress is not None:
            progress(toy_share + (1 - toy_share) * f, text)

    toy = toy_study(st, toy_model, toy_progress)
    real = real_study(st, lm, real_progress) if st.real else None
    findings = [toy_findings(toy)] + ([real_findings(real)] if real else [])
    return {
        "what": "Unmasking-order study: which positions, roles and word classes masked diffusion commits first",
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "command": st.command,
        "settings": asdict(st),
        "seeds": "toy (strategy, T): seed + 1000 T + the strategy's index in STRATEGIES; real: the chunk of "
                 "generations starting at j runs with seed + j (the same prompts and seeds for every strategy)",
        "tau": "Kendall's tau-b between commit step and position per sequence (ties = committed at the same step); "
               "undefined (left out, counted) when all positions are committed at one step",
        "toy": toy,
        "real": real,
        "findings": findings,
    }


class ResultsError(ValueError):
    """The results file is missing or not an order-study result; the message names the file."""


def load_results(path: str | Path = RESULTS) -> dict:
    """The shipped (or any) results file, checked: a ResultsError with a clear message otherwise."""
    p = Path(path)
    if not p.is_file():
        raise ResultsError(f"there is no results file at {p}")
    try:
        d = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsError(f"{p} cannot be read as JSON ({e})") from e
    need = {"toy", "real", "findings", "settings", "command", "computed_at", "wall_time_s"}
    if not isinstance(d, dict) or not need <= set(d) or not _complete(d):
        raise ResultsError(f"{p} is not a complete order-study result (python -m dlm_core order-study writes one)")
    return d


def _complete(d: dict) -> bool:
    """Whether a results dict has every part the page draws."""
    toy, real = d["toy"], d["real"]
    try:
        cells_ok = all({"P", "P_se", "T", "roles", "tau", "tau_exact", "strategy"} <= set(toy["cells"][s][str(T)])
                       for s in toy["strategies"] for T in toy["steps"])
        real_ok = real is None or all({"by_class", "by_frequency", "by_position", "tau", "n"} <= set(r)
                                      for r in real["strategies"].values())
        return cells_ok and real_ok and {"roles", "tau_edges"} <= set(toy) and isinstance(d["findings"], list)
    except (KeyError, TypeError, AttributeError):
        return False
