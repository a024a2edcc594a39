"""Masked (absorbing) diffusion: MDLM (Sahoo et al. 2024), MD4 (Shi et al. 2024),
RADD (Ou et al. 2024). Maths: docs/maths.md section 1.

Forward: each unit stays with probability alpha_t, else becomes [MASK].
SUBS: the denoiser never predicts [MASK] (softmax over the 13 real units) and
unmasked positions are copied through. No time input (RADD).

Besides the training loss, this module computes three *exact* quantities for the
6-unit toy language, by enumerating all 2^6 revealed sets of each sentence:
the continuous-time NELBO, the likelihood of the random-order sampler, and the
output distribution of the T-step ancestral sampler. `VARIANT` is its entry in the
registry (variants.py); the sampler is masked_sampler.MaskedSampler, shared with real models.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from dlm_core import schedules
from dlm_core.sampling.masked_sampler import ALL_STRATEGIES, BLOCKWISE, MaskedSampler, MaskedSamplerConfig
from dlm_core.sampling.options import option
from dlm_core.toy_language import MASK, MASK_ID, UNITS, L, V, support_arrays
from dlm_core.variants import masked_objectives
from dlm_core.variants.base import PageText, ToyVariant
from dlm_core.variants.denoiser import Denoiser, DenoiserConfig
from dlm_core.variants.evaluate import BITS, EvalSettings, kl_bits

EPS_T = 1e-3
ALL = (1 << L) - 1  # bitmask of all six positions


def popcount(m: int) -> int:
    return bin(m).count("1")


# ------------------------------------------------------------------- forward


def corrupt(x0: torch.Tensor, t: torch.Tensor, generator=None, schedule: str = "linear") -> torch.Tensor:
    """z_t: each position independently stays x0 with probability alpha_t, else [MASK]."""
    a = schedules.get(schedule).alpha(t.detach().cpu().float()).reshape(-1, 1).to(x0.device)
    keep = torch.rand(x0.shape, generator=generator, device=x0.device) < a
    return torch.where(keep, x0, torch.full_like(x0, MASK_ID))


def mask_exactly(x0: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
    """(z, k): each sentence gets k [MASK]s at uniformly random positions, k = ceil(L u) with the
    low-discrepancy u of `schedules.sample_times`, so every k in 1..L takes an equal share of the batch."""
    u = schedules.sample_times(x0.shape[0], generator)
    k = (u * L).long().clamp(max=L - 1) + 1
    rank = torch.rand(x0.shape, generator=generator).argsort(-1).argsort(-1)  # a random order of the positions
    return torch.where(rank < k[:, None], torch.full_like(x0, MASK_ID), x0), k


def language_conditionals(z: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
    """p(x^i = v | the units z reveals) under the toy language (B, L, V), float32: every sentence that
    agrees with z, weighted by p(x) (toy_language.true_conditionals, in torch). A row no sentence
    agrees with (an x0 outside the language) falls back to the one-hot of x0."""
    X, p, onehot = _language_tensors()
    agree = ((X[None] == z[:, None]) | (z == MASK_ID)[:, None]).all(-1)  # (B, N)
    w = agree * p[None]
    total = w.sum(-1, keepdim=True)
    cond = ((w / total.clamp_min(1e-300)) @ onehot).reshape(z.shape + (V,))
    return torch.where(total[..., None] > 0, cond, F.one_hot(x0, V).double()).float()


@lru_cache(maxsize=1)
def _language_tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The support as tensors: sentences (N, L), p (N,) float64, one-hots (N, L * V) float64."""
    sa = support_arrays()
    X = torch.as_tensor(sa.x)
    return X, torch.as_tensor(sa.p), F.one_hot(X, V).double().reshape(len(X), L * V)


def loss(denoiser, x0: torch.Tensor, schedule: str = "linear", generator=None, targets: str = "exact") -> torch.Tensor:
    """Monte-Carlo continuous-time NELBO, nats per sentence (the training loss): an unbiased estimate of
    the bound `exact_nelbo` computes, with its variance cut twice.

    1. The masks (RADD; LLaDA's likelihood): NELBO(x) = E_k E_M (L/k) sum_{i in M} -log p_theta(x^i | x outside M),
       k uniform on 1..L and M uniform among the sets of k positions: the weights 1 / (|M| C(L, |M|)) of
       `exact_nelbo`, for every schedule alpha_t (the continuous-time bound does not depend on it, so
       `schedule` is not used). k is stratified over the batch (`mask_exactly`).
    2. targets="exact" (Rao-Blackwell): the cross-entropy at a masked position is taken against
       p(x^i | x outside M), the language's own conditional, instead of the one unit the drawn sentence
       has there. That is the average of -log p_theta(x^i | z) over every sentence x that z could come
       from, weighted by p(x): the same expectation (so the same bound), without the noise of which
       sentence was drawn. targets="sampled": the drawn sentence's unit (the textbook estimator).
    """
    if targets not in ("exact", "sampled"):
        raise ValueError(f"targets must be 'exact' or 'sampled', not {targets!r}")
    z, k = mask_exactly(x0, generator)
    logp = F.log_softmax(denoiser(z), -1)  # (B, L, V): SUBS, [MASK] is not an output
    if targets == "exact":
        ce = -(language_conditionals(z, x0) * logp).sum(-1)  # (B, L)
    else:
        ce = -logp.gather(-1, x0[..., None])[..., 0]
    return ((L / k.to(ce.dtype)) * (ce * (z == MASK_ID)).sum(-1)).mean()


# ------------------------------------------------------------- model adapter


def log_probs_fn(denoiser) -> Callable[[np.ndarray], np.ndarray]:
    """z (B, L) ids -> log p_theta(. | z) (B, L, V) float64, evaluated without gradients (a denoiser with a time
    input gets what the samplers give it: the share of [MASK] in z, ToyMaskedLM)."""
    timed = bool(getattr(getattr(denoiser, "cfg", None), "time_input", False))

    @torch.no_grad()
    def fn(z: np.ndarray) -> np.ndarray:
        out = []
        zt = torch.as_tensor(z, dtype=torch.long)
        for chunk in zt.split(4096):
            logits = denoiser(chunk, (chunk == MASK_ID).float().mean(-1)) if timed else denoiser(chunk)
            out.append(F.log_softmax(logits.double(), -1).numpy())
        return np.concatenate(out)

    return fn


class ToyMaskedLM:
    """A toy denoiser behind the interface the sampler uses for every masked model:
    logits over the whole vocabulary (13 units + [MASK]) for a batch of sequences. A denoiser trained with a
    time input (the training lab) gets the noise level it was trained on: the share of [MASK] on the canvas."""

    def __init__(self, denoiser, name: str = "toy masked"):
        self.denoiser = denoiser.eval()
        self.takes_time = bool(getattr(getattr(denoiser, "cfg", None), "time_input", False))
        self.name = name
        self.mask_id = MASK_ID
        self.vocab = list(UNITS) + [MASK]
        self.vocab_size = V + 1  # ids the logits cover ([MASK] included, never predicted)
        self.device = torch.device("cpu")

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.denoiser(x, (x == MASK_ID).float().mean(-1)) if self.takes_time else self.denoiser(x)
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
    alpha = schedules.get(schedule).alpha
    grid = schedules.time_grid(steps)
    for t, s in zip(grid[:-1], grid[1:]):
        a_t, a_s = alpha(t), alpha(s)
        q = (a_s - a_t) / (1.0 - a_t)
        stay = (L - size2)[None, :]  # positions still masked after the step
        coef = np.where(subset, q**newcount * (1.0 - q) ** stay, 0.0)
        g = np.einsum("rn,rs,rsn->sn", g, coef, W)
    return g[ALL]


# ------------------------------------------------------------------ the variant


@dataclass
class ToyMaskedConfig(MaskedSamplerConfig):
    """The masked sampler's settings, with how the pages draw them for the 6-unit toy."""

    strategy: str = option(
        "low-confidence", label="Strategy", choices=ALL_STRATEGIES,
        help="ancestral: MDLM's reverse step; random, low-confidence, margin and entropy commit a fixed number "
             "of units per step, chosen at random or by the model's confidence (LLaDA / Dream); threshold commits "
             "every unit whose confidence reaches the threshold, at least one per step, so it takes as many steps "
             "(forward passes) as the sentence needs, at most T (Fast-dLLM).")
    temperature: float = option(1.0, label="Temperature", lo=0.0, hi=2.0, step=0.1,
                                help="0 = always the most likely unit")
    block_length: int | None = option(
        None, label="Block length (semi-autoregressive)", choices=tuple(b for b in range(1, L + 1) if L % b == 0),
        page_default=L, when=("strategy", BLOCKWISE),
        help="Blocks are filled left to right; a fixed count needs the steps to divide evenly among the blocks.")
    schedule: str = option("linear", label="Schedule α_t", choices=schedules.SCHEDULES,
                           when=("strategy", ("ancestral",)),
                           help="Used by the ancestral strategy's reveal probabilities.")
    remask_eta: float = option(
        0.0, label="ReMDM remasking η", lo=0.0, hi=0.5, step=0.05, url="eta", when=("strategy", ("ancestral",)),
        help="Ancestral only: a revealed unit is masked again with probability σ_t = min(η, (1 − α_s)/α_t) "
             "(Wang et al. 2025), so early mistakes can be corrected.")
    threshold: float = option(
        0.9, label="Confidence threshold", lo=0.05, hi=1.0, step=0.05, when=("strategy", ("threshold",)),
        help="Threshold only: each step commits every masked unit whose confidence (the probability of its drawn "
             "unit) is at least this, and always the most confident one; the last of the T steps commits what "
             "is left (Wu et al. 2025, Fast-dLLM).")
    cache: str = "off"  # the block cache needs a model that keeps keys and values (real BERT-style models): no control


def canvas(pinned: dict[int, int] | None = None, batch: int = 1) -> torch.Tensor:
    """(batch, L) all [MASK] but the positions pinned by the user (position -> unit)."""
    x = torch.full((batch, L), MASK_ID, dtype=torch.long)
    for i, u in (pinned or {}).items():
        x[:, i] = u
    return x


class MaskedVariant(ToyVariant):
    name = "masked"
    default_steps = 6
    config_class = ToyMaskedConfig
    sampler_class = MaskedSampler
    loss = staticmethod(loss)
    mask_id = MASK_ID
    vocab = (*UNITS, MASK)
    legend = ("mask", "committed_now", "committed_earlier", "remasked")
    forward_schedules = schedules.SCHEDULES
    train_defaults = {}  # training.TrainConfig's defaults are the masked ones
    exact_nelbo = True
    text = PageText(
        intro="A masked diffusion model starts from six [MASK] tokens and, step by step, commits units that never "
              "change again (the Wheel of Fortune).",
        reverse_how="Column *k* shows the sequence after *k* reverse steps. A masked position is revealed with "
                    "probability $\\frac{\\alpha_s-\\alpha_t}{1-\\alpha_t}$ (ancestral, MDLM) or, in LLaDA's "
                    "fixed-count sampler, the $k_j$ highest-scoring masked positions are committed at step $j$. "
                    "Once revealed, a unit never changes (absorbing state).",
        prediction="p_θ(x | z_t) at step {k}, before its update",
        forward_how="Each unit independently stays itself with probability $\\alpha_t$ and otherwise becomes "
                    "`[MASK]`: $q(z_t^i \\mid x^i) = \\alpha_t\\,\\delta_{x^i} + (1-\\alpha_t)\\,\\delta_{[MASK]}$ "
                    "(absorbing state; MDLM, MD4). Linear: $\\alpha_t = 1-t$; cosine: "
                    "$\\alpha_t = 1-\\cos(\\tfrac{\\pi}{2}(1-t))$.",
        forward_marginals="the mass on [MASK] grows as 1 − α_t.",
        notice="What to notice: a grey [MASK] turns orange when its unit is committed and stays blue from then on: "
               "once written, a unit never changes (unless ReMDM remasking hides it again, in reddish purple).",
        pin="in masked diffusion the unit is written once and never masked again, as a prompt is.",
    )

    def build_model(self, cfg) -> Denoiser:
        """Ids (13 units + [MASK]) in, 13 unit logits out, no t (unless the training lab asks for a time input)."""
        return Denoiser(DenoiserConfig(n_in=V + 1, n_out=V, d_model=cfg.d_model, n_layers=cfg.n_layers,
                                       n_heads=cfg.n_heads, d_ff=cfg.d_ff,
                                       time_input=bool(getattr(cfg, "time_input", False))))

    def objective(self, cfg):
        """The shipped loss, or the training lab's version of it (masked_objectives: weighting, time input, task)."""
        if masked_objectives.is_plain(cfg):
            return super().objective(cfg)
        return masked_objectives.objective(cfg, language_conditionals)

    def training_bound(self, model, cfg) -> float:
        """The exact NELBO; for a lab recipe, of what it trained for (conditional on the subject for instruction)."""
        if masked_objectives.is_plain(cfg):
            return super().training_bound(model, cfg)
        return masked_objectives.exact_bound(model, revealed_table, cfg.task)

    def corrupt(self, model, x0, t, generator=None, schedule: str = "linear"):
        return corrupt(x0, t, generator, schedule)

    def make_sampler(self, model, config, x_init=None, batch: int = 1) -> MaskedSampler:
        """The toy denoiser behind the masked sampler's model interface; x_init: a canvas (pinned units)."""
        x = canvas(batch=batch) if x_init is None else torch.as_tensor(x_init, dtype=torch.long)
        return MaskedSampler(ToyMaskedLM(model), config, x if x.dim() == 2 else x[None])

    def forget(self, model, state, positions, t, generator):
        """Re-masking: the positions become [MASK] again and the sampler commits them anew."""
        state = state.clone()
        state[:, positions] = MASK_ID
        return state

    def bound(self, model, settings: EvalSettings) -> tuple[float, float, dict]:
        """The exact NELBO, and the exact likelihood of the random-order one-unit-per-step sampler."""
        sa = support_arrays()
        lp = log_probs_fn(model)
        nll_x = exact_nll(sa.x, lp)
        details = {"nll_bits_per_unit": float(np.sum(sa.p * nll_x)) / BITS,
                   "random_order_validity": float(np.exp(-nll_x).sum())}
        if getattr(model.cfg, "time_input", False):  # the continuous-time bound, its integral over t by quadrature
            return masked_objectives.exact_bound(model, revealed_table), 0.0, details
        return float(np.sum(sa.p * exact_nelbo(sa.x, lp))) / BITS, 0.0, details

    def evaluate(self, model, settings: EvalSettings | None = None):
        """Exact NELBO, NLL, and exact validity and forward KL of the T-step ancestral sampler
        (with the sampled metrics beside them)."""
        settings = settings or EvalSettings()
        report = super().evaluate(model, settings)
        sa = support_arrays()
        lp = log_probs_fn(model)
        for key, cell in report.by_steps.items():
            p_T = ancestral_exact_probs(sa.x, lp, int(key), settings.schedule)
            cell.validity_exact, cell.forward_kl_bits_exact = float(p_T.sum()), kl_bits(sa.p, p_T)
        report.details["validity_schedule"] = settings.schedule
        return report

    def exact_validity(self, model, steps: int, schedule: str = "linear") -> float:
        """sum_x p_T(x) over the language: the dynamic programme over revealed sets (ancestral_exact_probs)."""
        sa = support_arrays()
        return float(ancestral_exact_probs(sa.x, log_probs_fn(model), steps, schedule).sum())

    def sampled_options(self, settings: EvalSettings) -> dict:
        return {"strategy": "ancestral", "schedule": settings.schedule}

    def forward_view(self, model, x0, t: float, seed: int = 0, schedule: str = "linear") -> dict:
        a = schedules.get(schedule).alpha(float(t))
        g = torch.Generator().manual_seed(int(seed))
        z = corrupt(torch.as_tensor(x0, dtype=torch.long)[None], torch.tensor([float(t)]), g, schedule)[0].tolist()
        marg = np.zeros((len(x0), V + 1))  # the last column is [MASK]
        marg[np.arange(len(x0)), list(x0)] = a
        marg[:, V] = 1.0 - a
        return {"alpha": a, "tokens": z, "marginals": marg, "marginal_labels": list(self.vocab),
                "changed": [i for i, u in enumerate(z) if u == MASK_ID]}


VARIANT = MaskedVariant()
