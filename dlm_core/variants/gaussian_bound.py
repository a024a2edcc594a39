"""The bound of the Gaussian variant (gaussian.py): the VDM / Plaid continuous-time NELBO of every
sentence of the toy language, by stratified, importance-weighted Monte Carlo with its standard error
(docs/maths.md section 3)."""

from __future__ import annotations

import math

import numpy as np
import torch

from dlm_core import schedules
from dlm_core.schedules import alpha_sigma, gamma_of
from dlm_core.toy_language import L, support_arrays
from dlm_core.variants.evaluate import BITS

# where the bound draws t (importance weighted): a density over gamma, mix * uniform +
# (1 - mix) * N(mu, tau^2), which puts the draws where x_hat is uncertain (training: TRAIN_PROPOSAL)
T_PROPOSAL = dict(mix=0.2, mu=-1.0, tau=1.5)


def proposal_times(u: torch.Tensor, gamma0: float, gamma1: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, q(t)) drawn from T_PROPOSAL (see schedules.proposal_times)."""
    return schedules.proposal_times(u, gamma0, gamma1, **T_PROPOSAL)


@torch.no_grad()
def nelbo_terms(model, n_t: int = 1000, generator=None, n_rec: int = 16, chunk: int = 8192) -> dict:
    """The VDM / Plaid bound of every sentence of the support, averaged with the exact p(x).

    NELBO(x) = KL(q(z_1 | x) || N(0, I))                       (prior, exact)
             + E_{z_0}[-log p_theta(x | z_0)]                  (reconstruction, n_rec draws)
             + 1/2 (gamma1 - gamma0) E_t[e^{-gamma(t)} ||E[x] - x_hat||^2]   (diffusion)
    The diffusion term uses n_t times per sentence: n_t / 2 strata of u in [0, 1], two
    independent draws in each, t = F^{-1}(u) of T_PROPOSAL weighted by 1 / q(t); the
    standard error comes from the within-stratum differences. Bits per unit.
    """
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    sa = support_arrays()
    x = torch.as_tensor(sa.x)
    n_sent = len(x)
    p = sa.p
    e = model.embedding.double()
    g0, g1 = model.gamma0, model.gamma1
    k = max(1, n_t // 2)  # strata per sentence

    # prior: KL(N(alpha_1 E[x], sigma_1^2 I) || N(0, I)) = 1/2 sum (alpha^2 ||E||^2 + d (sigma^2 - 1 - log sigma^2))
    a1, s1 = alpha_sigma(g1)
    d = e.shape[1]
    sq = (e[x] ** 2).sum(-1).sum(-1).numpy()  # (N,)
    prior = 0.5 * (a1**2 * sq + L * d * (s1**2 - 1.0 - math.log(s1**2)))

    # diffusion: u in stratum j = (j + u') / k, two draws per stratum, t = F^{-1}(u)
    u = torch.rand(n_sent, k, 2, generator=gen, dtype=torch.float64)
    t, q = proposal_times(((torch.arange(k, dtype=torch.float64)[None, :, None] + u) / k).reshape(-1), g0, g1)
    xs = x.repeat_interleave(2 * k, 0)
    vals = torch.empty(len(t), dtype=torch.float64)
    for lo in range(0, len(t), chunk):
        tt, qq, xx = t[lo : lo + chunk], q[lo : lo + chunk], xs[lo : lo + chunk]
        gam = gamma_of(tt, g0, g1)
        a, s = alpha_sigma(gam)
        eps = torch.randn(xx.shape + (d,), generator=gen, dtype=torch.float64)
        z = a[:, None, None] * e[xx] + s[:, None, None] * eps
        probs = torch.softmax(model(z.float(), tt.float()).double(), -1)
        x_hat = probs @ e  # x_hat = softmax(logits) . E
        err = ((e[xx] - x_hat) ** 2).sum(-1).sum(-1)  # ||E[x] - x_hat||^2 over the 6 positions
        vals[lo : lo + chunk] = 0.5 * (g1 - g0) * torch.exp(-gam) * err / qq  # importance weight 1 / q(t)
    vals = vals.reshape(n_sent, k, 2)
    diff_mean = vals.mean((1, 2)).numpy()
    diff_var = (((vals[..., 0] - vals[..., 1]) ** 2).sum(1) / (4 * k**2)).numpy()  # Var of the stratified mean

    # reconstruction at gamma0: -log p_theta(x | z_0) with the model's (factorised) decoder
    a0, s0 = alpha_sigma(g0)
    xr = x.repeat_interleave(n_rec, 0)
    z0 = a0 * e[xr] + s0 * torch.randn(xr.shape + (d,), generator=gen, dtype=torch.float64)
    t0 = torch.zeros(len(xr))
    rec_fn = getattr(model, "reconstruction_nll", None)
    if rec_fn is not None:
        rec = rec_fn(z0, xr)
    else:
        lp = torch.log_softmax(model(z0.float(), t0).double(), -1)
        rec = -lp.gather(-1, xr[..., None])[..., 0].sum(-1)
    rec = rec.reshape(n_sent, n_rec)
    rec_mean = rec.mean(1).numpy()
    rec_var = (rec.var(1, unbiased=True) / n_rec).numpy() if n_rec > 1 else np.zeros(n_sent)

    total = float(np.sum(p * (prior + rec_mean + diff_mean)))
    stderr = float(np.sqrt(np.sum(p**2 * (diff_var + rec_var))))
    return {
        "nelbo": total / BITS,
        "stderr": stderr / BITS,
        "prior": float(np.sum(p * prior)) / BITS,
        "reconstruction": float(np.sum(p * rec_mean)) / BITS,
        "diffusion": float(np.sum(p * diff_mean)) / BITS,
        "n_t": 2 * k,
    }
