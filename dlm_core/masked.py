"""Masked (absorbing) diffusion: MDLM (Sahoo et al. 2024), MD4 (Shi et al. 2024),
RADD (Ou et al. 2024). Maths: ../shared/maths.md section 1.

Forward: each unit stays with probability alpha_t, else becomes [MASK].
SUBS: the denoiser never predicts [MASK] (softmax over the 13 real units) and
unmasked positions are copied through. No time input (RADD).

Besides the training loss, this module computes three *exact* quantities for the
6-unit toy language, by enumerating all 2^6 revealed sets of each sentence:
the continuous-time NELBO, the likelihood of the random-order sampler, and the
output distribution of the T-step ancestral sampler.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from . import schedules
from .denoiser import Denoiser, DenoiserConfig
from .toy_language import MASK, MASK_ID, UNITS, L, V

EPS_T = 1e-3
ALL = (1 << L) - 1  # bitmask of all six positions


def popcount(m: int) -> int:
    return bin(m).count("1")


# ------------------------------------------------------------------- forward


def corrupt(x0: torch.Tensor, t: torch.Tensor, schedule: str = "linear", generator=None) -> torch.Tensor:
    """z_t: each position independently stays x0 with probability alpha_t, else [MASK]."""
    a = torch.as_tensor(schedules.alpha(t.detach().cpu().numpy(), schedule), dtype=torch.float32)
    a = a.reshape(-1, 1).to(x0.device)
    keep = torch.rand(x0.shape, generator=generator, device=x0.device) < a
    return torch.where(keep, x0, torch.full_like(x0, MASK_ID))


def low_discrepancy_times(batch: int, generator=None, eps: float = EPS_T) -> torch.Tensor:
    """t_b = eps + (1 - eps) u_b with u_b = (u_0 + b / B) mod 1."""
    return eps + (1.0 - eps) * schedules.low_discrepancy_u(batch, generator)


def loss(denoiser, x0: torch.Tensor, schedule: str = "linear", generator=None) -> torch.Tensor:
    """Monte-Carlo continuous-time NELBO, nats per sentence (the training loss).

    NELBO(x) = E_t w(t) E_{z_t} sum_{i masked} -log p_theta(x^i | z_t),  w(t) = -alpha'_t / (1 - alpha_t).
    """
    t = low_discrepancy_times(x0.shape[0], generator)
    z = corrupt(x0, t, schedule, generator)
    logits = denoiser(z)  # (B, L, V): SUBS, [MASK] is not an output
    ce = F.cross_entropy(logits.transpose(1, 2), x0, reduction="none")  # (B, L)
    w = torch.as_tensor(schedules.nelbo_weight(t.numpy(), schedule), dtype=torch.float32)
    return (w * (ce * (z == MASK_ID)).sum(-1)).mean()


# ------------------------------------------------- the variant's small surface


def build_model(cfg) -> Denoiser:
    """The denoiser of a TrainConfig: ids (13 units + [MASK]) in, 13 unit logits out, no t."""
    return Denoiser(
        DenoiserConfig(
            n_in=V + 1, n_out=V, d_model=cfg.d_model, n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_ff=cfg.d_ff
        )
    )


def evaluate(model, **kwargs) -> dict:
    from .evaluate import evaluate_masked

    return evaluate_masked(model, **kwargs)


def sample_ids(model, n: int, steps: int, seed: int = 0, **options) -> torch.Tensor:
    """n unconditional samples (n, L) from the sampler with the given options."""
    from .sampler import SamplerConfig, sample

    cfg = SamplerConfig(steps=steps, seed=seed, **options)
    return sample(ToyMaskedLM(model), cfg, torch.full((n, L), MASK_ID, dtype=torch.long))


# ------------------------------------------------------------- model adapter


def log_probs_fn(denoiser) -> Callable[[np.ndarray], np.ndarray]:
    """z (B, L) ids -> log p_theta(. | z) (B, L, V) float64, evaluated without gradients."""

    @torch.no_grad()
    def fn(z: np.ndarray) -> np.ndarray:
        out = []
        zt = torch.as_tensor(z, dtype=torch.long)
        for chunk in zt.split(4096):
            out.append(F.log_softmax(denoiser(chunk).double(), -1).numpy())
        return np.concatenate(out)

    return fn


class ToyMaskedLM:
    """A toy denoiser behind the interface the sampler uses for every masked model:
    logits over the whole vocabulary (13 units + [MASK]) for a batch of sequences."""

    takes_time = False

    def __init__(self, denoiser, name: str = "toy masked"):
        self.denoiser = denoiser.eval()
        self.name = name
        self.mask_id = MASK_ID
        self.vocab = list(UNITS) + [MASK]
        self.device = torch.device("cpu")

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.denoiser(x)
        masked_col = torch.full(logits.shape[:-1] + (1,), -math.inf, dtype=logits.dtype)
        return torch.cat([logits, masked_col], -1)

    def decode(self, ids) -> str:
        return " ".join(self.vocab[int(i)] for i in ids)


# -------------------------------------------------------- exact evaluations


def revealed_table(x: np.ndarray, log_probs: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """lp[n, R, i] = log p(x_n^i | x_n on the revealed set R, [MASK] elsewhere), for all 64 R.

    Entries with i in R are not used. One batch of N * 64 sequences.
    """
    x = np.asarray(x, dtype=np.int64)
    n = x.shape[0]
    bits = (np.arange(ALL + 1)[:, None] >> np.arange(L)[None, :]) & 1  # (64, L): i in R
    z = np.where(bits[None, :, :] == 1, x[:, None, :], MASK_ID).reshape(-1, L)
    lp = log_probs(z).reshape(n, ALL + 1, L, -1)[..., :V]
    return np.take_along_axis(lp, np.broadcast_to(x[:, None, :, None], (n, ALL + 1, L, 1)), -1)[..., 0]


def exact_nelbo(x: np.ndarray, log_probs) -> np.ndarray:
    """NELBO(x) in nats, exactly (no Monte-Carlo error):

    NELBO(x) = sum_{non-empty M} 1 / (|M| C(L, |M|)) sum_{i in M} -log p(x^i | x outside M).
    """
    lp = revealed_table(x, log_probs)
    total = np.zeros(len(x))
    for m in range(1, ALL + 1):  # m: the masked set M
        k = popcount(m)
        weight = 1.0 / (k * math.comb(L, k))
        r = ALL ^ m
        idx = [i for i in range(L) if m >> i & 1]
        total += weight * -lp[:, r, idx].sum(-1)
    return total


def exact_nll(x: np.ndarray, log_probs) -> np.ndarray:
    """-log p_mix(x) in nats, where p_mix is what the random-order one-unit-per-step sampler samples.

    f(empty) = 1, f(S) = sum_{i in S} f(S \\ i) p(x^i | x_{S \\ i}) / (L - |S| + 1), p_mix(x) = f(all).
    """
    p = np.exp(revealed_table(x, log_probs))
    f = np.zeros((len(x), ALL + 1))
    f[:, 0] = 1.0
    for s in sorted(range(1, ALL + 1), key=popcount):
        k = popcount(s)
        for i in range(L):
            if s >> i & 1:
                prev = s ^ (1 << i)
                f[:, s] += f[:, prev] * p[:, prev, i] / (L - k + 1)
    with np.errstate(divide="ignore"):
        return -np.log(f[:, ALL])


def ancestral_exact_probs(x: np.ndarray, log_probs, steps: int, schedule: str = "linear") -> np.ndarray:
    """p_T(x): the exact probability that the T-step ancestral sampler outputs x.

    Dynamic programme over revealed sets: at step k (t -> s) each still-masked position is
    revealed independently with probability q_k = (alpha_s - alpha_t) / (1 - alpha_t)
    (1 / (T - k) for linear), its unit drawn from p(. | z_t).
    """
    p = np.exp(revealed_table(x, log_probs))  # (N, 64, L)
    n = len(x)
    # W[R, R', n] = prod_{i in R' \ R} p(x^i | x_R) for R subset of R'
    W = np.zeros((ALL + 1, ALL + 1, n))
    newcount = np.zeros((ALL + 1, ALL + 1), dtype=np.int64)
    subset = np.zeros((ALL + 1, ALL + 1), dtype=bool)
    for r in range(ALL + 1):
        for r2 in range(ALL + 1):
            if r & r2 == r:
                subset[r, r2] = True
                new = r2 ^ r
                newcount[r, r2] = popcount(new)
                w = np.ones(n)
                for i in range(L):
                    if new >> i & 1:
                        w = w * p[:, r, i]
                W[r, r2] = w
    size2 = np.array([popcount(r) for r in range(ALL + 1)])
    g = np.zeros((ALL + 1, n))
    g[0] = 1.0
    grid = schedules.time_grid(steps)
    for t, s in zip(grid[:-1], grid[1:]):
        a_t, a_s = schedules.alpha(t, schedule), schedules.alpha(s, schedule)
        q = (a_s - a_t) / (1.0 - a_t)
        stay = (L - size2)[None, :]  # positions still masked after the step
        coef = np.where(subset, q**newcount * (1.0 - q) ** stay, 0.0)
        g = np.einsum("rn,rs,rsn->sn", g, coef, W)
    return g[ALL]



def trajectory(model, steps: int, seed: int = 0, pinned: dict[int, int] | None = None, **options):
    """One sequence through the stepwise sampler, one record per step (for the pages).

    `pinned` maps positions to units fixed by the user before sampling starts.
    """
    from .sampler import SamplerConfig, generate_trajectory

    x = torch.full((1, L), MASK_ID, dtype=torch.long)
    for i, u in (pinned or {}).items():
        x[0, i] = u
    cfg = SamplerConfig(steps=steps, seed=seed, **options)
    traj = generate_trajectory(ToyMaskedLM(model), cfg, x, variant="masked")
    traj.settings.update(variant="masked")
    return traj
