"""The forward (noising) process of each variant at one time t, for the Forward page.

`forward_view` returns plain numbers (no plotting): a sampled corruption of the sentence,
the per-position distribution of z_t given x, and the schedule value at t.
"""

from __future__ import annotations

import numpy as np
import torch

from . import gaussian, masked, schedules, uniform
from .toy_language import MASK_ID, V

PRESETS = (
    "dog s are our friend s",
    "our dog s are your s",
    "your cat is our friend [PAD]",
    "we are their s",
    "you are your cat",
)


def _with_states(view: dict, variant: str) -> dict:
    """The colour state of each position of the drawn z_t: masked / changed by the noise / intact."""
    view["states"] = ["mask" if variant == "masked" and u == MASK_ID else "changed" if i in view["changed"]
                      else "committed_earlier" for i, u in enumerate(view["tokens"])]
    return view


def forward_view(variant: str, x0: tuple[int, ...], t: float, seed: int = 0, schedule: str = "linear",
                 model=None) -> dict:
    """One corrupted sample z_t of x0 and the exact marginals q(z_t^i | x^i) at time t."""
    x = torch.as_tensor(x0, dtype=torch.long)[None]
    g = torch.Generator().manual_seed(int(seed))
    if variant == "masked":
        a = schedules.alpha(t, schedule)
        z = masked.corrupt(x, torch.tensor([t]), schedule, g)[0].tolist()
        marg = np.zeros((len(x0), V + 1))  # the last column is [MASK]
        marg[np.arange(len(x0)), list(x0)] = a
        marg[:, V] = 1.0 - a
        return _with_states({"alpha": a, "tokens": z, "marginals": marg,
                             "changed": [i for i, u in enumerate(z) if u == MASK_ID]}, variant)
    if variant == "uniform":
        a = schedules.alpha(t, "linear")
        z = uniform.corrupt(x, torch.tensor([t]), g)[0].tolist()
        return _with_states({"alpha": a, "tokens": z, "marginals": uniform.forward_marginals(x0, t),
                             "changed": [i for i, (u, v) in enumerate(zip(z, x0)) if u != v]}, variant)
    if variant == "gaussian":
        if model is None:
            raise ValueError("the Gaussian forward process needs the model's embedding table")
        out = gaussian.forward_sample(model, x0, t, seed)
        e2d, _ = gaussian.projection_2d(model)
        out.update(tokens=out["nearest"], units_2d=e2d, alpha2=out["alpha"] ** 2,
                   changed=[i for i, (u, v) in enumerate(zip(out["nearest"], x0)) if u != v])
        return _with_states(out, variant)
    raise ValueError(f"unknown variant {variant!r}")


def schedule_curve(variant: str, schedule: str = "linear", model=None, n: int = 201) -> dict:
    """The noise schedule over t in [0, 1]: alpha_t for masked / uniform, alpha^2 and sigma^2 for Gaussian."""
    t = np.linspace(0.0, 1.0, n)
    if variant == "gaussian":
        g0, g1 = (model.gamma0, model.gamma1) if model is not None else (gaussian.GAMMA0, gaussian.GAMMA1)
        gamma = g0 + (g1 - g0) * t
        a2 = 1.0 / (1.0 + np.exp(gamma))  # alpha^2 = sigmoid(-gamma)
        return {"t": t, "curves": {"α² (signal)": a2, "σ² (noise)": 1.0 - a2}}
    sched = schedule if variant == "masked" else "linear"
    return {"t": t, "curves": {"α_t (still clean)": schedules.alpha(t, sched)}}
