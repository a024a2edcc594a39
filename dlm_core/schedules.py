"""Noise schedules and the one time sampler, as small torch objects (docs/maths.md sections 1-3).

A `Schedule` gives alpha_t, the probability that a unit is still clean at time t
(alpha_0 = 1: data, alpha_1 = 0: pure noise), its derivative alpha'_t and the weight
w(t) = -alpha'_t / (1 - alpha_t) of the masked continuous-time NELBO. Every method takes a
float, a numpy array or a torch tensor and answers in the same kind (computed in float64),
so the exact dynamic programmes, the training losses, the samplers and the Forward page
all read the same object. (The Gaussian variant's log-SNR
schedule lives with its model in gaussian.py: each checkpoint stores it.) `sample_times` is
the one low-discrepancy time sampler of every training loss.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import nn


def _float64(t):
    """(t as float64, whether it came as a tensor, whether it was a plain float)."""
    if isinstance(t, torch.Tensor):
        return t.double(), True, False
    a = np.asarray(t, dtype=np.float64)
    return a, False, a.ndim == 0


def _back(x, was_tensor: bool, scalar: bool, like=None):
    if was_tensor:
        return x.to(like.dtype) if like is not None and like.is_floating_point() else x
    return float(x) if scalar else x


class Schedule(nn.Module):
    """alpha_t and its derivative; subclasses define `_alpha` and `_alpha_prime` on float64 values
    of either library (xp: numpy or torch)."""

    name = "schedule"

    def _alpha(self, t, xp):  # pragma: no cover - abstract
        raise NotImplementedError

    def _alpha_prime(self, t, xp):  # pragma: no cover - abstract
        raise NotImplementedError

    def _clipped_alpha(self, x, is_t: bool):
        out = self._alpha(x, torch if is_t else np)
        return out.clamp(0.0, 1.0) if is_t else np.clip(out, 0.0, 1.0)

    def alpha(self, t):
        """alpha_t, clipped to [0, 1]."""
        x, is_t, scalar = _float64(t)
        return _back(self._clipped_alpha(x, is_t), is_t, scalar, t if is_t else None)

    def alpha_prime(self, t):
        """d alpha_t / dt."""
        x, is_t, scalar = _float64(t)
        return _back(self._alpha_prime(x, torch if is_t else np), is_t, scalar, t if is_t else None)

    def loss_weight(self, t):
        """w(t) = -alpha'_t / (1 - alpha_t) (1/t for the linear schedule), formed in float64."""
        x, is_t, scalar = _float64(t)
        w = -self._alpha_prime(x, torch if is_t else np) / (1.0 - self._clipped_alpha(x, is_t))
        return _back(w, is_t, scalar, t if is_t else None)

    def forward(self, t):
        return self.alpha(t)


class LinearSchedule(Schedule):
    """alpha_t = 1 - t."""

    name = "linear"

    def _alpha(self, t, xp):
        return 1.0 - t

    def _alpha_prime(self, t, xp):
        return -xp.ones_like(t)


class CosineSchedule(Schedule):
    """alpha_t = 1 - cos(pi/2 (1 - t)): few units revealed at first, many at the end."""

    name = "cosine"

    def _alpha(self, t, xp):
        return 1.0 - xp.cos(math.pi / 2 * (1.0 - t))

    def _alpha_prime(self, t, xp):
        return -math.pi / 2 * xp.sin(math.pi / 2 * (1.0 - t))


class GeometricSchedule(Schedule):
    """The geometric noise of SEDD (Lou et al. 2023), normalised to alpha_0 = 1, alpha_1 = 0: the total noise
    sigma(t) = sigma_min^(1-t) sigma_max^t grows geometrically and
    alpha_t = (exp(-sigma(t)) - exp(-sigma_max)) / (exp(-sigma_min) - exp(-sigma_max)): units stay clean for a
    long time, then go fast (the reverse process reveals most units in its first steps)."""

    name = "geometric"
    SIGMA_MIN, SIGMA_MAX = 1e-3, 20.0

    def _sigma(self, t, xp):
        return self.SIGMA_MIN ** (1.0 - t) * self.SIGMA_MAX ** t

    def _norm(self):
        return math.exp(-self.SIGMA_MIN) - math.exp(-self.SIGMA_MAX)

    def _alpha(self, t, xp):
        return (xp.exp(-self._sigma(t, xp)) - math.exp(-self.SIGMA_MAX)) / self._norm()

    def _alpha_prime(self, t, xp):
        sigma = self._sigma(t, xp)  # d sigma / dt = sigma log(sigma_max / sigma_min)
        return -sigma * math.log(self.SIGMA_MAX / self.SIGMA_MIN) * xp.exp(-sigma) / self._norm()


SCHEDULE_CLASSES = {c.name: c for c in (LinearSchedule, CosineSchedule, GeometricSchedule)}
SCHEDULES = tuple(SCHEDULE_CLASSES)
_INSTANCES = {name: cls() for name, cls in SCHEDULE_CLASSES.items()}


def get(name: str | Schedule) -> Schedule:
    """The schedule of that name (a Schedule passes through); a clear error for an unknown one."""
    if isinstance(name, Schedule):
        return name
    if name not in _INSTANCES:
        raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
    return _INSTANCES[name]


# ------------------------------------------------- the Gaussian variant's log-SNR schedule


def gamma_of(t, gamma0: float, gamma1: float):
    """gamma(t) = gamma0 + (gamma1 - gamma0) t, the log of sigma^2 / alpha^2 (minus the log-SNR; VDM)."""
    return gamma0 + (gamma1 - gamma0) * t


def alpha_sigma(gamma):
    """(alpha, sigma) with alpha^2 = sigmoid(-gamma), sigma^2 = sigmoid(gamma): variance preserving."""
    if isinstance(gamma, torch.Tensor):
        return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()
    g = np.asarray(gamma, dtype=np.float64)
    a, s = np.sqrt(1.0 / (1.0 + np.exp(g))), np.sqrt(1.0 / (1.0 + np.exp(-g)))
    return (float(a), float(s)) if a.ndim == 0 else (a, s)


# ------------------------------------------------------------------- time sampling


def low_discrepancy_u(batch: int, generator=None) -> torch.Tensor:
    """u_b = (u_0 + b / B) mod 1, u_0 ~ U(0, 1): one uniform per batch element, evenly spread."""
    u0 = torch.rand((), generator=generator)
    return (u0 + torch.arange(batch) / batch) % 1.0


def sample_times(batch: int, generator=None, lo: float = 0.0, hi: float = 1.0) -> torch.Tensor:
    """The time sampler of every training loss: t_b = lo + (hi - lo) u_b with low-discrepancy u_b
    (lower-variance losses than independent draws; MDLM, VDM)."""
    u = low_discrepancy_u(batch, generator)
    return u if (lo, hi) == (0.0, 1.0) else lo + (hi - lo) * u


def time_grid(steps: int) -> np.ndarray:
    """steps + 1 equally spaced times from t = 1 (noise) down to t = 0 (data)."""
    if steps < 1:
        raise ValueError("the number of steps must be at least 1")
    return np.linspace(1.0, 0.0, steps + 1)


@lru_cache(maxsize=16)
def _proposal_cdf(gamma0: float, gamma1: float, mix: float, mu: float, tau: float) -> tuple[np.ndarray, np.ndarray]:
    """(grid in t, the proposal's CDF on it) for proposal_times (computed once per proposal; read-only)."""
    g = np.linspace(0.0, 1.0, 4097)  # grid in t
    gam = gamma0 + (gamma1 - gamma0) * g
    dens = mix + (1 - mix) * (gamma1 - gamma0) * np.exp(-0.5 * ((gam - mu) / tau) ** 2) / (tau * math.sqrt(2 * math.pi))
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(g))])
    cdf /= cdf[-1]
    g.flags.writeable = cdf.flags.writeable = False
    return g, cdf


def proposal_times(u, gamma0: float, gamma1: float, mix: float, mu: float, tau: float):
    """(t, q(t)): t = F^{-1}(u) for u in [0, 1], where gamma(t) has the density
    q(gamma) = mix / (gamma1 - gamma0) + (1 - mix) N(gamma; mu, tau^2) (truncated to [gamma0, gamma1]),
    its CDF interpolated linearly on a grid; q(t) is the exact (piecewise constant) density of
    the t drawn, so E_q[f(t) / q(t)] = int_0^1 f(t) dt without bias. mix = 1: uniform t."""
    u = torch.as_tensor(u, dtype=torch.float64)
    if mix >= 1.0:
        return u, torch.ones_like(u)
    g, cdf = _proposal_cdf(float(gamma0), float(gamma1), float(mix), float(mu), float(tau))
    t = np.interp(u.numpy(), cdf, g)
    b = np.clip(np.searchsorted(g, t, side="right") - 1, 0, len(g) - 2)
    q = (cdf[b + 1] - cdf[b]) / (g[b + 1] - g[b])  # slope of the interpolated CDF
    return torch.as_tensor(t), torch.as_tensor(q)
