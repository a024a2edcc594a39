"""Oracle denoisers for the tests: the exact posteriors of the toy language, which make the
bounds tight (they are test fixtures, not part of the app)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlm_core.toy_language import V, support_arrays
from dlm_core.variants.gaussian import GAMMA0, GAMMA1, GaussianDenoiser, alpha_sigma, gamma_of


class OracleDenoiser(nn.Module):
    """The exact posterior of the toy language under the Gaussian forward process.

    Logits = log p(x^i = v | z_t), each position's marginal of the posterior over the 216
    sentences (likelihood N(z; alpha E[x], sigma^2 I) times p(x)), so x_hat = E[E[x] | z_t]
    exactly; `reconstruction_nll` is the exact -log p(x | z_0) of the whole sentence.
    With it the bound equals H up to KL(q(z_1) || N(0, I)) (I-MMSE): a unit test.
    """

    def __init__(self, embedding: torch.Tensor, gamma0: float = GAMMA0, gamma1: float = GAMMA1):
        super().__init__()
        self.register_buffer("embedding", embedding.float())
        self.register_buffer("gamma_range", torch.tensor([gamma0, gamma1], dtype=torch.float32))
        sa = support_arrays()
        self.x = torch.as_tensor(sa.x)
        self.log_p = torch.log(torch.as_tensor(sa.p))
        self.onehot = F.one_hot(self.x, V).double()  # (N, L, V)

    gamma0 = GaussianDenoiser.gamma0
    gamma1 = GaussianDenoiser.gamma1
    gamma = GaussianDenoiser.gamma

    def _log_post(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """log p(sentence n | z) (B, N), in float64."""
        z = z.double()
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1).expand(z.shape[0])
        a, s = alpha_sigma(gamma_of(t, self.gamma0, self.gamma1))
        e = self.embedding.double()
        # -||z - alpha E[x_n]||^2 / (2 sigma^2) less the n-free ||z||^2 term:
        # (2 alpha z . E[x_n] - alpha^2 ||E[x_n]||^2) / (2 sigma^2)
        ze = torch.einsum("bld,vd->blv", z, e)
        cross = torch.einsum("blv,nlv->bn", ze, self.onehot)  # sum_i z_i . E[x_n^i]
        sq = (e[self.x] ** 2).sum((-1, -2))  # (N,)
        ll = (2 * a[:, None] * cross - a[:, None] ** 2 * sq[None]) / (2 * s[:, None] ** 2)
        return torch.log_softmax(ll + self.log_p[None], -1)

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        w = self._log_post(z, t).exp()
        marg = torch.einsum("bn,nlv->blv", w, self.onehot)
        return torch.log(marg.clamp_min(1e-300))

    def reconstruction_nll(self, z0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        lp = self._log_post(z0, torch.zeros(len(z0)))
        idx = torch.as_tensor([support_arrays().index[tuple(r)] for r in x.tolist()])
        return -lp.gather(-1, idx[:, None])[:, 0]




def chi2_pvalue(counts, expected) -> float:
    """Pearson's chi-square goodness of fit; bins with an expected count below 5 are pooled into one."""
    counts, expected = np.asarray(counts, float), np.asarray(expected, float)
    small = expected < 5
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    keep = exp > 0
    stat = float(((obs[keep] - exp[keep]) ** 2 / exp[keep]).sum())
    dof = int(keep.sum()) - 1
    # P(chi2_dof > stat) = Q(dof / 2, stat / 2), the regularised upper incomplete gamma function
    return float(torch.special.gammaincc(torch.tensor(dof / 2, dtype=torch.float64),
                                         torch.tensor(stat / 2, dtype=torch.float64)))
