"""Classifier-free guidance on the toy language, exactly (docs/maths.md section 12).

Unsupervised CFG for masked DLMs (LLaDA, Nie et al. 2024): the condition c is a prompt (units pinned at some
positions), the unconditional prediction is the same canvas with the prompt masked, and each step samples
from the guided logits u + (w + 1)(c − u), i.e. p_w(x^i) ∝ p(x^i | c, seen)^(1+w) p(x^i | seen)^(−w). No
second model and no retraining. On the toy language three distributions of the rest r (the free positions)
are known exactly:

- the target CFG is meant to sharpen towards, the tilted conditional
      p_w(r | c) ∝ p(r | c)^(1 + w) p(r)^(−w),   p(r) = sum_c' p(c', r)  (the rest with the prompt unknown);
- the guided sampler's own distribution, random order, one unit per step, temperature 1: the dynamic
  programme of infill.model_infill_exact run on the guided conditionals, for the trained model and for the
  language itself (a perfect model);
- samples of the guided sampler, with standard errors.

The per-step tilt is not the sequence tilt: each step renormalises over one position, so the guided sampler
does not sample p_w(r | c) exactly, even with a perfect model, except at w = 0. The study measures how far
it is (total variation), so the page can say so with the number.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from dlm_core.studies.infill import check_pins, model_infill_exact
from dlm_core.toy_language import ID, MASK_ID, L, decode, support, true_conditionals

WEIGHTS = (0.0, 1.0, 2.0, 4.0)  # w: off, LLaDA-like, strong, very strong
PROMPT = {0: ID["you"]}  # "you ...": the subject that allows every predicate, singular and plural


@dataclass(frozen=True)
class GuidanceSettings:
    """One guidance study; each field says why it has its value."""

    prompt: tuple[tuple[int, int], ...] = tuple(PROMPT.items())  # (position, unit): the condition c
    weights: tuple[float, ...] = WEIGHTS
    n: int = 4000  # sampled completions per w: a share's standard error is at most 0.008
    seed: int = 0


def tilted_target(prompt: dict[int, int], w: float) -> dict[tuple[int, ...], float]:
    """p_w(r | c) ∝ p(r | c)^(1+w) p(r)^(−w) over the sentences that carry the prompt (exact marginals)."""
    prompt = check_pins(prompt)
    free = [i for i in range(L) if i not in prompt]
    marginal: dict[tuple, Fraction] = {}
    for x, p in support().items():  # p(r): the rest's marginal, the prompt positions unknown
        key = tuple(x[i] for i in free)
        marginal[key] = marginal.get(key, Fraction(0)) + p
    kept = {x: p for x, p in support().items() if all(x[i] == u for i, u in prompt.items())}
    z = sum(kept.values())
    weight = {x: float(p / z) ** (1 + w) * float(marginal[tuple(x[i] for i in free)]) ** (-w)
              for x, p in kept.items()}
    total = sum(weight.values())
    return {x: v / total for x, v in weight.items()}


def language_log_probs(z: np.ndarray) -> np.ndarray:
    """log p(x^i = v | the units z reveals) under the language itself (a perfect denoiser), (B, L, V)."""
    with np.errstate(divide="ignore"):
        return np.log(true_conditionals(z))


def guided(log_probs, prompt: dict[int, int], w: float):
    """The guided conditionals of unsupervised CFG as a log-probability function: for a canvas z (the prompt
    written in), log softmax(u + (w + 1)(c − u)) with c = log p(. | z) and u = log p(. | z, prompt masked).
    A unit impossible given the prompt stays impossible (c = −inf gives −inf whatever u is)."""
    where = list(check_pins(prompt))

    def fn(z: np.ndarray) -> np.ndarray:
        z = np.asarray(z, dtype=np.int64)
        c = log_probs(z)
        unconditional = z.copy()
        unconditional[:, where] = MASK_ID
        u = log_probs(unconditional)
        with np.errstate(invalid="ignore"):
            g = np.where(np.isneginf(c), -np.inf, u + (w + 1.0) * (c - u))
        g = g - g.max(-1, keepdims=True)
        return g - np.log(np.exp(g).sum(-1, keepdims=True))

    return fn


def tv(p: list[float], q: list[float]) -> float:
    """Total variation between two distributions given over the same sentences, each with the mass it puts
    on everything else (not a sentence of the language) pooled: 1/2 (sum |p - q| + |p_rest - q_rest|)."""
    p, q = np.asarray(p, dtype=float), np.asarray(q, dtype=float)
    return 0.5 * float(np.abs(p - q).sum() + abs((1.0 - p.sum()) - (1.0 - q.sum())))


def study(model, settings: GuidanceSettings | None = None, progress=None) -> dict:
    """For each w: the exact target, the guided sampler's exact distribution (the model's and a perfect
    model's), the sampled shares of the model's guided sampler, and the distances between them."""
    from dlm_core.studies.infill import sample_infill
    from dlm_core.variants.masked import log_probs_fn

    st = settings or GuidanceSettings()
    prompt = dict(st.prompt)
    model_lp = log_probs_fn(model)
    rows, by_w = sorted(tilted_target(prompt, 0.0)), {}
    for j, w in enumerate(st.weights):
        target = tilted_target(prompt, w)
        perfect = model_infill_exact(guided(language_log_probs, prompt, w), prompt)
        exact = model_infill_exact(guided(model_lp, prompt, w), prompt)
        x = sample_infill("masked", model, prompt, st.n, st.seed + j, strategy="random", cfg_scale=w)
        counts = {}
        for s in map(tuple, x.tolist()):
            counts[s] = counts.get(s, 0) + 1
        share = {s: c / st.n for s, c in counts.items()}
        target_p = [target[r] for r in rows]
        perfect_p = [perfect.probs[r] for r in rows]
        model_p = [exact.probs[r] for r in rows]
        sampled = [share.get(r, 0.0) for r in rows]
        by_w[f"{w:g}"] = {
            "w": w,
            "target": target_p,
            "perfect_sampler": perfect_p,
            "model_sampler": model_p,
            "sampled": sampled,
            "sampled_se": [float(np.sqrt(s * (1 - s) / st.n)) for s in sampled],
            "valid": {"perfect_sampler": perfect.valid_mass, "model_sampler": exact.valid_mass,
                      "sampled": sum(sampled)},
            "tv_perfect_sampler_target": tv(target_p, perfect_p),
            "tv_model_sampler_target": tv(target_p, model_p),
            "tv_sampled_model_sampler": tv(sampled, model_p),
        }
        if progress is not None:
            progress((j + 1) / len(st.weights), f"guidance w = {w:g}")
    return {"settings": asdict(st), "prompt": decode([prompt.get(i, MASK_ID) for i in range(L)]),
            "completions": [decode(r) for r in rows], "by_w": by_w}


def summary(results: dict) -> str:
    """Two sentences computed from the study: how far a perfect model's guided sampler is from the tilted
    target at the largest w, and what the largest w does to the most condition-specific completion."""
    ws = list(results["by_w"].values())
    strong = ws[-1]
    i = int(np.argmax(np.array(strong["target"]) - np.array(ws[0]["target"])))
    return (f"With the prompt “{results['prompt']}” and w = {strong['w']:g}, the tilted target puts "
            f"{strong['target'][i]:.1%} on “{results['completions'][i]}” (w = 0: {ws[0]['target'][i]:.1%}); the "
            f"guided sampler gives it {strong['perfect_sampler'][i]:.1%} with a perfect model and "
            f"{strong['model_sampler'][i]:.1%} with the trained one. Guidance tilts each step, not the whole "
            f"sentence, so even a perfect model's guided sampler is {strong['tv_perfect_sampler_target']:.3f} "
            f"away from the target in total variation at w = {strong['w']:g} (exactly 0 at w = 0).")
