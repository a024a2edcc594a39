"""Stepping into a run: edit the state after step k and continue it as a branch (docs/maths.md section 6).

A branch of a trajectory from step k keeps the parent's first k steps exactly (the same
records), then a sampler built with `start_step = k` takes steps k+1..T on the same time grid
from the edited state. An edit is one of
- pin position i to unit u: held by the sampler through its config's `pins` (what "held"
  means is each variant's: written once for masked, set after every step for uniform, its
  state redrawn from q(z_s | x = u) for Gaussian);
- re-mask position i: it goes back to noise at time t_k (`Variant.forget`): [MASK] for masked,
  a uniform draw for uniform, the noise part of z_t alone for Gaussian; the sampler then
  fills it again;
- release a pin: the position is no longer held from step k on.

The splice is the same for the toy variants and for real models; only how the sampler is
built differs (`Variant.branch`, `hf_adapter.branch`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from dlm_core.sampling.sampler import Sampler, normalise_pins, run_trajectory
from dlm_core.trajectory import Trajectory

MAX_BRANCHES = 4  # branches a page keeps per run (the oldest goes first)


@dataclass
class Edits:
    """What the user changed at the parting step: the branch's pins (all of them, old and new)
    and the positions sent back to noise."""

    pins: dict[int, int] = field(default_factory=dict)  # position -> unit held from the parting step on
    remask: tuple[int, ...] = ()  # positions returned to noise at the parting step

    def __post_init__(self):
        self.pins = dict(normalise_pins(self.pins))
        self.remask = tuple(sorted({int(i) for i in self.remask}))
        both = sorted(set(self.pins) & set(self.remask))
        if both:
            raise ValueError(f"position(s) {[i + 1 for i in both]} are both pinned and re-masked: release the pin "
                             "to re-mask a position")

    def check(self, length: int) -> None:
        bad = sorted(i for i in (*self.pins, *self.remask) if not 0 <= i < length)
        if bad:
            raise ValueError(f"position(s) {[i + 1 for i in bad]} are outside the sequence of {length}")


def parent_pins(traj: Trajectory) -> dict[int, int]:
    """The pins a trajectory was sampled with (its last branch's, for a branch)."""
    return dict(normalise_pins(traj.settings.get("pins", ())))


def check_parting_step(traj: Trajectory, k: int) -> int:
    k = int(k)
    if not 0 <= k < traj.n_steps:
        raise ValueError(f"a branch parts at a step from 0 to {traj.n_steps - 1} (step {traj.n_steps} is the end: "
                         "there is no step left to take)")
    return k


def splice(parent: Trajectory, k: int, sampler: Sampler, edits: Edits, on_step: Callable | None = None,
           label: str = "") -> Trajectory:
    """Run `sampler` (built with start_step = k on the edited state) to the end and join it to the
    parent's first k steps: one trajectory, exported and replayed like any other."""
    tail = run_trajectory(sampler, parent.variant, parent.vocab, on_step)
    settings = {**parent.settings, **tail.settings}
    fixed = sorted({i for i in parent.fixed if i not in parent_pins(parent)} | set(edits.pins))
    before = parent_pins(parent)
    branch = {"from_step": k, "pins": [[i, u] for i, u in sorted(edits.pins.items())],
              "new_pins": [[i, u] for i, u in sorted(edits.pins.items()) if before.get(i) != u],
              "released": sorted(i for i in before if i not in edits.pins), "remasked": list(edits.remask),
              "seed": int(sampler.config.seed), "edited": tail.initial, "parent_seed": parent.settings.get("seed"),
              "label": label}
    return Trajectory(variant=parent.variant, vocab=parent.vocab, mask_id=parent.mask_id,
                      initial=list(parent.initial), records=list(parent.records[:k]) + tail.records,
                      settings=settings, fixed=fixed, block_length=parent.block_length, gen_start=parent.gen_start,
                      text_per_step=None, branch=branch)


def describe(traj: Trajectory) -> str:
    """One line naming a branch's edits, e.g. "from step 3: pos 2 = dog, pos 5 re-masked"."""
    b = traj.branch or {}
    parts = [f"pos {i + 1} = {traj.token_text(u)}" for i, u in b.get("new_pins", [])]
    parts += [f"pos {i + 1} re-masked" for i in b.get("remasked", [])]
    parts += [f"pos {i + 1} released" for i in b.get("released", [])]
    return f"from step {b.get('from_step', 0)}: " + (", ".join(parts) if parts else "no edit, new seed")
