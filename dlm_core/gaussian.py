"""Gaussian (continuous embedding) diffusion: Diffusion-LM (Li et al. 2022), CDCD
(Dieleman et al. 2023), Plaid (Gulrajani & Hashimoto 2023). Maths: ../shared/maths.md
section 3.

Each unit is a fixed random unit vector E[v] (V = 13 rows, d = 16). Forward, variance
preserving with a linear log-SNR gamma(t) = gamma0 + (gamma1 - gamma0) t:
alpha^2 = sigmoid(-gamma), sigma^2 = sigmoid(gamma), z_t = alpha E[x] + sigma eps.

The denoiser sees z_t scaled to unit variance and t, and outputs logits over the V
units; Plaid's exact Gaussian term (alpha / sigma^2) z_t . E^T is added, so the network
only has to learn what the *other* positions say. x_hat = softmax(logits) . E.
Training: cross-entropy of the logits against x (CDCD). Reported: the VDM / Plaid
continuous-time NELBO, by Monte Carlo with its standard error. Sampling: VDM ancestral.

Choices (measured on this toy): gamma runs -6 -> 6, not -8 -> 8. With |E[v]| = 1 and the
closest pair of rows 1.0 apart, nothing is left to learn below gamma = -5 (the exact
posterior is certain; reconstruction term 0) and nothing is left above 6 (prior term
0.0018 bits per unit, 0.15 % of H); the wider range only moved training draws and
sampling steps to where nothing happens. Training and the bound draw t from T_PROPOSAL,
which favours the uncertain middle (gamma around -1); the bound divides by its density,
so it stays unbiased (and its standard error drops by about a third).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import schedules
from .denoiser import Denoiser, DenoiserConfig
from .toy_language import UNITS, L, V, entropy_bits_per_unit, sample_metrics, support_arrays
from .trajectory import StepRecord, Trajectory, topk_lists

D_EMB = 16  # embedding size d
EMBED_SEED = 1234  # the fixed seed of the table E
GAMMA0, GAMMA1 = -6.0, 6.0  # log-SNR at t = 0 (data) and t = 1 (noise)
BITS = L * math.log(2)  # nats per sentence -> bits per unit
VALIDITY_STEPS = (1, 2, 3, 6, 12, 24, 100)

TRAIN_DEFAULTS = dict(steps=2000, batch_size=128, lr=3e-3, warmup=100)
# where t is drawn, for training and for the bound (importance weighted there): a density over
# gamma, mix * uniform + (1 - mix) * N(mu, tau^2), which puts the draws where x_hat is uncertain
T_PROPOSAL = dict(mix=0.2, mu=-1.0, tau=1.5)


# ------------------------------------------------------------------- schedule


def gamma_of(t, gamma0: float = GAMMA0, gamma1: float = GAMMA1):
    """gamma(t) = gamma0 + (gamma1 - gamma0) t, the log of sigma^2 / alpha^2 (minus log-SNR)."""
    return gamma0 + (gamma1 - gamma0) * t


def alpha_sigma(gamma):
    """(alpha, sigma) with alpha^2 = sigmoid(-gamma), sigma^2 = sigmoid(gamma); tensors or floats."""
    if isinstance(gamma, torch.Tensor):
        return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()
    g = np.asarray(gamma, dtype=np.float64)
    a, s = np.sqrt(1.0 / (1.0 + np.exp(g))), np.sqrt(1.0 / (1.0 + np.exp(-g)))
    return (float(a), float(s)) if a.ndim == 0 else (a, s)


def embedding_table(v: int = V, d: int = D_EMB, seed: int = EMBED_SEED) -> torch.Tensor:
    """E (V, d): random rows of unit norm from a fixed seed (the article's '13 random vectors')."""
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(v, d, generator=g, dtype=torch.float64)
    return (e / e.norm(dim=-1, keepdim=True)).float()


# ---------------------------------------------------------------------- model


class GaussianDenoiser(nn.Module):
    """The shared Transformer on continuous inputs, plus the buffers E and (gamma0, gamma1).

    forward(z, t) -> logits (B, L, V) = network(z / sqrt(Var z_t), t) + (alpha / sigma^2) z . E^T.
    Both buffers live in the state_dict, so a checkpoint carries its own table and schedule.
    """

    def __init__(self, cfg: DenoiserConfig, gamma0: float = GAMMA0, gamma1: float = GAMMA1):
        super().__init__()
        self.net = Denoiser(cfg)
        self.register_buffer("embedding", embedding_table(cfg.n_out, cfg.input_dim))
        self.register_buffer("gamma_range", torch.tensor([gamma0, gamma1], dtype=torch.float32))

    @property
    def gamma0(self) -> float:
        return float(self.gamma_range[0])

    @property
    def gamma1(self) -> float:
        return float(self.gamma_range[1])

    def gamma(self, t: torch.Tensor) -> torch.Tensor:
        return gamma_of(t, self.gamma_range[0], self.gamma_range[1])

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.float32).reshape(-1).expand(z.shape[0])
        a, s = alpha_sigma(self.gamma(t))
        a, s = a[:, None, None], s[:, None, None]
        e = self.embedding
        data_var = (e**2).mean()  # per-coordinate second moment of E (1/d for unit rows)
        z_in = z / torch.sqrt(a**2 * data_var + s**2)  # unit variance in
        logits = self.net(z_in, t)
        return logits + (a / s**2) * z @ e.T  # Plaid: log N(z; alpha E[v], sigma^2) up to a v-free constant

    def n_params(self) -> int:
        return self.net.n_params()


def build_model(cfg) -> GaussianDenoiser:
    """The denoiser of a TrainConfig: z_t (d = 16) and t in, 13 unit logits out."""
    return GaussianDenoiser(
        DenoiserConfig(
            n_in=V,
            n_out=V,
            d_model=cfg.d_model,
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            d_ff=cfg.d_ff,
            time_input=True,
            input_dim=D_EMB,
        ),
        GAMMA0,
        GAMMA1,
    )


def embeddings(model) -> np.ndarray:
    """The table E (V, d) as float64."""
    return model.embedding.detach().double().numpy().copy()


def projection_2d(model) -> tuple[np.ndarray, np.ndarray]:
    """(E P (V, 2), P (d, 2)): the two principal axes of E (uncentred, so 0, the centre of the
    noise, stays at 0); a d-vector v maps to v @ P. Signs fixed for reproducible plots."""
    e = embeddings(model)
    _, _, vt = np.linalg.svd(e, full_matrices=False)
    p = vt[:2].T.copy()  # (d, 2)
    proj = e @ p
    for k in range(2):  # sign: the largest coordinate of each axis positive
        if proj[np.argmax(np.abs(proj[:, k])), k] < 0:
            p[:, k] *= -1
    return e @ p, p


def nearest_units(v: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    """Index of the row of E nearest (Euclidean) to each vector of v (..., d)."""
    d2 = (v**2).sum(-1, keepdim=True) - 2 * v @ e.T + (e**2).sum(-1)
    return d2.argmin(-1)


# -------------------------------------------------------------------- forward


def low_discrepancy_times(batch: int, generator=None) -> torch.Tensor:
    """t_b = (u_0 + b / B) mod 1."""
    return schedules.low_discrepancy_u(batch, generator)


def proposal_times(u: torch.Tensor, gamma0: float, gamma1: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, q(t)): t = F^{-1}(u) for u in [0, 1], where gamma(t) has the density
    q(gamma) = mix / (gamma1 - gamma0) + (1 - mix) N(gamma; mu, tau^2) (T_PROPOSAL, truncated),
    its CDF interpolated linearly on a grid; q(t) is the exact (piecewise constant) density of
    the t drawn, so E_q[f(t) / q(t)] = int_0^1 f(t) dt without bias. mix = 1: uniform t."""
    mix, mu, tau = T_PROPOSAL["mix"], T_PROPOSAL["mu"], T_PROPOSAL["tau"]
    u = torch.as_tensor(u, dtype=torch.float64)
    if mix >= 1.0:
        return u, torch.ones_like(u)
    g = np.linspace(0.0, 1.0, 4097)  # grid in t
    gam = gamma0 + (gamma1 - gamma0) * g
    dens = mix + (1 - mix) * (gamma1 - gamma0) * np.exp(-0.5 * ((gam - mu) / tau) ** 2) / (tau * math.sqrt(2 * math.pi))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(g))])
    cdf /= cdf[-1]
    t = np.interp(u.numpy(), cdf, g)
    b = np.clip(np.searchsorted(g, t, side="right") - 1, 0, len(g) - 2)
    q = (cdf[b + 1] - cdf[b]) / (g[b + 1] - g[b])  # slope of the interpolated CDF
    return torch.as_tensor(t), torch.as_tensor(q)


def corrupt(model, x0: torch.Tensor, t: torch.Tensor, generator=None) -> torch.Tensor:
    """z_t = alpha E[x] + sigma eps, eps ~ N(0, I); x0 (B, L) ids, t (B,)."""
    a, s = alpha_sigma(model.gamma(t.to(model.embedding.dtype)))
    eps = torch.randn(x0.shape + (model.embedding.shape[1],), generator=generator)
    return a[:, None, None] * model.embedding[x0] + s[:, None, None] * eps


def loss(model, x0: torch.Tensor, schedule: str = "linear", generator=None) -> torch.Tensor:
    """CDCD's training loss: cross-entropy of the logits against x, nats per sentence.

    t = F^{-1}(u) of T_PROPOSAL with low-discrepancy u. The cross-entropy at every t is
    minimised by the exact posterior, so where t is drawn only spends the training effort.
    `schedule` is ignored: the log-SNR is the model's own linear gamma(t).
    """
    t = proposal_times(low_discrepancy_times(x0.shape[0], generator), model.gamma0, model.gamma1)[0].float()
    z = corrupt(model, x0, t, generator)
    logits = model(z, t)
    return F.cross_entropy(logits.transpose(1, 2), x0, reduction="none").sum(-1).mean()


@torch.no_grad()
def forward_sample(model, x0_ids, t: float, seed: int = 0) -> dict:
    """One draw of z_t for a sentence, for the Forward page.

    Returns gamma, alpha, sigma, z (L, d), z_2d (L, 2), the rescaled z / alpha and its 2-D
    projection, the clean points E[x] in 2-D, and the nearest unit of each z / alpha.
    """
    x0 = torch.as_tensor(list(x0_ids), dtype=torch.long)[None]
    g = torch.Generator().manual_seed(int(seed))
    tt = torch.tensor([float(t)])
    z = corrupt(model, x0, tt, g)[0].double()
    gamma = float(gamma_of(float(t), model.gamma0, model.gamma1))
    a, s = alpha_sigma(gamma)
    _, p = projection_2d(model)
    e = model.embedding.double()
    scaled = z / a  # z_t / alpha = E[x] + (sigma / alpha) eps
    return {
        "t": float(t),
        "gamma": gamma,
        "alpha": a,
        "sigma": s,
        "z": z.numpy(),
        "z_2d": z.numpy() @ p,
        "scaled": scaled.numpy(),
        "scaled_2d": scaled.numpy() @ p,
        "clean_2d": e[x0[0]].numpy() @ p,
        "nearest": nearest_units(scaled, e).tolist(),
    }


# ---------------------------------------------------------------- the bound


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


def nelbo_estimate(model, n_t: int = 1000, generator=None) -> tuple[float, float]:
    """(NELBO, its standard error) in bits per unit, expectation over the exact data distribution."""
    r = nelbo_terms(model, n_t, generator)
    return r["nelbo"], r["stderr"]


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


# ------------------------------------------------------------------- sampler


@dataclass
class GaussianStepResult:
    """What one reverse step did, for the whole batch (CPU tensors)."""

    step: int
    t: float
    s: float
    z: torch.Tensor  # (B, L, d) z_s after the step
    x: torch.Tensor  # (B, L) argmax unit of each position's softmax at (z_s, s)
    prev: torch.Tensor  # (B, L) the displayed units before the step
    probs: torch.Tensor  # (B, L, V) softmax at (z_s, s)
    x_hat: torch.Tensor  # (B, L, d) the x_hat the step used (clamped if clamping)
    nearest: torch.Tensor  # (B, L) nearest unit of z_s / alpha_s

    def record(self, b: int = 0, top_k: int = 13) -> StepRecord:
        ids, top_p = topk_lists(self.probs[b], top_k)
        return StepRecord(
            step=self.step,
            t=self.t,
            s=self.s,
            tokens=self.x[b].tolist(),
            changed=torch.nonzero(self.x[b] != self.prev[b]).flatten().tolist(),
            confidence=[row[0] for row in top_p],
            topk_ids=ids,
            topk_probs=top_p,
            state=[[round(v, 5) for v in row] for row in self.z[b].tolist()],
            nearest=self.nearest[b].tolist(),
            model_called=True,
        )


class GaussianSampler:
    """VDM ancestral sampling from z_1 ~ N(0, I), one `step()` t -> s at a time:

    z_s = (1 - c)(alpha_s / alpha_t) z_t + c alpha_s x_hat + sqrt(c (1 - alpha_s^2)) eps,
    c = -expm1(gamma_s - gamma_t).
    After each step the model is evaluated at (z_s, s): its softmax is what the step shows
    and gives the next step's x_hat; after the last step (s = 0, gamma0) it is the decoder,
    read by argmax. `clamp` (Diffusion-LM) snaps x_hat to the nearest embedding.
    `x_init`: a starting z_1 (B, L, d) or (L, d); by default drawn from the seed.
    """

    def __init__(self, model, steps: int, seed: int = 0, clamp: bool = False, x_init=None, batch: int = 1):
        if steps < 1:
            raise ValueError("the number of steps must be at least 1")
        self.model = model.eval()
        self.steps = int(steps)
        self.clamp = bool(clamp)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.e = model.embedding.double()
        if x_init is None:
            z = torch.randn(batch, L, self.e.shape[1], generator=self.generator, dtype=torch.float64)
        else:
            z = torch.as_tensor(x_init, dtype=torch.float64)
            z = z[None] if z.dim() == 2 else z
        self.z = z.clone()
        self.grid = schedules.time_grid(self.steps)  # 1 -> 0
        self.k = 0
        self.probs = self._probs(self.z, 1.0)
        self.x = self.probs.argmax(-1)
        self.initial = self.x.clone()
        self.initial_z = self.z.clone()

    @property
    def done(self) -> bool:
        return self.k >= self.steps

    @torch.no_grad()
    def _probs(self, z: torch.Tensor, t: float) -> torch.Tensor:
        tt = torch.full((z.shape[0],), t, dtype=torch.float32)
        return torch.softmax(self.model(z.float(), tt).double(), -1)

    def step(self) -> GaussianStepResult:
        if self.done:
            raise RuntimeError("the sampler has already taken all its steps")
        m = self.model
        t, s = float(self.grid[self.k]), float(self.grid[self.k + 1])
        g_t, g_s = gamma_of(t, m.gamma0, m.gamma1), gamma_of(s, m.gamma0, m.gamma1)
        a_t, _ = alpha_sigma(g_t)
        a_s, _ = alpha_sigma(g_s)
        x_hat = self.probs @ self.e  # x_hat = softmax(logits) . E
        if self.clamp:
            x_hat = self.e[nearest_units(x_hat, self.e)]  # Diffusion-LM clamping
        c = -math.expm1(g_s - g_t)  # c = 1 - e^{gamma_s - gamma_t} = 1 - SNR_t / SNR_s
        eps = torch.randn(self.z.shape, generator=self.generator, dtype=torch.float64)
        self.z = (1 - c) * (a_s / a_t) * self.z + c * a_s * x_hat + math.sqrt(c * (1 - a_s**2)) * eps
        self.probs = self._probs(self.z, s)
        prev, self.x = self.x, self.probs.argmax(-1)
        self.k += 1
        return GaussianStepResult(
            step=self.k,
            t=t,
            s=s,
            z=self.z,
            x=self.x,
            prev=prev,
            probs=self.probs,
            x_hat=x_hat,
            nearest=nearest_units(self.z / a_s, self.e),
        )


def sample_ids(model, n: int, steps: int, seed: int = 0, clamp: bool = False) -> torch.Tensor:
    """n unconditional samples (n, L): T ancestral steps, then the argmax of the decoder at gamma0."""
    s = GaussianSampler(model, steps, seed, clamp=clamp, batch=n)
    while not s.done:
        s.step()
    return s.x.long()


def trajectory(model, steps: int, seed: int = 0, clamp: bool = False, top_k: int = V, on_step=None) -> Trajectory:
    """One sample with one record per step. settings['initial_state'] holds z_1."""
    s = GaussianSampler(model, steps, seed, clamp=clamp, batch=1)
    traj = Trajectory(
        variant="gaussian",
        vocab=list(UNITS),
        mask_id=None,
        initial=s.initial[0].tolist(),
        settings={
            "steps": int(steps),
            "seed": int(seed),
            "clamp": bool(clamp),
            "strategy": "ancestral",
            "gamma0": model.gamma0,
            "gamma1": model.gamma1,
            "initial_state": [[round(v, 5) for v in row] for row in s.initial_z[0].tolist()],
        },
    )
    while not s.done:
        rec = s.step().record(0, top_k)
        traj.records.append(rec)
        if on_step is not None:
            on_step(rec, s)
    return traj


# ----------------------------------------------------------------- evaluation


def sampled_validity(model, steps: int, n: int, seed: int, clamp: bool = False, chunk: int = 5000) -> dict:
    """toy_language.sample_metrics of n samples of the T-step sampler (chunks seeded seed + start)."""
    rows = []
    for lo in range(0, n, chunk):
        rows.append(sample_ids(model, min(chunk, n - lo), steps, seed=seed + lo, clamp=clamp))
    return sample_metrics(torch.cat(rows).numpy()).as_dict()


def evaluate(
    model, quick: bool = False, n_t: int | None = None, n_samples: int | None = None, steps=VALIDITY_STEPS
) -> dict:
    """Monte-Carlo NELBO (with standard error and its three terms) and sampled validity.

    Full: 1000 t per sentence, 20,000 samples per T (and T = 24 with clamping).
    quick: 200 t per sentence and 1,000 samples per T, for right after training.
    n_t / n_samples override either setting.
    """
    torch.set_num_threads(1)
    n_t = n_t or (200 if quick else 1000)
    n = n_samples or (1000 if quick else 20000)
    h = entropy_bits_per_unit()
    r = nelbo_terms(model, n_t, torch.Generator().manual_seed(0))
    validity, stderr, reasons, coverage, kl, tv = {}, {}, {}, {}, {}, {}
    for T in steps:
        m = sampled_validity(model, T, n, seed=10_000 * T)
        key = str(T)
        validity[key], stderr[key] = m["validity"], m["validity_stderr"]
        reasons[key], coverage[key], kl[key], tv[key] = m["reasons"], m["coverage"], m["kl_valid_bits"], m["tv"]
    out = {
        "variant": "gaussian",
        "entropy_bits_per_unit": h,
        "nelbo_bits_per_unit": r["nelbo"],
        "nelbo_stderr_bits": r["stderr"],
        "nelbo_over_entropy": r["nelbo"] / h,
        "nelbo_terms": {"prior": r["prior"], "reconstruction": r["reconstruction"], "diffusion": r["diffusion"]},
        "nelbo_n_t": r["n_t"],
        "gamma_range": [model.gamma0, model.gamma1],
        "validity": validity,
        "validity_stderr": stderr,
        "reasons": reasons,
        "coverage": coverage,
        "kl_valid_bits": kl,
        "tv": tv,
        "n_samples": n,
        "exact": False,
    }
    if not quick:
        m = sampled_validity(model, 24, n, seed=10_000 * 24, clamp=True)
        out["validity_clamp"] = {"24": m["validity"]}
        out["validity_clamp_stderr"] = {"24": m["validity_stderr"]}
    return out
