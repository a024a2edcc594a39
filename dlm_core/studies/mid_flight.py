"""What a run does with units written mid-flight, on the toy language, with exact numbers where they exist.

- **Error propagation** (the article's agreement example): from "[MASK] [MASK] are your s [PAD]" a wrong early
  commit of "our" at position 1 leaves no valid sentence ("our X" is singular, so "are" cannot follow it).
  A masked model never changes a written unit, so from that canvas every completion it can write is an error;
  `exact_outcomes` gives the exact probability of each (the masked sampler in random order, one unit per step,
  temperature 1: the dynamic programme of docs/maths.md section 7 over every completion). A uniform model
  started from the same units at the same noise level may change them again: how often it repairs the
  sentence is sampled, with its standard error.
- **A mid-flight prefill** (the mechanism of the jailbreak finding, Wen et al. 2025, with harmless units):
  pinning units in the middle of the canvas decides what the model writes before them. The exact
  probability of an opening the model rarely chooses by itself, before and after the prefill.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from itertools import product

import numpy as np

from dlm_core.toy_language import ID, MASK_ID, REASON_WORDS, V, decode, support, validity_reason

ARTICLE = "our [MASK] are your s [PAD]"  # the article's canvas after a wrong early "our" (docs/toy-language.md)
PREFILL = "[MASK] are your cat [PAD] [MASK]"  # "are" + a singular predicate: only "you" opens such a sentence
OPENING = ("you",)  # the opening the prefill forces


def canvas_of(text: str) -> list[int]:
    """A canvas from its text: units and [MASK]s."""
    return [MASK_ID if u == "[MASK]" else ID[u] for u in text.split()]


def exact_outcomes(log_probs, canvas: list[int]) -> dict[tuple[int, ...], float]:
    """The exact distribution of the masked sampler's final sentence from `canvas` (random order, one unit per
    step, temperature 1), over every completion of its masked positions:

        f(empty) = 1,   f(S) = sum_{i in S} f(S \\ i) p(x^i | canvas, x_{S \\ i}) / (m - |S| + 1),

    `log_probs`: z (B, L) -> log p(. | z) (B, L, V) (masked.log_probs_fn of a model)."""
    free = [i for i, u in enumerate(canvas) if u == MASK_ID]
    m = len(free)
    rows = np.array([[*canvas] for _ in range(V ** m)], dtype=np.int64)
    rows[:, free] = np.array(list(product(range(V), repeat=m)), dtype=np.int64).reshape(-1, m)
    p = {}  # p[S] (K, L): p(x^i | canvas, x_S) for the free i outside S
    for s in range(1 << m):
        z = rows.copy()
        z[:, [free[j] for j in range(m) if not s >> j & 1]] = MASK_ID
        lp = log_probs(z)
        p[s] = np.exp(np.take_along_axis(lp, rows[:, :, None], -1)[..., 0])
    f = {0: np.ones(len(rows))}
    for s in sorted(range(1, 1 << m), key=lambda s: bin(s).count("1")):
        k = bin(s).count("1")
        f[s] = sum(f[s ^ (1 << j)] * p[s ^ (1 << j)][:, free[j]] for j in range(m) if s >> j & 1) / (m - k + 1)
    return {tuple(r): float(v) for r, v in zip(rows.tolist(), f[(1 << m) - 1]) if v > 0}


def by_reason(dist: dict[tuple[int, ...], float]) -> dict[str, float]:
    """The probability of each validity reason (valid, padding, agreement, predicate_number, other)."""
    out: dict[str, float] = {}
    for x, p in dist.items():
        reason = validity_reason(x)
        out[reason] = out.get(reason, 0.0) + p
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


@dataclass(frozen=True)
class MidFlightSettings:
    """The two experiments; each field says why it has its value."""

    article: str = ARTICLE  # the wrong early commits
    uniform_steps: int = 24  # the uniform model's default T
    uniform_from_step: int = 16  # where the units are written: two thirds of the way (t = 1/3), as far along as
    # the masked canvas, whose 5 of 6 units are written
    n: int = 2000  # uniform runs: a share's standard error is at most 0.011
    prefill: str = PREFILL
    seed: int = 0


def uniform_given_mid_flight(uniform_model, canvas: list[int], st: MidFlightSettings, seed: int, batch: int):
    """A uniform sampler (`batch` runs) that has taken st.uniform_from_step of its steps and then had the canvas's
    units written into its state: the steps left, ready to run."""
    from dlm_core.variants.registry import VARIANTS

    uni = VARIANTS["uniform"]
    cfg = uni.sampler_config(st.uniform_steps, seed)
    sampler = uni.make_sampler(uniform_model, cfg, batch=batch)
    while sampler.k < st.uniform_from_step:
        sampler.step()
    state = sampler.x.clone()
    for i, u in enumerate(canvas):
        if u != MASK_ID:
            state[:, i] = u
    return uni.make_sampler(uniform_model, replace(cfg, start_step=st.uniform_from_step), x_init=state)


def study(masked_model, uniform_model, settings: MidFlightSettings | None = None) -> dict:
    """Both experiments' numbers (JSON-able)."""
    from dlm_core.schedules import time_grid
    from dlm_core.variants.masked import log_probs_fn
    from dlm_core.variants.registry import VARIANTS

    st = settings or MidFlightSettings()
    lp = log_probs_fn(masked_model)
    canvas = canvas_of(st.article)
    masked = exact_outcomes(lp, canvas)
    top = sorted(masked.items(), key=lambda kv: -kv[1])[:5]
    cont = uniform_given_mid_flight(uniform_model, canvas, st, st.seed, st.n)
    while not cont.done:
        cont.step()
    final = cont.x.tolist()
    reasons: dict[str, int] = {}
    kept = 0
    for x in final:
        reasons[validity_reason(x)] = reasons.get(validity_reason(x), 0) + 1
        kept += all(x[i] == u for i, u in enumerate(canvas) if u != MASK_ID)
    valid = reasons.get("valid", 0) / st.n
    # prefill: the opening's exact probability under the language and the masked sampler, before and after
    pre = canvas_of(st.prefill)
    opening = [ID[u] for u in OPENING]
    lang_before = sum(float(p) for x, p in support().items() if list(x[:len(opening)]) == opening)
    after = exact_outcomes(lp, pre)
    after_open = sum(p for x, p in after.items() if list(x[:len(opening)]) == opening)
    sampled_before = VARIANTS["masked"].sample(masked_model, st.n, 6, st.seed, strategy="random").tolist()
    before_share = sum(x[:len(opening)] == opening for x in sampled_before) / st.n
    return {
        "settings": asdict(st),
        "t_written": float(time_grid(st.uniform_steps)[st.uniform_from_step]),
        "masked": {"by_reason": by_reason(masked), "valid": by_reason(masked).get("valid", 0.0),
                   "top": [[decode(x), p, validity_reason(x)] for x, p in top]},
        "uniform": {"valid": valid, "valid_se": float(np.sqrt(valid * (1 - valid) / st.n)),
                    "kept_both": kept / st.n, "by_reason": {k: v / st.n for k, v in reasons.items()}},
        "prefill": {"opening": " ".join(OPENING), "language_before": lang_before,
                    "model_before": before_share, "model_before_se": float(np.sqrt(before_share * (1 - before_share)
                                                                                   / st.n)),
                    "model_after": after_open, "after_valid": by_reason(after).get("valid", 0.0)},
    }


def error_summary(results: dict) -> str:
    """The error-propagation finding in two sentences, from the numbers."""
    m, u = results["masked"], results["uniform"]
    worst = max((r for r in m["by_reason"] if r != "valid"), key=lambda r: m["by_reason"][r])
    return (f"From “{results['settings']['article']}” the masked model writes a valid sentence with probability "
            f"{m['valid']:.1%} (exact): it cannot take back either unit, so the most likely outcome is "
            f"“{m['top'][0][0]}”, and {m['by_reason'][worst]:.0%} of the runs end in {REASON_WORDS[worst]}. "
            f"A uniform model given the same two units at t = {results['t_written']:.2f} ends valid in "
            f"{u['valid']:.1%} ± {u['valid_se']:.1%} of the runs: it changes the units it does not believe "
            f"({1 - u['kept_both']:.0%} of the runs change at least one of the written units).")


def prefill_summary(results: dict) -> str:
    """The prefill finding in one or two sentences, from the numbers."""
    p = results["prefill"]
    return (f"By itself the masked model opens a sentence with “{p['opening']}” in {p['model_before']:.1%} ± "
            f"{p['model_before_se']:.1%} of its runs (the language: {p['language_before']:.1%}). With "
            f"“{results['settings']['prefill']}” prefilled in the middle, it opens with “{p['opening']}” with "
            f"probability {p['model_after']:.1%} (exact): what is written mid-flight decides what comes before it.")
