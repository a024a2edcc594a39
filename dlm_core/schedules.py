"""Noise schedules alpha_t: the probability that a unit is still clean at time t.

alpha_0 = 1 (clean data), alpha_1 = 0 (pure noise). w(t) = -alpha'_t / (1 - alpha_t)
is the weight of the masked (MDLM) continuous-time NELBO.
"""

from __future__ import annotations

import math

import numpy as np

SCHEDULES = ("linear", "cosine")


def alpha(t, schedule: str = "linear"):
    """alpha_t for a float or numpy array t in [0, 1]."""
    t = np.asarray(t, dtype=np.float64)
    if schedule == "linear":
        out = 1.0 - t  # alpha_t = 1 - t
    elif schedule == "cosine":
        out = 1.0 - np.cos(math.pi / 2 * (1.0 - t))  # alpha_t = 1 - cos(pi/2 (1 - t))
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
    out = np.clip(out, 0.0, 1.0)
    return float(out) if out.ndim == 0 else out


def alpha_prime(t, schedule: str = "linear"):
    """d alpha_t / dt."""
    t = np.asarray(t, dtype=np.float64)
    if schedule == "linear":
        out = -np.ones_like(t)
    elif schedule == "cosine":
        out = -math.pi / 2 * np.sin(math.pi / 2 * (1.0 - t))
    else:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
    return float(out) if out.ndim == 0 else out


def nelbo_weight(t, schedule: str = "linear"):
    """w(t) = -alpha'_t / (1 - alpha_t); 1/t for the linear schedule."""
    return -alpha_prime(t, schedule) / (1.0 - alpha(t, schedule))


def low_discrepancy_u(batch: int, generator=None):
    """u_b = (u_0 + b / B) mod 1, u_0 ~ U(0, 1): one uniform per batch, evenly spread (lower-variance losses)."""
    import torch

    u0 = torch.rand((), generator=generator)
    return (u0 + torch.arange(batch) / batch) % 1.0


def time_grid(steps: int) -> np.ndarray:
    """steps + 1 equally spaced times from t = 1 (noise) down to t = 0 (data)."""
    if steps < 1:
        raise ValueError("the number of steps must be at least 1")
    return np.linspace(1.0, 0.0, steps + 1)
