"""Exact evaluation of toy models against the toy language (bits per unit)."""

from __future__ import annotations

import math

import numpy as np

from . import masked
from .toy_language import L, entropy_bits, support_arrays, support_size

VALIDITY_STEPS = (1, 2, 3, 6, 12, 24, 100)
BITS = L * math.log(2)  # nats per sentence -> bits per unit


def kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """Forward KL(p || q) in bits per sentence over the support (inf if q misses a sentence)."""
    with np.errstate(divide="ignore"):
        return float(np.sum(p * (np.log2(p) - np.log2(q))))


def evaluate_masked(denoiser, schedule: str = "linear", steps=VALIDITY_STEPS) -> dict:
    """Exact NELBO, exact random-order NLL and exact ancestral-sampler validity / KL."""
    sa = support_arrays()
    lp = masked.log_probs_fn(denoiser)
    nelbo = float(np.sum(sa.p * masked.exact_nelbo(sa.x, lp))) / BITS
    nll_x = masked.exact_nll(sa.x, lp)
    nll = float(np.sum(sa.p * nll_x)) / BITS
    validity, kl = {}, {}
    for T in steps:
        pT = masked.ancestral_exact_probs(sa.x, lp, T, schedule)
        validity[str(T)] = float(pT.sum())
        kl[str(T)] = kl_bits(sa.p, pT)
    return {
        "variant": "masked",
        "entropy_bits_per_unit": entropy_bits() / L,
        "entropy_bits": entropy_bits(),
        "support_size": support_size(),
        "nelbo_bits_per_unit": nelbo,
        "nll_bits_per_unit": nll,
        "nelbo_over_entropy": nelbo / (entropy_bits() / L),
        "random_order_validity": float(np.exp(-nll_x).sum()),
        "validity": validity,
        "validity_schedule": schedule,
        "forward_kl_bits": kl,
        "exact": True,
    }
