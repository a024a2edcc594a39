"""Infilling on the toy language, checked against the truth (docs/maths.md section 7).

A diffusion LM can fill in any positions given the others (the *pins*). On the toy language the exact
answer is known: the conditional distribution of the 216 sentences given the pinned units. This module
computes

- the language's exact conditional p(x | x_P = pins) (`language_conditional`);
- the masked model's *exact* infill distribution under the random-order, one-unit-per-step sampler
  (`model_infill_exact`): the dynamic programme of `masked.exact_nll`, restricted to the free positions;
- n completions drawn in one batch through any variant's sampler with the pins held (`sample_infill`);
- the distances between the sampled completions and the language's conditional, with standard errors
  (`sampled_distances`), and the same distances for the model's exact infill (`exact_distances`);
- everything for one setting at once (`run_infill` -> `InfillResult`). The CLI
  (`python -m dlm_core infill`) and the Infill page both call it, so a number on the page is the CLI's.

Positions are 0-based in this module (pins: {position: unit id}). The CLI, the page and every message a
person reads count positions from 1, as the rest of the interface does.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from dlm_core.sampling.sampler import normalise_pins
from dlm_core.toy_language import UNITS, L, V, decode, support
from dlm_core.variants.masked import popcount, revealed_table

BOOTSTRAP = 400  # resamples of the n completions for the standard errors of TV and KL


class ImpossiblePins(ValueError):
    """No sentence of the toy language has the pinned units at the pinned positions."""


# ----------------------------------------------------------------------------------- pins


def check_pins(pins) -> dict[int, int]:
    """Pins as {position: unit id} (0-based), from a dict or (position, id) pairs; a clear error for a
    position outside the sentence, an id that is not a unit, or a position pinned twice."""
    pairs = list(pins.items()) if isinstance(pins, dict) else [tuple(p) for p in pins]
    for i, u in pairs:
        if not 0 <= int(i) < L:
            raise ValueError(f"position {int(i) + 1} is out of range: a sentence has positions 1 to {L}")
        if not 0 <= int(u) < V:
            raise ValueError(f"unit id {u} is not a unit of the toy language (ids 0 to {V - 1})")
    return dict(normalise_pins(pairs))


def describe_pins(pins) -> str:
    """"'our' at position 2 and 'is' at position 4" (positions counted from 1)."""
    parts = [f"'{UNITS[u]}' at position {i + 1}" for i, u in sorted(check_pins(pins).items())]
    if not parts:
        return "no pinned position"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def unit_id(name: str) -> int:
    """A unit by its name ('our', '[PAD]'; any case); a clear error listing the units otherwise."""
    by_lower = {u.lower(): i for i, u in enumerate(UNITS)}
    key = str(name).strip().lower()
    if key not in by_lower:
        raise ValueError(f"unknown unit {str(name)[:40]!r}; the units are: {' '.join(UNITS)}")
    return by_lower[key]


def parse_pin(text: str) -> tuple[int, int]:
    """'2=our' or '2:our' (position counted from 1, unit by name) -> (1, 3), 0-based."""
    sep = "=" if "=" in text else ":"
    pos, _, unit = str(text).partition(sep)
    if not _ or not pos.strip() or not unit.strip():
        raise ValueError(f"a pin is POSITION=UNIT, e.g. 2=our (got {str(text)[:40]!r})")
    try:
        i = int(pos)
    except ValueError:
        raise ValueError(f"a pin's position is a number from 1 to {L} (got {pos.strip()[:20]!r})") from None
    if not 1 <= i <= L:
        raise ValueError(f"position {i} is out of range: a sentence has positions 1 to {L}")
    return i - 1, unit_id(unit)


def parse_pins(items) -> dict[int, int]:
    """Pins from the page's URL text '2:our,4:is' or from a list of CLI pins ['2=our', '4=is']."""
    if isinstance(items, str):
        items = [p for p in items.split(",") if p.strip()]
    pairs = [parse_pin(p) for p in items]
    seen = Counter(i for i, _ in pairs)
    twice = sorted(i + 1 for i, c in seen.items() if c > 1)
    if twice:
        raise ValueError(f"position {twice[0]} is pinned twice")
    return check_pins(pairs)


def pins_text(pins) -> str:
    """The page's URL form of pins: '2:our,4:is' (positions from 1; '' for none)."""
    return ",".join(f"{i + 1}:{UNITS[u]}" for i, u in sorted(check_pins(pins).items()))


def free_positions(pins) -> list[int]:
    return [i for i in range(L) if i not in check_pins(pins)]


# --------------------------------------------------------------- the language's truth


def language_conditional_exact(pins) -> dict[tuple[int, ...], Fraction]:
    """p(x | x_P = pins) = p(x) 1[x_P = pins] / sum_x' p(x') 1[x'_P = pins], as exact Fractions.

    Raises ImpossiblePins (a ValueError) when no sentence of the language has those units there."""
    pins = check_pins(pins)
    kept = {x: p for x, p in support().items() if all(x[i] == u for i, u in pins.items())}
    if not kept:
        raise ImpossiblePins(f"no sentence of the toy language has {describe_pins(pins)}")
    z = sum(kept.values())  # p(x_P = pins), the normaliser
    return {x: p / z for x, p in kept.items()}


def language_conditional(pins) -> dict[tuple[int, ...], float]:
    """The exact conditional distribution of full sentences given the pins (floats; see the exact one)."""
    return {x: float(p) for x, p in language_conditional_exact(pins).items()}


# ------------------------------------------------------------ the model's exact infill


@dataclass
class ExactInfill:
    """The masked model's exact infill distribution, evaluated at some completions."""

    probs: dict[tuple[int, ...], float]  # completion -> p_theta-mix(x_free | pins)
    valid_mass: float  # the sum of it over the sentences of the language that have the pins


def _log_probs(model) -> Callable[[np.ndarray], np.ndarray]:
    """A masked denoiser (torch module) or already a function z (B, L) -> log p(. | z) (B, L, V)."""
    if isinstance(model, torch.nn.Module):
        from dlm_core.variants.masked import log_probs_fn

        return log_probs_fn(model)
    return model


def model_infill_exact(model, pins, completions=None) -> ExactInfill:
    """The exact distribution of the random-order, one-unit-per-step masked sampler started from the canvas
    with the pins written in (docs/maths.md section 7):

        p(x_F | pins) = E_order prod_k p_theta(x^{sigma_k} | pins, x^{sigma_<k}),   F = the m free positions,

    by dynamic programming over the revealed subsets S of F (masked.exact_nll restricted to F):

        f(empty) = 1,   f(S) = sum_{i in S} f(S \\ i) p_theta(x^i | pins, x_{S \\ i}) / (m - |S| + 1),
        p(x_F | pins) = f(F).

    `model`: the masked denoiser, or a log-probability function (e.g. the oracle of the exact conditionals).
    `completions`: full 6-unit sentences that carry the pins (default: the language's sentences that do);
    they are all evaluated in one batch together with those sentences, whose total is `valid_mass`."""
    pins = check_pins(pins)
    valid = [x for x in support() if all(x[i] == u for i, u in pins.items())]
    asked = [tuple(int(u) for u in x) for x in (valid if completions is None else completions)]
    for x in asked:
        if len(x) != L or any(x[i] != u for i, u in pins.items()):
            raise ValueError(f"the completion {decode(x)!r} does not carry the pins ({describe_pins(pins)})")
    rows = list(dict.fromkeys(valid + asked))  # each completion once, the language's first
    if not rows:
        return ExactInfill(probs={}, valid_mass=0.0)
    p = np.exp(revealed_table(np.array(rows, dtype=np.int64), _log_probs(model)))  # p[n, R, i] = p(x^i | x_R)
    pinned = sum(1 << i for i in pins)
    free = [i for i in range(L) if i not in pins]
    m = len(free)
    subsets = sorted((sum(1 << free[j] for j in range(m) if s >> j & 1) for s in range(1 << m)), key=popcount)
    f = {0: np.ones(len(rows))}  # f(empty) = 1
    for s in subsets[1:]:
        k = popcount(s)
        # f(S) = sum_{i in S} f(S \ i) p(x^i | pins, x_{S \ i}) / (m - |S| + 1)
        f[s] = sum(f[s ^ (1 << i)] * p[:, pinned | (s ^ (1 << i)), i] for i in free if s >> i & 1) / (m - k + 1)
    p_mix = f[subsets[-1]]
    probs = dict(zip(rows, (float(v) for v in p_mix)))
    return ExactInfill(probs={x: probs[x] for x in asked}, valid_mass=float(sum(probs[x] for x in valid)))


# ------------------------------------------------------------------------- sampling


def infill_steps(variant, pins, steps: int | None = None) -> int:
    """The number of reverse steps T: as given, else one step per free position for a variant with an
    absorbing [MASK] (one unit per step), else the variant's own default."""
    if steps is not None:
        return int(steps)
    return max(1, len(free_positions(pins))) if variant.mask_id is not None else variant.default_steps


def sample_infill(variant, model, pins, n: int, seed: int, steps: int | None = None, **options) -> np.ndarray:
    """n completions (n, L) drawn in one batch (chunks of sampler.CHUNK) through the variant's sampler,
    which holds the pins (SamplerConfig.pins; what "held" means is the variant's, docs/maths.md section 6)."""
    from dlm_core.variants.registry import get

    variant = get(variant) if isinstance(variant, str) else variant
    pins = check_pins(pins)
    x = variant.sample(model, int(n), infill_steps(variant, pins, steps), int(seed),
                       pins=tuple(sorted(pins.items())), **options)
    return x.numpy().astype(np.int64)


# ------------------------------------------------------------------------ distances


@dataclass
class SampledDistances:
    """How far n sampled completions are from the language's conditional p (all from the same n)."""

    n: int
    valid_mass: float  # share of completions that are sentences of the language (with the pins)
    valid_mass_se: float  # binomial: sqrt(v (1 - v) / n)
    tv: float  # 1/2 sum_x |q_hat(x) - p(x)|, invalid completions counting in full
    tv_se: float  # bootstrap over the n completions
    kl_valid_bits: float | None  # KL(q_hat_valid || p), the valid completions renormalised (None: none valid)
    kl_valid_se: float | None  # bootstrap
    kl_valid_bias_bits: float | None  # what n_valid exact draws would score on average: (K - 1) / (2 n_valid ln 2)
    tv_floor: float  # what n exact draws would score on average: about 1/2 sum_x sqrt(2 p (1 - p) / (pi n))
    bootstrap: int = BOOTSTRAP  # resamples behind the standard errors


@dataclass
class ExactDistances:
    """The same distances for the model's exact infill distribution p_model (no sampling error)."""

    valid_mass: float  # sum over the language's sentences with the pins of p_model
    tv: float  # 1/2 (sum_x in support |p_model - p| + (1 - valid_mass))
    kl_valid_bits: float | None  # KL(p_model restricted to the support, renormalised || p)
    forward_kl_bits: float  # KL(p || p_model), inf if the model never writes some sentence


def _tv_kl(counts: np.ndarray, invalid: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TV and KL(q_valid || p) in bits for rows of counts over the K sentences (B, K) and invalid counts (B,)."""
    n = counts.sum(-1) + invalid
    q = counts / n[:, None]
    tv = 0.5 * (np.abs(q - p).sum(-1) + invalid / n)  # TV = 1/2 sum |q - p|; invalid mass counts in full
    n_valid = counts.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        qv = counts / n_valid[:, None]
        terms = np.where(counts > 0, qv * np.log2(qv / p), 0.0)  # KL(q_valid || p) = sum q log2(q / p)
    kl = np.where(n_valid > 0, terms.sum(-1), np.nan)
    return tv, kl


def sampled_distances(samples, conditional: dict[tuple, float], seed: int = 0,
                      bootstrap: int = BOOTSTRAP) -> SampledDistances:
    """TV, KL on the valid part, valid mass, with standard errors.

    The estimators follow docs/maths.md section 4: TV between the empirical distribution q_hat and p with
    invalid completions counting in full; KL(q_hat_valid || p), the plug-in KL of the valid completions
    renormalised (KL(p || q_hat) would be infinite as soon as one sentence is never drawn), biased upwards
    by about (K - 1) / (2 n_valid ln 2) bits, K = the number of sentences with the pins, reported beside it.
    Standard errors: binomial for the valid mass; for TV and KL a bootstrap over the n completions
    (`bootstrap` multinomial resamples of the counts, its own generator seeded with `seed`)."""
    rows = [tuple(int(u) for u in s) for s in samples]
    n = len(rows)
    if n == 0:
        raise ValueError("no samples")
    keys = sorted(conditional)
    p = np.array([conditional[x] for x in keys], dtype=np.float64)
    counts = Counter(rows)
    c = np.array([counts.get(x, 0) for x in keys], dtype=np.float64)
    n_invalid = n - c.sum()
    tv, kl = (float(v[0]) for v in _tv_kl(c[None], np.array([n_invalid]), p))
    # bootstrap: resampling the n completions with replacement = multinomial counts over (K sentences, invalid)
    rng = np.random.default_rng(int(seed))
    draws = rng.multinomial(n, np.append(c, n_invalid) / n, size=int(bootstrap)).astype(np.float64)
    tv_b, kl_b = _tv_kl(draws[:, :-1], draws[:, -1], p)
    v = c.sum() / n
    n_valid = int(c.sum())
    return SampledDistances(
        n=n, valid_mass=float(v), valid_mass_se=math.sqrt(max(v * (1 - v), 0.0) / n),
        tv=tv, tv_se=float(np.std(tv_b, ddof=1)),
        kl_valid_bits=None if n_valid == 0 else kl,
        kl_valid_se=None if n_valid == 0 else float(np.nanstd(kl_b, ddof=1)),
        kl_valid_bias_bits=None if n_valid == 0 else (len(keys) - 1) / (2 * n_valid * math.log(2)),
        tv_floor=float(0.5 * np.sum(np.sqrt(2 * p * (1 - p) / (math.pi * n)))), bootstrap=int(bootstrap),
    )


def exact_distances(exact: ExactInfill, conditional: dict[tuple, float]) -> ExactDistances:
    """TV, KL on the valid part and the forward KL between the model's exact infill and the conditional."""
    keys = sorted(conditional)
    p = np.array([conditional[x] for x in keys], dtype=np.float64)
    q = np.array([exact.probs[x] for x in keys], dtype=np.float64)
    mass = float(q.sum())
    tv = 0.5 * (np.abs(q - p).sum() + max(1.0 - mass, 0.0))  # the model's mass off the support counts in full
    with np.errstate(divide="ignore", invalid="ignore"):
        qv = q / mass
        kl_valid = float(np.sum(np.where(qv > 0, qv * np.log2(qv / p), 0.0))) if mass > 0 else None
        forward = float(np.sum(p * (np.log2(p) - np.log2(q))))  # KL(p || p_model), as evaluate.kl_bits
    return ExactDistances(valid_mass=mass, tv=float(tv), kl_valid_bits=kl_valid, forward_kl_bits=forward)
