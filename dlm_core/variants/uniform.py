"""Uniform diffusion: D3PM (Austin et al. 2021) in continuous time, UDLM (Schiff et al. 2025).
Maths: docs/maths.md section 2.

Forward: each unit stays with probability alpha_t, else is replaced by a uniformly random
unit (possibly itself): q(z_t | x) = alpha_t onehot(x) + (1 - alpha_t) / V. There is no
[MASK]; at t = 1 every position is uniform over the V units. The denoiser x_theta(z_t, t)
takes t (sinusoidal features through an MLP).

Reverse: the posterior q(z_s | z_t, x) with x = x_theta; every position may change at
every step (self-correction). The bound is the continuous-time UDLM NELBO, estimated by
Monte Carlo over t and z_t (it has no closed form here), with its standard error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlm_core import schedules
from dlm_core.sampling.sampler import Sampler, SamplerConfig, StepOutput, positions, top_k_of
from dlm_core.toy_language import L, V, support_arrays
from dlm_core.variants.base import PageText, ToyVariant
from dlm_core.variants.denoiser import Denoiser, DenoiserConfig
from dlm_core.variants.evaluate import BITS, EvalSettings
from dlm_core.variants.masked import EPS_T


def _alpha(t: torch.Tensor, schedule: str = "linear") -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha_t, alpha'_t) as tensors of t's dtype and shape."""
    sched = schedules.get(schedule)
    return sched.alpha(t), sched.alpha_prime(t)


def _as_time(t, n: int, dtype=torch.float32) -> torch.Tensor:
    """A float or tensor time -> (n,) tensor."""
    t = torch.as_tensor(t, dtype=dtype)
    return t.expand(n).clone() if t.dim() == 0 else t.to(dtype)


# ------------------------------------------------------------------- forward


def corrupt(x0: torch.Tensor, t: torch.Tensor, generator=None, schedule: str = "linear") -> torch.Tensor:
    """z_t ~ q(z_t | x) = alpha_t onehot(x) + (1 - alpha_t) / V, independently per position."""
    t = _as_time(t, x0.shape[0])
    a = _alpha(t.double(), schedule)[0].reshape(-1, 1)
    keep = torch.rand(x0.shape, generator=generator, dtype=torch.float64) < a
    noise = torch.randint(0, V, x0.shape, generator=generator)  # uniform over the V units
    return torch.where(keep, x0, noise)


def forward_marginals(x0_ids, t: float, schedule: str = "linear") -> np.ndarray:
    """q(z_t^i = v | x) for every position (L, V): alpha_t onehot(x^i) + (1 - alpha_t) / V."""
    x0 = np.asarray(x0_ids, dtype=np.int64)
    a = schedules.get(schedule).alpha(float(t))
    return a * np.eye(V)[x0] + (1.0 - a) / V


# --------------------------------------------------------------------- NELBO


def nelbo_integrand(x_theta: torch.Tensor, z: torch.Tensor, x: torch.Tensor, t: torch.Tensor, schedule="linear"):
    """The UDLM NELBO integrand at time t, summed over positions (nats): shape (B,).

    x_theta (B, L', V') probabilities, z and x (B, L') ids, t (B,) in (0, 1); any V', L'.
    With xbar = V alpha_t x + (1 - alpha_t) 1 and xbar_theta the same with x_theta:
      f = sum_i alpha'_t / (V alpha_t) [ V / xbar_z - V / xbar_theta_z
                                         - sum_j (xbar_j / xbar_z) log(xbar_theta_z xbar_j / (xbar_theta_j xbar_z)) ]
    and NELBO(x) = int_0^1 E_{z_t ~ q(. | x)} f dt.
    """
    n_v = x_theta.shape[-1]
    a, da = _alpha(t.to(x_theta.dtype), schedule)
    a3 = a[:, None, None]
    onehot = torch.nn.functional.one_hot(x, n_v).to(x_theta.dtype)
    xbar = n_v * a3 * onehot + (1.0 - a3)  # xbar = V alpha_t x + (1 - alpha_t)
    xbar_theta = n_v * a3 * x_theta + (1.0 - a3)  # xbar_theta = V alpha_t x_theta + (1 - alpha_t)
    xbar_z = xbar.gather(-1, z[..., None])[..., 0]
    xbar_theta_z = xbar_theta.gather(-1, z[..., None])[..., 0]
    # log(xbar_theta_z xbar_j / (xbar_theta_j xbar_z))
    log_ratio = torch.log(xbar_theta_z / xbar_z)[..., None] + torch.log(xbar) - torch.log(xbar_theta)
    mix = (xbar * log_ratio).sum(-1) / xbar_z  # sum_j (xbar_j / xbar_z) log(...)
    bracket = n_v / xbar_z - n_v / xbar_theta_z - mix
    return (da / (n_v * a))[:, None].mul(bracket).sum(-1)  # alpha'_t / (V alpha_t) [...]


def nelbo_integrand_by_unit(x_theta: torch.Tensor, z: torch.Tensor, t: torch.Tensor, schedule="linear"):
    """The integrand of `nelbo_integrand` per position, for every clean unit the position could hold:
    out[b, i, v] = f_i when x^i = v (B, L', V'), so that nelbo_integrand(x_theta, z, x, t) =
    sum_i out[b, i, x^i]. With sum_j xbar_j = V, the sum over j in f splits into
      V log(xbar_theta_z / xbar_z) + sum_j xbar_j log xbar_j - V alpha_t log xbar_theta_v
      - (1 - alpha_t) sum_j log xbar_theta_j,
    where only xbar_z (whether z = v) and xbar_theta_v depend on v."""
    n_v = x_theta.shape[-1]
    a, da = _alpha(t.to(x_theta.dtype), schedule)
    a3 = a[:, None, None]
    xbar_theta = n_v * a3 * x_theta + (1.0 - a3)
    log_xbar_theta = torch.log(xbar_theta)
    xbar_theta_z = xbar_theta.gather(-1, z[..., None])  # (B, L, 1)
    hi = n_v * a3 + 1.0 - a3  # xbar_v at the clean unit
    sum_xlogx = hi * torch.log(hi) + (n_v - 1) * torch.xlogy(1.0 - a3, 1.0 - a3)  # sum_j xbar_j log xbar_j
    xbar_z = n_v * a3 * torch.nn.functional.one_hot(z, n_v).to(x_theta.dtype) + (1.0 - a3)  # (B, L, V): by v
    mix = (n_v * torch.log(xbar_theta_z / xbar_z) + sum_xlogx - n_v * a3 * log_xbar_theta
           - (1.0 - a3) * log_xbar_theta.sum(-1, keepdim=True)) / xbar_z
    return (da / (n_v * a))[:, None, None] * (n_v / xbar_z - n_v / xbar_theta_z - mix)


def language_posterior(z: torch.Tensor, alpha_t: torch.Tensor) -> torch.Tensor:
    """p(x^i = v | z_t) (B, L, V), float64: the posterior over the toy language's sentences given all
    of z_t, p(x | z_t) ∝ p(x) prod_j q(z_t^j | x^j), summed into each position's marginal."""
    sa = support_arrays()
    X = torch.as_tensor(sa.x)
    a = torch.as_tensor(alpha_t, dtype=torch.float64).reshape(-1, 1)
    # q(z^j | x^j) is (1 - alpha_t) / V, times 1 + V alpha_t / (1 - alpha_t) where z^j = x^j: the
    # likelihood of x only depends on how many of its units z_t kept
    matches = (z[:, None, :] == X[None]).sum(-1)  # (B, N)
    log_w = matches * torch.log1p(V * a / (1.0 - a)) + torch.log(torch.as_tensor(sa.p))[None]
    w = torch.softmax(log_w, -1)  # p(x | z_t)
    return (w @ torch.nn.functional.one_hot(X, V).double().reshape(len(X), L * V)).reshape(z.shape + (V,))


# where the training loss draws t: a density over t itself (schedules.proposal_times with gamma = t),
# mix * uniform + (1 - mix) N(mu, tau^2), more draws in the middle where the model still has most to
# learn; the loss divides by the density, so it still estimates the bound without bias
TRAIN_PROPOSAL = dict(mix=0.3, mu=0.4, tau=0.2)


def loss(denoiser, x0: torch.Tensor, schedule: str = "linear", generator=None, targets: str = "exact") -> torch.Tensor:
    """Monte-Carlo continuous-time UDLM NELBO, nats per sentence (the training loss): an unbiased estimate
    of the bound the evaluation estimates (the integrand over t in [eps, 1 - eps], averaged as a uniform t
    would average it), one z_t ~ q(z_t | x) per sentence.

    t = eps + (1 - 2 eps) t' with t' = F^{-1}(u) of TRAIN_PROPOSAL (low-discrepancy u), each draw
    weighted by 1 / q(t'). targets="exact" (Rao-Blackwell): the integrand is averaged over the clean
    unit at each position under p(x^i | z_t), the language's posterior given the noisy sentence
    (`language_posterior`), instead of taking the drawn sentence's unit: every sentence z_t could come
    from, weighted by p(x) q(z_t | x), the same expectation with less noise. targets="sampled": the
    drawn sentence (the textbook estimator).
    """
    if targets not in ("exact", "sampled"):
        raise ValueError(f"targets must be 'exact' or 'sampled', not {targets!r}")
    u = schedules.sample_times(x0.shape[0], generator)
    t01, q = schedules.proposal_times(u, 0.0, 1.0, **TRAIN_PROPOSAL)
    t = (EPS_T + (1.0 - 2.0 * EPS_T) * t01).float()  # alpha_t = 0 at t = 1: cut
    z = corrupt(x0, t, generator, schedule)
    x_theta = torch.softmax(denoiser(z, t), -1)
    if targets == "exact":
        post = language_posterior(z, schedules.get(schedule).alpha(t.double())).to(x_theta.dtype)
        f = (post * nelbo_integrand_by_unit(x_theta, z, t, schedule)).sum((-1, -2))
    else:
        f = nelbo_integrand(x_theta, z, x0, t, schedule)
    return (f / q.to(f.dtype)).mean()


def leave_one_out_posterior(z, alpha_t, X=None, p=None, n_v: int = V) -> np.ndarray:
    """The x_theta that makes the bound tight: q(x^i = v | z_t^{-i}) (B, L, V), float64.

    q(x^i = v | z_t^{-i}) ∝ sum_{x: x^i = v} p(x) prod_{j != i} q(z_t^j | x^j). The language is
    given by its sentences X (N, L) and probabilities p (N,) (default: the toy language).
    """
    if X is None:
        sa = support_arrays()
        X, p = sa.x, sa.p
    z = np.asarray(z, dtype=np.int64)
    a = np.broadcast_to(np.asarray(alpha_t, dtype=np.float64), (z.shape[0],))[:, None, None]
    lik = a * (z[:, None, :] == X[None, :, :]) + (1.0 - a) / n_v  # q(z^j | x^j) (B, N, L), > 0 for t > 0
    w = p[None, :, None] * np.prod(lik, axis=2, keepdims=True) / lik  # p(x) prod_{j != i} q(z^j | x^j)
    out = np.einsum("bni,niv->biv", w, np.eye(n_v)[X])
    return out / out.sum(-1, keepdims=True)


@torch.no_grad()
def nelbo_terms(model, n_t: int = 1000, generator=None, schedule: str = "linear", chunk: int = 8192):
    """The NELBO integrand f at n_t stratified times per sentence of the support, for the model and
    for the exact leave-one-out posterior (same t and z_t): (f_model, f_oracle), each (N, n_t) float64.

    t_k = eps + (1 - 2 eps)(k + u_k) / n_t, one z_t ~ q(z_t | x) each.
    """
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    sa = support_arrays()
    n = len(sa.p)
    k = torch.arange(n_t, dtype=torch.float64)
    u = torch.rand((n, n_t), generator=gen, dtype=torch.float64)
    t = (EPS_T + (1.0 - 2.0 * EPS_T) * (k[None, :] + u) / n_t).reshape(-1)
    x = torch.as_tensor(sa.x).repeat_interleave(n_t, 0)
    f_model = torch.empty(n * n_t, dtype=torch.float64)
    f_oracle = torch.empty(n * n_t, dtype=torch.float64)
    for lo in range(0, n * n_t, chunk):
        xs, ts = x[lo : lo + chunk], t[lo : lo + chunk]
        z = corrupt(xs, ts, gen, schedule)
        x_theta = torch.softmax(model(z, ts.float()).double(), -1)
        f_model[lo : lo + chunk] = nelbo_integrand(x_theta, z, xs, ts, schedule)
        pi = torch.as_tensor(leave_one_out_posterior(z.numpy(), schedules.get(schedule).alpha(ts.numpy())))
        f_oracle[lo : lo + chunk] = nelbo_integrand(pi, z, xs, ts, schedule)
    return f_model.reshape(n, n_t).numpy(), f_oracle.reshape(n, n_t).numpy()


def stratified_mean(f: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """sum_x p(x) mean_k f[x, k] and its standard error; adjacent strata are paired
    ("collapsed strata"): Var(mean_x) ~ sum_pairs (f_a - f_b)^2 / n_t^2 (slightly conservative)."""
    n_t = f.shape[1] - f.shape[1] % 2
    var = ((f[:, 0:n_t:2] - f[:, 1:n_t:2]) ** 2).sum(1) / n_t**2
    return float(np.sum(p * f.mean(1))), float(np.sqrt(np.sum(p**2 * var)))


def posterior(x: torch.Tensor, z: torch.Tensor, t, s, schedule: str = "linear") -> torch.Tensor:
    """q(z_s | z_t = z, x) (B, L, V) for s < t; x (B, L, V) one-hot or a distribution (x_theta).

    q(z_s | z_t, x) ∝ alpha_t V x_z delta_z + (alpha_{t|s} - alpha_t) delta_z + (alpha_s - alpha_t) x
                      + (1 - alpha_{t|s})(1 - alpha_s) / V,   normaliser alpha_t V x_z + 1 - alpha_t.
    """
    n_v = x.shape[-1]
    t = _as_time(t, z.shape[0], x.dtype)
    s = _as_time(s, z.shape[0], x.dtype)
    a_t = _alpha(t, schedule)[0][:, None, None]
    a_s = _alpha(s, schedule)[0][:, None, None]
    a_ts = a_t / a_s  # alpha_{t|s} = alpha_t / alpha_s
    delta = torch.nn.functional.one_hot(z, n_v).to(x.dtype)
    x_z = x.gather(-1, z[..., None])
    num = a_t * n_v * x_z * delta + (a_ts - a_t) * delta + (a_s - a_t) * x + (1.0 - a_ts) * (1.0 - a_s) / n_v
    return num / (a_t * n_v * x_z + 1.0 - a_t)  # normaliser alpha_t V x_z + 1 - alpha_t


# ------------------------------------------------------------------ sampler


@dataclass
class UniformSamplerConfig(SamplerConfig):
    steps: int = 24
    schedule: str = "linear"  # alpha_t of the reverse posterior (the shipped model is trained on linear)

    def __post_init__(self):
        super().__post_init__()
        schedules.get(self.schedule)


@dataclass
class UniformStepOutput(StepOutput):
    changed: torch.Tensor | None = None  # (B, L) bool: the unit changed at this step (self-correction)

    def extras(self, b: int) -> dict:
        return {"changed": positions(self.changed[b])}


class UniformSampler(Sampler):
    """Ancestral reverse diffusion t -> s on schedules.time_grid(steps): z_s ~ q(z_s | z_t, x_theta).

    Starts from uniform noise (or x_init); the last step goes to s = 0, where z_0 is the sample.
    The records show the model's belief (the s = 0 posterior) given z_t; confidence is the
    belief probability of the unit held after the step.
    """

    def __init__(self, model, config: UniformSamplerConfig, x_init=None, batch: int = 1):
        self.model = model.eval()
        self.config = config
        self.grid = schedules.time_grid(config.steps)
        self.generator = torch.Generator().manual_seed(int(config.seed))
        if x_init is None:
            self.x = torch.randint(0, V, (batch, L), generator=self.generator)  # z_1: uniform over V
        else:
            x = torch.as_tensor(x_init, dtype=torch.long)
            self.x = (x[None] if x.dim() == 1 else x).clone()
            if self.x.shape[0] == 1 and batch > 1:
                self.x = self.x.expand(batch, -1).clone()
        if ((self.x < 0) | (self.x >= V)).any():
            raise ValueError(f"the uniform variant's ids are the {V} units (0..{V - 1})")
        self.pin_pos, self.pin_ids = self.pin_tensors(L, V)
        self._hold_pins(self.x)
        self.initial = self.x.clone()
        self.k = config.start_step  # a branch continues from its parting step, x_init being z_t there

    def _hold_pins(self, z: torch.Tensor) -> None:
        """A pinned position is held at its unit at every step (its z_s is set to it)."""
        z[:, self.pin_pos] = self.pin_ids

    @torch.no_grad()
    def step(self) -> UniformStepOutput:
        self._check_not_done()
        cfg = self.config
        t, s = float(self.grid[self.k]), float(self.grid[self.k + 1])
        x_theta = torch.softmax(self.model(self.x, _as_time(t, self.x.shape[0])).double(), -1)
        post = posterior(x_theta, self.x, t, s, cfg.schedule)  # q(z_s | z_t, x_theta)
        new = torch.multinomial(post.reshape(-1, V), 1, generator=self.generator).reshape(self.x.shape)
        self._hold_pins(new)
        belief = post if s == 0.0 else posterior(x_theta, self.x, t, 0.0, cfg.schedule)
        changed = new != self.x
        self.x = new
        self.k += 1
        ids, probs = top_k_of(belief, cfg.top_k)
        return UniformStepOutput(step=self.k, t=t, s=s, x=new.clone(), topk_ids=ids, topk_probs=probs,
                                 confidence=belief.gather(-1, new[..., None])[..., 0], changed=changed)


# ------------------------------------------------------------------ the variant


class UniformVariant(ToyVariant):
    name = "uniform"
    default_steps = 24
    config_class = UniformSamplerConfig
    sampler_class = UniformSampler
    loss = staticmethod(loss)
    legend = ("mask", "changed", "committed_earlier")
    # the recipe (with TrainConfig's betas, stratified batches, exact targets): see README, "Training"
    train_defaults = {"steps": 1000, "lr": 1e-2, "warmup": 50, "d_model": 48, "d_ff": 96}
    text = PageText(
        intro="A uniform diffusion model starts from six random units; at every step any position may change "
              "(the slot machine): watch the self-corrections in vermillion.",
        reverse_how="Each step samples $z_s \\sim q(z_s \\mid z_t, x=x_\\theta(z_t, t))$, the posterior of the "
                    "uniform forward process $q(z_t\\mid x) = \\alpha_t\\,\\mathrm{onehot}(x) + (1-\\alpha_t)/V$ "
                    "(D3PM, UDLM): every position may move at every step. Vermillion cells changed at that step.",
        prediction="the model's belief about the clean unit (the s = 0 posterior) at step {k}",
        forward_how="Each unit's one-hot vector is mixed with the uniform distribution: "
                    "$q(z_t^i \\mid x^i) = \\alpha_t\\,\\mathrm{onehot}(x^i) + (1-\\alpha_t)\\,\\tfrac{1}{V}"
                    "\\mathbf{1}$, $\\alpha_t = 1-t$ (D3PM, UDLM). At $t=1$ every unit is equally likely.",
        forward_marginals="the one-hot flattens towards 1/13 for every unit.",
        notice="What to notice: vermillion cells changed their unit at that step (self-correction): many change in "
               "the first steps, fewer later, and a late correction is still possible.",
        pin="in uniform diffusion the position is set back to the unit after every step, so it cannot drift.",
    )

    def build_model(self, cfg) -> Denoiser:
        """13 unit ids and t in, 13 unit logits out."""
        return Denoiser(DenoiserConfig(n_in=V, n_out=V, time_input=True, d_model=cfg.d_model,
                                       n_layers=cfg.n_layers, n_heads=cfg.n_heads, d_ff=cfg.d_ff))

    def corrupt(self, model, x0, t, generator=None, schedule: str = "linear"):
        return corrupt(x0, t, generator, schedule)

    def forget(self, model, state, positions, t, generator):
        """Re-noising: each position takes a unit drawn uniformly from the V units (the state of pure
        noise, which carries nothing of the unit it held)."""
        state = state.clone()
        state[:, positions] = torch.randint(0, V, (state.shape[0], len(positions)), generator=generator)
        return state

    def bound(self, model, settings: EvalSettings) -> tuple[float, float, dict]:
        """(NELBO, standard error, details) in bits per unit: sum_x p(x) NELBO(x) over the exact data
        distribution.

        Plain Monte Carlo is heavy-tailed at small t, even for a perfect model (a unit swapped at
        small t scores ~ log(1/t) / t). The control variate removes that: with pi the exact
        leave-one-out posterior, int_0^1 E f(pi) dt = -log p(x) exactly (the oracle test), so
          NELBO(x) = -log p(x) + E_{t, z_t}[ f(x_theta) - f(pi) ],
        unbiased, with the same t and z_t for both terms. The details keep the plain estimate E f(x_theta)
        from the same draws."""
        sa = support_arrays()
        f_model, f_oracle = nelbo_terms(model, settings.n_t, torch.Generator().manual_seed(settings.seed))
        gap, se = stratified_mean(f_model - f_oracle, sa.p)
        plain, plain_se = stratified_mean(f_model, sa.p)
        details = {"nelbo_n_t": settings.n_t, "nelbo_plain_bits_per_unit": plain / BITS,
                   "nelbo_plain_stderr_bits": plain_se / BITS,
                   "nelbo_estimator": "-log p(x) + E[f(x_theta) - f(exact leave-one-out posterior)]"}
        return (float(-np.sum(sa.p * np.log(sa.p))) + gap) / BITS, se / BITS, details

    def forward_view(self, model, x0, t: float, seed: int = 0, schedule: str = "linear") -> dict:
        g = torch.Generator().manual_seed(int(seed))
        z = corrupt(torch.as_tensor(x0, dtype=torch.long)[None], torch.tensor([float(t)]), g, schedule)[0].tolist()
        return {"alpha": schedules.get(schedule).alpha(float(t)), "tokens": z,
                "marginals": forward_marginals(x0, t, schedule), "marginal_labels": list(self.vocab),
                "changed": [i for i, (u, v) in enumerate(zip(z, x0)) if u != v]}


VARIANT = UniformVariant()
