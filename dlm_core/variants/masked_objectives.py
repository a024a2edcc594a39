"""The training lab's choices of the masked loss, and the exact bound each trained model is measured with
(docs/maths.md section 10). The shipped recipe (masked.loss: exactly k masks, weight L/k, no time input, every
position maskable) is untouched; `objective` builds the loss of a recipe that changes one of:

- the weighting: "k" (exactly k ~ U{1..m} of the m maskable positions masked, weight m/k: RADD / LLaDA's
  likelihood form); "elbo" (t drawn, each maskable unit masked with probability 1 - alpha_t, weight
  w(t) = -alpha'_t / (1 - alpha_t): MDLM / MD4's continuous-time NELBO, so the schedule matters); "unweighted"
  (the same draws, weight 1: the cross-entropy on the masked units, which is NOT a bound: it lies below the
  NELBO); "bert" (each unit masked with probability 0.15, the cross-entropy averaged over them: not a bound
  either, and the model never sees a mostly masked sentence);
- the time input: the denoiser also gets the noise level u = 1 - alpha_t (the share of masked units, which
  means the same under every schedule; k / m for "k", 0.15 for "bert"); the samplers feed it the share of
  [MASK] on the canvas (masked.ToyMaskedLM);
- the task: "instruction" masks only the response (the verb and what follows), never the subject (the prompt):
  it learns p(response | subject) (LLaDA's supervised fine-tuning), and its bound is the conditional NELBO.

`exact_bound` is the exact NELBO of any trained model, in bits per unit: the 2^6 revealed sets of every sentence
(masked.revealed_table); with a time input, the same sum with the integral over u done by Gauss-Legendre
quadrature (exact for a model that ignores its time input). `floor_bits` is what it is measured against:
H, or H(response | subject) = H - H(subject) for the instruction task (the subject is a function of the sentence).
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from dlm_core import schedules
from dlm_core.toy_language import ID, MASK_ID, L, entropy_bits, support, support_arrays
from dlm_core.variants.evaluate import BITS

EPS_T = 1e-3  # t is drawn in [EPS_T, 1]: the 1/t weight stays finite
BERT_RATE = 0.15
QUAD_NODES = 6  # Gauss-Legendre nodes over u in [0, 1] (exact for a polynomial of degree 11; the weights' is <= 5)
ALL = (1 << L) - 1
PLAIN = {"weighting": "k", "time_input": False, "task": "pretrain"}  # the shipped recipe's loss


def is_plain(cfg) -> bool:
    """Whether a recipe's loss is the shipped one (masked.loss)."""
    return all(getattr(cfg, k, v) == v for k, v in PLAIN.items())


# ------------------------------------------------------------------------------ what is masked


def prompt_lengths(x: torch.Tensor) -> torch.Tensor:
    """The subject's length of each sentence (B,): the units before its verb (is / are); L without a verb."""
    verb = (x == ID["is"]) | (x == ID["are"])
    return torch.where(verb.any(-1), verb.long().argmax(-1), torch.full_like(x[:, 0], L))


def maskable(x: torch.Tensor, task: str = "pretrain") -> torch.Tensor:
    """(B, L) bool: the positions the forward process may mask: all of them, or the response only."""
    if task == "pretrain":
        return torch.ones_like(x, dtype=torch.bool)
    return torch.arange(x.shape[1])[None] >= prompt_lengths(x)[:, None]


def draw_masks(x0: torch.Tensor, weighting: str, schedule: str = "linear", task: str = "pretrain",
               generator=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, weight, u): the noisy batch, the weight of each sentence's masked cross-entropies, and its noise level
    u (the time input). Low-discrepancy draws of k or t across the batch (schedules.sample_times)."""
    free = maskable(x0, task)
    m = free.sum(-1)
    u0 = schedules.sample_times(x0.shape[0], generator).double()
    scores = torch.rand(x0.shape, generator=generator).masked_fill(~free, 2.0)
    if weighting == "k":  # k = ceil(m u), every k in 1..m an equal share; a uniform k-subset of the free positions
        k = (u0 * m).long().clamp(max=m - 1) + 1
        masked = scores.argsort(-1).argsort(-1) < k[:, None]
        weight, u = m / k, k / m
    elif weighting in ("elbo", "unweighted"):
        sched = schedules.get(schedule)
        t = EPS_T + (1 - EPS_T) * u0
        u = 1.0 - sched.alpha(t)  # the probability that a unit is masked at t
        masked = scores < u[:, None]
        weight = sched.loss_weight(t) if weighting == "elbo" else torch.ones_like(t)  # -alpha'_t / (1 - alpha_t)
    elif weighting == "bert":
        masked = scores < BERT_RATE
        weight, u = 1.0 / masked.sum(-1).clamp_min(1), torch.full_like(u0, BERT_RATE)
    else:
        raise ValueError(f"unknown loss weighting {weighting!r}")
    return torch.where(masked, torch.full_like(x0, MASK_ID), x0), weight.double(), u.double()


def denoise(denoiser, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Logits of a denoiser, with the noise level u when it takes a time input."""
    return denoiser(z, u.float()) if denoiser.cfg.time_input else denoiser(z)


def objective(cfg, language_conditionals):
    """The loss `fn(model, x0, generator)` of a lab recipe (nats per sentence): the weighted cross-entropy on the
    masked units, against the language's conditional (exact targets: `language_conditionals(z, x0)`, masked.py's)
    or the drawn sentence's unit."""

    def fn(denoiser, x0, generator=None):
        z, weight, u = draw_masks(x0, cfg.weighting, cfg.schedule, cfg.task, generator)
        logp = F.log_softmax(denoise(denoiser, z, u), -1)
        if cfg.targets == "exact":
            ce = -(language_conditionals(z, x0) * logp).sum(-1)
        else:
            ce = -logp.gather(-1, x0[..., None])[..., 0]
        return (weight.to(ce.dtype) * (ce * (z == MASK_ID)).sum(-1)).mean()

    return fn


# ------------------------------------------------------------------------------- the exact bound


def _log_probs(denoiser, u: float | None):
    @torch.no_grad()
    def fn(z: np.ndarray) -> np.ndarray:
        out = []
        for chunk in torch.as_tensor(z, dtype=torch.long).split(4096):
            level = None if u is None else torch.full((len(chunk),), float(u))
            logits = denoiser(chunk, level) if level is not None else denoiser(chunk)
            out.append(F.log_softmax(logits.double(), -1).numpy())
        return np.concatenate(out)
    return fn


def exact_nelbo(denoiser, revealed_table, task: str = "pretrain", nodes: int = QUAD_NODES) -> np.ndarray:
    """NELBO(x) in nats for every sentence of the language (or NELBO(response | subject) for the instruction task):
    sum over the non-empty masked sets M of the maskable positions R (m of them) of
    int_0^1 u^(|M|-1) (1 - u)^(m - |M|) sum_{i in M} -log p(x^i | x outside M, u) du,
    which is 1 / (|M| C(m, |M|)) times the cross-entropies for a model without a time input (done exactly), and
    Gauss-Legendre quadrature over u with one. `revealed_table(x, log_probs)`: masked.py's table of the
    log-probabilities at every revealed set."""
    x = support_arrays().x
    free = maskable(torch.as_tensor(x), task).numpy()
    bits = (1 << np.arange(L))
    free_mask = (free * bits).sum(-1)  # R as a bitmask per sentence
    m = free.sum(-1)
    if denoiser.cfg.time_input:
        g, w = np.polynomial.legendre.leggauss(nodes)
        us, ws = (g + 1) / 2, w / 2
        tables = [(revealed_table(x, _log_probs(denoiser, u)), u, wu) for u, wu in zip(us, ws)]
    else:
        tables = [(revealed_table(x, _log_probs(denoiser, None)), None, None)]
    total = np.zeros(len(x))
    for mask in range(1, ALL + 1):
        inside = (mask & ~free_mask) == 0  # M within R
        size = bin(mask).count("1")
        idx = [i for i in range(L) if mask >> i & 1]
        for lp, u, wu in tables:
            ce = -lp[:, ALL ^ mask, idx].sum(-1)
            if u is None:
                weight = np.array([1.0 / (size * math.comb(int(k), size)) if size <= k else 0.0 for k in m])
            else:
                weight = wu * u ** (size - 1) * (1 - u) ** np.clip(m - size, 0, None)
            total += np.where(inside, weight * ce, 0.0)
    return total


def exact_bound(denoiser, revealed_table, task: str = "pretrain", nodes: int = QUAD_NODES) -> float:
    """The exact NELBO over the language, bits per unit (conditional on the subject for the instruction task)."""
    return float(np.sum(support_arrays().p * exact_nelbo(denoiser, revealed_table, task, nodes))) / BITS


@lru_cache(maxsize=1)
def subject_entropy_bits() -> float:
    """H(subject) in bits: the exact distribution of the units before the verb."""
    marg: dict[tuple, Fraction] = {}
    for x, p in support().items():
        n = int(prompt_lengths(torch.tensor([x]))[0])
        marg[x[:n]] = marg.get(x[:n], Fraction(0)) + p
    return math.fsum(float(p) * (math.log2(p.denominator) - math.log2(p.numerator)) for p in marg.values())


def floor_bits(task: str = "pretrain") -> float:
    """The floor of the task's bound, bits per unit: H, or H(response | subject) = H - H(subject)."""
    h = entropy_bits() if task == "pretrain" else entropy_bits() - subject_entropy_bits()
    return h / L
