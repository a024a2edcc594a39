"""Gaussian (continuous embedding) diffusion: Diffusion-LM (Li et al. 2022), CDCD
(Dieleman et al. 2023), Plaid (Gulrajani & Hashimoto 2023). Maths: docs/maths.md
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
sampling steps to where nothing happens. The bound draws t from T_PROPOSAL, which favours
the uncertain middle (gamma around -1), and divides by its density, so it stays unbiased (and
its standard error drops by about a third); training draws t from the narrower TRAIN_PROPOSAL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlm_core import schedules
from dlm_core.sampling.options import option
from dlm_core.sampling.sampler import Sampler, SamplerConfig, StepOutput, positions, top_k_of
from dlm_core.schedules import alpha_sigma, gamma_of
from dlm_core.toy_language import L, V, support_arrays
from dlm_core.variants.base import PageText, ToyVariant
from dlm_core.variants.denoiser import Denoiser, DenoiserConfig
from dlm_core.variants.evaluate import EvalSettings, StepsCell
from dlm_core.variants.gaussian_bound import nelbo_terms

D_EMB = 16  # embedding size d
EMBED_SEED = 1234  # the fixed seed of the table E
GAMMA0, GAMMA1 = -6.0, 6.0  # log-SNR at t = 0 (data) and t = 1 (noise)


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


def corrupt(model, x0: torch.Tensor, t: torch.Tensor, generator=None) -> torch.Tensor:
    """z_t = alpha E[x] + sigma eps, eps ~ N(0, I); x0 (B, L) ids, t (B,)."""
    a, s = alpha_sigma(model.gamma(t.to(model.embedding.dtype)))
    eps = torch.randn(x0.shape + (model.embedding.shape[1],), generator=generator)
    return a[:, None, None] * model.embedding[x0] + s[:, None, None] * eps


def language_posterior(model, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """p(x^i = v | z_t) (B, L, V), float64: the posterior over the toy language's sentences given z_t,
    p(x | z_t) ∝ p(x) prod_i N(z_t^i; alpha E[x^i], sigma^2 I), summed into each position's marginal
    (what the exact denoiser outputs; its mean . E is E[E[x] | z_t])."""
    sa = support_arrays()
    X = torch.as_tensor(sa.x)
    e = model.embedding.double()
    a, s = alpha_sigma(model.gamma(t.double()))
    onehot = F.one_hot(X, e.shape[0]).double().reshape(len(X), -1)  # (N, L * V)
    ze = torch.einsum("bld,vd->blv", z.double(), e).reshape(len(z), -1)  # z^i . E[v]
    sq = (e[X] ** 2).sum((-1, -2))  # ||E[x]||^2 (N,)
    # log N(z; alpha E[x], sigma^2 I) up to an x-free term: (2 alpha z . E[x] - alpha^2 ||E[x]||^2) / (2 sigma^2)
    ll = (2 * a[:, None] * (ze @ onehot.T) - a[:, None] ** 2 * sq[None]) / (2 * s[:, None] ** 2)
    w = torch.softmax(ll + torch.log(torch.as_tensor(sa.p))[None], -1)  # p(x | z_t) (B, N)
    return (w @ onehot).reshape(z.shape[:2] + (e.shape[0],))


# where the training loss draws t: the same kind of density over gamma as T_PROPOSAL, narrower, on the
# gamma where the model still has most to learn (the bound keeps T_PROPOSAL, its importance weights
# and its standard error)
TRAIN_PROPOSAL = dict(mix=0.05, mu=-1.3, tau=0.8)


def loss(model, x0: torch.Tensor, schedule: str = "linear", generator=None, targets: str = "exact") -> torch.Tensor:
    """CDCD's training loss: cross-entropy of the logits against x, nats per sentence.

    t = F^{-1}(u) of TRAIN_PROPOSAL with low-discrepancy u. The cross-entropy at every t is
    minimised by the exact posterior, so where t is drawn only spends the training effort.
    targets="exact": the cross-entropy is taken against p(x^i | z_t), the language's posterior given
    the noisy sentence (`language_posterior`: every sentence z_t could come from, weighted by
    p(x) q(z_t | x)), instead of the drawn sentence's units (targets="sampled", CDCD's estimator): the
    same expected loss, the same minimiser, without the noise of which sentence was drawn.
    `schedule` is ignored: the log-SNR is the model's own linear gamma(t).
    """
    if targets not in ("exact", "sampled"):
        raise ValueError(f"targets must be 'exact' or 'sampled', not {targets!r}")
    u = schedules.sample_times(x0.shape[0], generator)
    t = schedules.proposal_times(u, model.gamma0, model.gamma1, **TRAIN_PROPOSAL)[0].float()
    z = corrupt(model, x0, t, generator)
    logp = F.log_softmax(model(z, t), -1)
    if targets == "exact":
        return -(language_posterior(model, z, t).to(logp.dtype) * logp).sum((-1, -2)).mean()
    return -logp.gather(-1, x0[..., None]).sum((-1, -2)).mean()


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


# ------------------------------------------------------------------- sampler


@dataclass
class GaussianSamplerConfig(SamplerConfig):
    steps: int = 24
    clamp: bool = option(False, label="Clamp x̂ to the nearest embedding",
                         help="Diffusion-LM's clamping trick: raises validity a little, lowers diversity.")


@dataclass
class GaussianStepOutput(StepOutput):
    z: torch.Tensor | None = None  # (B, L, d) z_s after the step
    prev: torch.Tensor | None = None  # (B, L) the displayed units before the step
    x_hat: torch.Tensor | None = None  # (B, L, d) the x_hat the step used (clamped if clamping)
    nearest: torch.Tensor | None = None  # (B, L) nearest unit of z_s / alpha_s

    def extras(self, b: int) -> dict:
        return {"changed": positions(self.x[b] != self.prev[b]),
                "state": [[round(v, 5) for v in row] for row in self.z[b].tolist()],
                "nearest": self.nearest[b].tolist()}


class GaussianSampler(Sampler):
    """VDM ancestral sampling from z_1 ~ N(0, I), one `step()` t -> s at a time:

    z_s = (1 - c)(alpha_s / alpha_t) z_t + c alpha_s x_hat + sqrt(c (1 - alpha_s^2)) eps,
    c = -expm1(gamma_s - gamma_t).
    After each step the model is evaluated at (z_s, s): its softmax is what the step shows
    and gives the next step's x_hat; after the last step (s = 0, gamma0) it is the decoder,
    read by argmax. `clamp` (Diffusion-LM) snaps x_hat to the nearest embedding.
    `x_init`: a starting z_1 (B, L, d) or (L, d); by default drawn from the seed.
    """

    def __init__(self, model, config: GaussianSamplerConfig, x_init=None, batch: int = 1):
        self.model = model.eval()
        self.config = config
        self.generator = torch.Generator().manual_seed(int(config.seed))
        self.e = model.embedding.double()
        if x_init is None:
            z = torch.randn(batch, L, self.e.shape[1], generator=self.generator, dtype=torch.float64)
        else:
            z = torch.as_tensor(x_init, dtype=torch.float64)
            z = z[None] if z.dim() == 2 else z
        self.z = z.clone()
        self.grid = schedules.time_grid(config.steps)  # 1 -> 0
        self.k = config.start_step  # a branch continues from its parting step, x_init being z_t there
        self.pin_pos, self.pin_ids = self.pin_tensors(L, V)
        t = float(self.grid[self.k])
        self._hold_pins(self.z, t)
        self.probs = self._probs(self.z, t)
        self.x = self._shown(self.probs)
        self.initial = self.x.clone()
        self.initial_z = self.z.clone()

    def _hold_pins(self, z: torch.Tensor, t: float) -> None:
        """Replacement inpainting: a pinned position's state becomes a fresh draw from
        q(z_t | x = unit) = N(alpha_t e_unit, sigma_t^2 I)."""
        if len(self.pin_pos) == 0:
            return
        a_t, s_t = alpha_sigma(gamma_of(t, self.model.gamma0, self.model.gamma1))
        eps = torch.randn((z.shape[0], len(self.pin_pos), z.shape[2]), generator=self.generator, dtype=z.dtype)
        z[:, self.pin_pos] = a_t * self.e[self.pin_ids] + s_t * eps

    def _shown(self, probs: torch.Tensor) -> torch.Tensor:
        """The unit shown at each position: the argmax of p_theta(x | z_t), the pinned unit where pinned."""
        x = probs.argmax(-1)
        x[:, self.pin_pos] = self.pin_ids
        return x

    def trajectory_fields(self) -> dict:
        fields = super().trajectory_fields()
        fields["settings"].update(gamma0=self.model.gamma0, gamma1=self.model.gamma1,
                                  initial_state=[[round(v, 5) for v in row] for row in self.initial_z[0].tolist()])
        return fields

    @torch.no_grad()
    def _probs(self, z: torch.Tensor, t: float) -> torch.Tensor:
        tt = torch.full((z.shape[0],), t, dtype=torch.float32)
        return torch.softmax(self.model(z.float(), tt).double(), -1)

    def step(self) -> GaussianStepOutput:
        self._check_not_done()
        m = self.model
        t, s = float(self.grid[self.k]), float(self.grid[self.k + 1])
        g_t, g_s = gamma_of(t, m.gamma0, m.gamma1), gamma_of(s, m.gamma0, m.gamma1)
        a_t, _ = alpha_sigma(g_t)
        a_s, _ = alpha_sigma(g_s)
        x_hat = self.probs @ self.e  # x_hat = softmax(logits) . E
        if self.config.clamp:
            x_hat = self.e[nearest_units(x_hat, self.e)]  # Diffusion-LM clamping
        c = -math.expm1(g_s - g_t)  # c = 1 - e^{gamma_s - gamma_t} = 1 - SNR_t / SNR_s
        eps = torch.randn(self.z.shape, generator=self.generator, dtype=torch.float64)
        self.z = (1 - c) * (a_s / a_t) * self.z + c * a_s * x_hat + math.sqrt(c * (1 - a_s**2)) * eps
        self._hold_pins(self.z, s)
        self.probs = self._probs(self.z, s)
        prev, self.x = self.x, self._shown(self.probs)
        self.k += 1
        ids, probs = top_k_of(self.probs, self.config.top_k)
        nearest = nearest_units(self.z / a_s, self.e)
        nearest[:, self.pin_pos] = self.pin_ids  # a pinned position shows its unit, whatever its draw's nearest
        return GaussianStepOutput(step=self.k, t=t, s=s, x=self.x, topk_ids=ids, topk_probs=probs,
                                  confidence=probs[..., 0], z=self.z, prev=prev, x_hat=x_hat, nearest=nearest)


# ------------------------------------------------------------------ the variant


class GaussianVariant(ToyVariant):
    name = "gaussian"
    default_steps = 24
    config_class = GaussianSamplerConfig
    sampler_class = GaussianSampler
    loss = staticmethod(loss)
    legend = ("mask", "changed", "committed_earlier")
    forward_schedules = ()  # the model's own log-SNR gamma(t)
    # the recipe (with TrainConfig's betas, stratified batches, exact targets): see README, "Training"
    train_defaults = {"steps": 1100, "lr": 5e-3, "warmup": 100, "d_model": 48, "d_ff": 96, "n_layers": 3}
    text = PageText(
        intro="A Gaussian diffusion model starts from pure noise vectors; each step moves them towards the "
              "embeddings of units. The grid shows each position's nearest unit.",
        reverse_how="VDM ancestral step: $z_s = (1-c)\\frac{\\alpha_s}{\\alpha_t} z_t + c\\,\\alpha_s \\hat x + "
                    "\\sqrt{c(1-\\alpha_s^2)}\\,\\epsilon$, $c = -\\mathrm{expm1}(\\gamma_s-\\gamma_t)$, with "
                    "$\\hat x = \\mathrm{softmax}(\\text{logits})\\,E$ (CDCD, Plaid). The grid shows the unit "
                    "nearest to $z_s/\\alpha_s$.",
        prediction="the denoiser's softmax at step {k}",
        forward_how="Each unit is its embedding $E[x^i]$ (a fixed random unit vector, $d=16$) and Gaussian noise is "
                    "added: $z_t = \\alpha\\,E[x] + \\sigma\\,\\epsilon$, $\\alpha^2 = \\mathrm{sigmoid}(-\\gamma)$, "
                    "$\\sigma^2 = \\mathrm{sigmoid}(\\gamma)$, with a linear log-SNR $\\gamma(t)$ (VDM, Plaid). "
                    "The points shown are $z_t/\\alpha$, whose nearest embedding is the unit a reader would guess.",
        notice="What to notice: each position's nearest unit keeps jumping (vermillion) for most of the steps and "
               "settles only near the end, when little noise is left.",
        pin="in Gaussian diffusion the position's state is replaced at every step by a fresh draw from "
              "q(z_s | x = unit) (replacement inpainting): the model sees the unit at the right noise level.",
    )

    def build_model(self, cfg) -> GaussianDenoiser:
        """z_t (d = 16) and t in, 13 unit logits out."""
        return GaussianDenoiser(DenoiserConfig(n_in=V, n_out=V, d_model=cfg.d_model, n_layers=cfg.n_layers,
                                               n_heads=cfg.n_heads, d_ff=cfg.d_ff, time_input=True,
                                               input_dim=D_EMB), GAMMA0, GAMMA1)

    def corrupt(self, model, x0, t, generator=None, schedule: str = "linear"):
        return corrupt(model, x0, t, generator)

    def state_at(self, traj, k: int) -> torch.Tensor:
        """z_t after k steps (1, L, d): the recorded state (5 decimals), or the starting z_1."""
        z = traj.settings["initial_state"] if k == 0 else traj.records[k - 1].state
        if z is None:
            raise ValueError("this trajectory has no recorded states to continue from")
        return torch.tensor([z], dtype=torch.float64)

    def forget(self, model, state, positions, t, generator):
        """Re-noising: the positions keep only the noise part of z_t = alpha_t e_x + sigma_t eps,
        z^i = sigma_t eps, so nothing of their unit is left."""
        state = state.clone()
        _, s_t = alpha_sigma(gamma_of(t, model.gamma0, model.gamma1))
        eps = torch.randn((state.shape[0], len(positions), state.shape[2]), generator=generator, dtype=state.dtype)
        state[:, positions] = s_t * eps
        return state

    def bound(self, model, settings: EvalSettings) -> tuple[float, float, dict]:
        """The VDM / Plaid bound with its three terms (see nelbo_terms)."""
        r = nelbo_terms(model, settings.n_t, torch.Generator().manual_seed(settings.seed))
        details = {"nelbo_terms": {k: r[k] for k in ("prior", "reconstruction", "diffusion")},
                   "nelbo_n_t": r["n_t"], "gamma_range": [model.gamma0, model.gamma1]}
        return r["nelbo"], r["stderr"], details

    def evaluate(self, model, settings: EvalSettings | None = None):
        """The bound and sampled quality; with clamping too at 24 steps (or the largest T below)."""
        settings = settings or EvalSettings()
        report = super().evaluate(model, settings)
        T = max([T for T in settings.steps if T <= 24], default=settings.steps[0])
        report.details["clamp"] = {str(T): StepsCell.from_samples(
            self.sample(model, settings.n_samples, T, seed=settings.seed_at(T), clamp=True)).to_dict()}
        return report

    def forward_view(self, model, x0, t: float, seed: int = 0, schedule: str = "linear") -> dict:
        out = forward_sample(model, x0, t, seed)
        e2d, _ = projection_2d(model)
        out.update(tokens=out["nearest"], units_2d=e2d, alpha2=out["alpha"] ** 2,
                   changed=[i for i, (u, v) in enumerate(zip(out["nearest"], x0)) if u != v])
        return out

    def schedule_curve(self, model, schedule: str = "linear", n: int = 201) -> dict:
        t = np.linspace(0.0, 1.0, n)
        a2 = 1.0 / (1.0 + np.exp(gamma_of(t, model.gamma0, model.gamma1)))  # alpha^2 = sigmoid(-gamma)
        return {"t": t, "curves": {"α² (signal)": a2, "σ² (noise)": 1.0 - a2}}

    def needs_model_for_forward(self) -> bool:
        return True

    def embedding_projection(self, model):
        return projection_2d(model)


VARIANT = GaussianVariant()
