"""Uniform diffusion: D3PM (Austin et al. 2021) in continuous time, UDLM (Schiff et al. 2025).
Maths: ../shared/maths.md section 2.

Forward: each unit stays with probability alpha_t, else is replaced by a uniformly random
unit (possibly itself): q(z_t | x) = alpha_t onehot(x) + (1 - alpha_t) / V. There is no
[MASK]; at t = 1 every position is uniform over the V units. The denoiser x_theta(z_t, t)
takes t (sinusoidal features through an MLP).

Reverse: the posterior q(z_s | z_t, x) with x = x_theta; every position may change at
every step (self-correction). The bound is the continuous-time UDLM NELBO, estimated by
Monte Carlo over t and z_t (it has no closed form here), with its standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import schedules
from .denoiser import Denoiser, DenoiserConfig
from .masked import EPS_T
from .toy_language import UNITS, L, V, entropy_bits, sample_metrics, support_arrays, support_size
from .trajectory import StepRecord, Trajectory, topk_lists

BITS = L * math.log(2)  # nats per sentence -> bits per unit
VALIDITY_STEPS = (1, 2, 3, 6, 12, 24, 100)

# 2000 x 128 at lr 3e-3 reaches NELBO within ~2 % of H in ~40 s on one core (~70 s on a busy one);
# importance-sampling t (more small t) was tried and did not help
TRAIN_DEFAULTS = dict(steps=2000, batch_size=128, lr=3e-3)


# ------------------------------------------------------------------- schedule


def _alpha(t: torch.Tensor, schedule: str = "linear") -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha_t, alpha'_t) as tensors of t's dtype and shape."""
    tn = t.detach().cpu().double().numpy()
    a = torch.as_tensor(np.asarray(schedules.alpha(tn, schedule)), dtype=t.dtype, device=t.device)
    da = torch.as_tensor(np.asarray(schedules.alpha_prime(tn, schedule)), dtype=t.dtype, device=t.device)
    return a.reshape(t.shape), da.reshape(t.shape)


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
    a = schedules.alpha(float(t), schedule)
    return a * np.eye(V)[x0] + (1.0 - a) / V


def low_discrepancy_times(batch: int, generator=None, eps: float = EPS_T) -> torch.Tensor:
    """t_b = eps + (1 - 2 eps) u_b with u_b = (u_0 + b / B) mod 1 (both ends cut: alpha_t = 0 at t = 1)."""
    return eps + (1.0 - 2.0 * eps) * schedules.low_discrepancy_u(batch, generator)


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


def loss(denoiser, x0: torch.Tensor, schedule: str = "linear", generator=None) -> torch.Tensor:
    """Monte-Carlo continuous-time UDLM NELBO, nats per sentence (the training loss).

    t = eps + (1 - 2 eps) u (low-discrepancy u), z_t ~ q(z_t | x), one z_t per sentence.
    """
    t = low_discrepancy_times(x0.shape[0], generator)
    z = corrupt(x0, t, generator, schedule)
    x_theta = torch.softmax(denoiser(z, t), -1)
    return nelbo_integrand(x_theta, z, x0, t, schedule).mean()


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
        pi = torch.as_tensor(leave_one_out_posterior(z.numpy(), schedules.alpha(ts.numpy(), schedule)))
        f_oracle[lo : lo + chunk] = nelbo_integrand(pi, z, xs, ts, schedule)
    return f_model.reshape(n, n_t).numpy(), f_oracle.reshape(n, n_t).numpy()


def stratified_mean(f: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """sum_x p(x) mean_k f[x, k] and its standard error; adjacent strata are paired
    ("collapsed strata"): Var(mean_x) ~ sum_pairs (f_a - f_b)^2 / n_t^2 (slightly conservative)."""
    n_t = f.shape[1] - f.shape[1] % 2
    var = ((f[:, 0:n_t:2] - f[:, 1:n_t:2]) ** 2).sum(1) / n_t**2
    return float(np.sum(p * f.mean(1))), float(np.sqrt(np.sum(p**2 * var)))


def nelbo_estimate(
    model, n_t: int = 1000, generator=None, schedule: str = "linear", control_variate: bool = True
) -> tuple[float, float]:
    """(NELBO, standard error) in bits per unit: sum_x p(x) NELBO(x) over the exact data distribution.

    Plain Monte Carlo is heavy-tailed at small t, even for a perfect model (a unit swapped at
    small t scores ~ log(1/t) / t). The control variate removes that: with pi the exact
    leave-one-out posterior, int_0^1 E f(pi) dt = -log p(x) exactly (the oracle test), so
      NELBO(x) = -log p(x) + E_{t, z_t}[ f(x_theta) - f(pi) ],
    unbiased, with the same t and z_t for both terms. control_variate=False: plain E f(x_theta).
    """
    f_model, f_oracle = nelbo_terms(model, n_t, generator, schedule)
    sa = support_arrays()
    if control_variate:
        gap, se = stratified_mean(f_model - f_oracle, sa.p)
        nelbo = float(-np.sum(sa.p * np.log(sa.p))) + gap
    else:
        nelbo, se = stratified_mean(f_model, sa.p)
    return nelbo / BITS, se / BITS


# ------------------------------------------------- the variant's small surface


def build_model(cfg) -> Denoiser:
    """The denoiser of a TrainConfig: 13 unit ids and t in, 13 unit logits out."""
    return Denoiser(
        DenoiserConfig(
            n_in=V,
            n_out=V,
            time_input=True,
            d_model=cfg.d_model,
            n_layers=cfg.n_layers,
            n_heads=cfg.n_heads,
            d_ff=cfg.d_ff,
        )
    )


@torch.no_grad()
def model_belief(model, z: torch.Tensor, t, schedule: str = "linear") -> torch.Tensor:
    """What the model believes x is (B, L, V), float64: the s = 0 posterior
    x_theta(v) (V alpha_t delta_{v, z} + 1 - alpha_t), normalised.

    x_theta itself is (ideally) the leave-one-out posterior q(x^i | z_t^{-i}), not a belief.
    """
    z = z if z.dim() == 2 else z[None]
    t = _as_time(t, z.shape[0])
    x_theta = torch.softmax(model(z, t).double(), -1)
    return posterior(x_theta, z, t.double(), torch.zeros_like(t, dtype=torch.float64), schedule)


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
class UniformStepResult:
    """What one reverse step did, for the whole batch (tensors on the CPU)."""

    step: int
    t: float
    s: float
    x: torch.Tensor  # (B, L) ids after the step
    changed: torch.Tensor  # (B, L) bool: the unit changed at this step
    confidence: torch.Tensor  # (B, L) float64: belief probability of the unit held after the step
    probs: torch.Tensor  # (B, L, V) float64: the model belief (s = 0 posterior) given z_t
    model_called: bool = True

    def record(self, b: int = 0, top_k: int = 13) -> StepRecord:
        ids, top_p = topk_lists(self.probs[b], top_k)
        return StepRecord(
            step=self.step,
            t=self.t,
            s=self.s,
            tokens=self.x[b].tolist(),
            changed=torch.nonzero(self.changed[b]).flatten().tolist(),
            confidence=[float(c) for c in self.confidence[b].tolist()],
            topk_ids=ids,
            topk_probs=top_p,
            model_called=self.model_called,
        )


class UniformSampler:
    """Ancestral reverse diffusion t -> s on schedules.time_grid(steps): z_s ~ q(z_s | z_t, x_theta).

    Starts from uniform noise (or x_init); the last step goes to s = 0, where z_0 is the sample.
    """

    def __init__(self, model, steps: int, seed: int = 0, x_init=None, batch: int = 1, schedule: str = "linear"):
        self.model = model.eval()
        self.steps = int(steps)
        self.grid = schedules.time_grid(self.steps)
        self.schedule = schedule
        self.generator = torch.Generator().manual_seed(int(seed))
        if x_init is None:
            self.x = torch.randint(0, V, (batch, L), generator=self.generator)  # z_1: uniform over V
        else:
            x = torch.as_tensor(x_init, dtype=torch.long)
            self.x = (x[None] if x.dim() == 1 else x).clone()
            if self.x.shape[0] == 1 and batch > 1:
                self.x = self.x.expand(batch, -1).clone()
        if ((self.x < 0) | (self.x >= V)).any():
            raise ValueError(f"the uniform variant's ids are the {V} units (0..{V - 1})")
        self.k = 0

    @property
    def done(self) -> bool:
        return self.k >= self.steps

    @torch.no_grad()
    def step(self) -> UniformStepResult:
        if self.done:
            raise RuntimeError("the sampler has already taken all its steps")
        t, s = float(self.grid[self.k]), float(self.grid[self.k + 1])
        n = self.x.shape[0]
        x_theta = torch.softmax(self.model(self.x, _as_time(t, n)).double(), -1)
        post = posterior(x_theta, self.x, t, s, self.schedule)  # q(z_s | z_t, x_theta)
        new = torch.multinomial(post.reshape(-1, V), 1, generator=self.generator).reshape(self.x.shape)
        belief = post if s == 0.0 else posterior(x_theta, self.x, t, 0.0, self.schedule)
        changed = new != self.x
        self.x = new
        self.k += 1
        return UniformStepResult(
            step=self.k,
            t=t,
            s=s,
            x=new.clone(),
            changed=changed,
            confidence=belief.gather(-1, new[..., None])[..., 0],
            probs=belief,
        )


def sample_ids(model, n: int, steps: int, seed: int = 0, **options) -> torch.Tensor:
    """n unconditional samples (n, L) of the T-step ancestral sampler."""
    unknown = set(options) - {"schedule"}
    if unknown:
        raise ValueError(f"the uniform sampler has no option(s) {sorted(unknown)}; it takes: schedule")
    sampler = UniformSampler(model, steps, seed, batch=n, schedule=options.get("schedule", "linear"))
    while not sampler.done:
        sampler.step()
    return sampler.x


def trajectory(model, steps: int, seed: int = 0, x_init=None, schedule: str = "linear", top_k: int = V, on_step=None):
    """One sequence through the sampler, one StepRecord per step (`on_step(record, sampler)` streams)."""
    sampler = UniformSampler(model, steps, seed, x_init=x_init, batch=1, schedule=schedule)
    traj = Trajectory(
        variant="uniform",
        vocab=list(UNITS),
        mask_id=None,
        initial=sampler.x[0].tolist(),
        settings={"steps": int(steps), "seed": int(seed), "strategy": "ancestral", "schedule": schedule},
    )
    while not sampler.done:
        rec = sampler.step().record(0, top_k)
        traj.records.append(rec)
        if on_step is not None:
            on_step(rec, sampler)
    return traj


# ---------------------------------------------------------------- evaluation


def evaluate(model, quick: bool = False, n_t: int | None = None, n_samples: int | None = None) -> dict:
    """Monte-Carlo NELBO (with its standard error) and sampled validity at each T (fixed seeds),
    with the error reasons, coverage, KL on valid samples and total variation of the samples.

    Full: 1000 stratified t per sentence, 20,000 samples per T. quick: 64 t, 500 samples.
    """
    n_t = n_t or (64 if quick else 1000)
    n_samples = n_samples or (500 if quick else 20000)
    sa = support_arrays()
    f_model, f_oracle = nelbo_terms(model, n_t, torch.Generator().manual_seed(0))
    gap, se = stratified_mean(f_model - f_oracle, sa.p)  # nelbo_estimate, control variate
    nelbo, se = (entropy_bits() * math.log(2) + gap) / BITS, se / BITS
    plain, plain_se = (v / BITS for v in stratified_mean(f_model, sa.p))
    h = entropy_bits() / L
    validity, v_se, reasons, coverage, kl, tv = {}, {}, {}, {}, {}, {}
    for T in VALIDITY_STEPS:
        chunks = range(0, n_samples, 4096)  # each chunk its own seeded stream
        xs = torch.cat([sample_ids(model, min(4096, n_samples - lo), T, seed=T * 100003 + lo) for lo in chunks])
        m = sample_metrics(xs.tolist())
        key = str(T)
        validity[key], v_se[key], reasons[key] = m.validity, m.validity_stderr, m.reasons
        coverage[key], kl[key], tv[key] = m.coverage_fraction, m.kl_valid_bits, m.tv
    return {
        "variant": "uniform",
        "entropy_bits_per_unit": h,
        "entropy_bits": entropy_bits(),
        "support_size": support_size(),
        "nelbo_bits_per_unit": nelbo,
        "nelbo_stderr_bits": se,
        "nelbo_over_entropy": nelbo / h,
        "nelbo_n_t": n_t,
        "nelbo_estimator": "-log p(x) + E[f(x_theta) - f(exact leave-one-out posterior)] (control variate)",
        "nelbo_plain_bits_per_unit": plain,  # the same samples without the control variate
        "nelbo_plain_stderr_bits": plain_se,
        "validity": validity,
        "validity_stderr": v_se,
        "reasons": reasons,
        "coverage_fraction": coverage,
        "kl_valid_bits": kl,
        "tv": tv,
        "n_samples": n_samples,
        "seeds": "validity at T: seed T * 100003 + chunk start; NELBO: generator seed 0",
        "exact": False,
    }
