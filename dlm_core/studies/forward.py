"""The forward (noising) process of any variant at one time t, for the Forward page.

`forward_view` returns plain numbers (no plotting): a sampled corruption of the sentence,
what the variant shows of it (Variant.forward_view), and the colour state of each position
in forward words: clean, or corrupted by the noise.
"""

from __future__ import annotations

import numpy as np

from dlm_core.trajectory import StepRecord, Trajectory
from dlm_core.variants.registry import get

# the Forward page's words for the stage's colours: the same colours, forward meanings
FORWARD_WORDS = {"committed_earlier": "clean (still the sentence's unit)", "committed_now": "corrupted at this t",
                 "mask": "corrupted earlier"}

PRESETS = (
    "dog s are our friend s",
    "our dog s are your s",
    "your cat is our friend [PAD]",
    "we are their s",
    "you are your cat",
)


def forward_view(variant: str, x0: tuple[int, ...], t: float, seed: int = 0, schedule: str = "linear",
                 model=None) -> dict:
    """One corrupted sample z_t of x0, its states and what the variant shows of it at time t."""
    v = get(variant)
    if model is None and v.needs_model_for_forward():
        raise ValueError(f"the {variant} forward process needs the trained model")
    view = v.forward_view(model, x0, t, seed=seed, schedule=schedule)
    view["states"] = ["mask" if v.mask_id is not None and u == v.mask_id else "changed" if i in view["changed"]
                      else "committed_earlier" for i, u in enumerate(view["tokens"])]
    return view


def schedule_curve(variant: str, schedule: str = "linear", model=None, n: int = 201) -> dict:
    """The noise schedule of a variant over t in [0, 1] (curves by label)."""
    return get(variant).schedule_curve(model, schedule, n)


def forward_sweep(variant: str, x0: tuple[int, ...], seed: int = 0, schedule: str = "linear", model=None,
                  n: int = 20) -> tuple[Trajectory, list[list[str]], np.ndarray]:
    """z_t of one sentence at t = 0, 1/n, ..., 1 with the same random draws at every t (so a position,
    once corrupted, stays corrupted as t grows), as a trajectory for the stage; with each position's
    forward state (clean / corrupted now / corrupted earlier) and the times."""
    v = get(variant)
    ts = np.linspace(0.0, 1.0, n + 1)
    views = [forward_view(variant, x0, float(t), seed, schedule, model) for t in ts]
    corrupted = [[state != "committed_earlier" for state in view["states"]] for view in views]
    states = [["committed_earlier"] * len(x0)]
    for k in range(1, n + 1):
        states.append(["committed_earlier" if not c else "mask" if corrupted[k - 1][i] else "committed_now"
                       for i, c in enumerate(corrupted[k])])
    traj = Trajectory(variant=variant, vocab=list(v.vocab), mask_id=v.mask_id, initial=list(views[0]["tokens"]),
                      settings={"forward": True, "seed": seed, "schedule": schedule})
    for k in range(1, n + 1):
        now = [i for i in range(len(x0)) if states[k][i] == "committed_now"]
        traj.records.append(StepRecord(step=k, t=float(ts[k - 1]), s=float(ts[k]), tokens=list(views[k]["tokens"]),
                                       changed=now))
    return traj, states, ts
