"""The one contract every reverse-process sampler keeps (like a diffusers scheduler).

- It is built from a config dataclass, a subclass of `SamplerConfig`. Fields that a page
  may draw as a control carry an `Option` in their metadata (`options.option(...)`), so a page
  reads a variant's controls from its config class instead of writing them itself.
- `done` says whether all steps are taken; `step()` advances one reverse step t -> s and
  returns one `StepOutput`: the fields every variant has, plus small per-variant extensions
  whose `extras()` add their own record fields. `to_record()` (one body for all) turns it
  into the `StepRecord` of a `Trajectory`.
- `run_trajectory` turns any sampler into a Trajectory; `sample_batched` draws many samples
  in chunks with one seed scheme, for the CLI, the comparison and the evaluation alike.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import torch

from dlm_core.sampling.options import Option
from dlm_core.trajectory import StepRecord, Trajectory

CHUNK = 4096  # samples per batch in sample_batched; the chunk starting at sample j uses seed + j


@dataclass
class SamplerConfig:
    """Settings every sampler has. Variants subclass it with their own options."""

    steps: int = 6  # reverse steps T, on schedules.time_grid(T)
    seed: int = 0  # the sampler's random stream
    top_k: int = 13  # how many of each position's predicted units a record keeps
    strategy: str = "ancestral"  # which positions change at a step (the masked variant has more)
    # (position, id) pairs the user holds fixed; what "held" means is the variant's (docs/maths.md
    # section 6): masked - the unit is written and never masked (as a prompt is); uniform - the
    # position is set to the unit after every step; Gaussian - its state is replaced at every step by
    # a draw from q(z_s | x = unit) (replacement-style inpainting).
    pins: tuple[tuple[int, int], ...] = ()
    # the step the sampler starts at: 0 from pure noise, k > 0 continues a run (a branch) whose
    # state after k steps is the sampler's x_init; steps k+1..T are then taken on the same time grid
    start_step: int = 0

    strategies = ("ancestral",)  # class attribute: the strategies this sampler implements

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError("the number of steps must be at least 1")
        if self.strategy not in self.strategies:
            raise ValueError(f"unknown strategy {self.strategy!r}; this sampler takes: {', '.join(self.strategies)}")
        self.pins = normalise_pins(self.pins)
        if not 0 <= int(self.start_step) < self.steps:
            raise ValueError(f"a run of {self.steps} steps can continue from step 0 to {self.steps - 1}, "
                             f"not {self.start_step}")
        self.start_step = int(self.start_step)

    def to_dict(self) -> dict:
        return {k: [list(p) if isinstance(p, tuple) else p for p in v] if isinstance(v, tuple) else v
                for k, v in asdict(self).items()}

    @classmethod
    def from_settings(cls, settings: dict) -> SamplerConfig:
        """The config a trajectory's `settings` were made with (other keys, e.g. the model, ignored)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in settings.items() if k in names})

    @classmethod
    def options(cls) -> list[tuple[str, Option, Any]]:
        """(field name, Option, default) of every setting a page draws, in field order."""
        return [(f.name, f.metadata["option"], f.default) for f in fields(cls) if "option" in f.metadata]

    @classmethod
    def build(cls, name: str = "this", /, **settings) -> SamplerConfig:
        """The config from keyword settings; a clear error naming any setting this sampler lacks."""
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            takes = ", ".join(n for n in known if n not in ("steps", "seed", "top_k"))
            raise ValueError(f"the {name} sampler has no option(s) {unknown}; it takes: {takes}")
        return cls(**settings)


def normalise_pins(pins) -> tuple[tuple[int, int], ...]:
    """Pins as sorted (position, id) pairs, from a dict or pairs; a clear error for a position
    pinned twice or a negative number."""
    pairs = list(pins.items()) if isinstance(pins, dict) else [tuple(p) for p in pins]
    try:
        pairs = sorted((int(i), int(u)) for i, u in pairs)
    except (TypeError, ValueError) as e:
        raise ValueError(f"a pin is a (position, unit) pair of integers ({e})") from e
    if any(i < 0 or u < 0 for i, u in pairs):
        raise ValueError("pinned positions and units are counted from 0")
    if len({i for i, _ in pairs}) != len(pairs):
        raise ValueError("a position can only be pinned to one unit")
    return tuple(pairs)


@dataclass
class StepOutput:
    """What one step did, for the whole batch (CPU tensors). Extensions add fields and `extras`."""

    step: int  # 1-based index of the step just taken
    t: float  # time before the step
    s: float  # time after the step
    x: torch.Tensor  # (B, N) ids after the step (Gaussian: each position's argmax unit)
    topk_ids: torch.Tensor  # (B, N, k) the predicted distribution's top k ids, -1 where nothing was predicted
    topk_probs: torch.Tensor  # (B, N, k) ... and their probabilities (float64)
    confidence: torch.Tensor  # (B, N) float64 score of each position, NaN where not scored
    model_called: bool = True  # False when the last model output was reused

    def extras(self, b: int) -> dict:
        """Per-variant fields of the record of sequence b."""
        return {}

    def topk_lists(self, b: int, top_k: int | None = None) -> tuple[list, list]:
        """Sequence b's top k ids and probabilities per position, as lists (-1 where nothing was predicted)."""
        k = self.topk_ids.shape[-1] if top_k is None else min(top_k, self.topk_ids.shape[-1])
        return self.topk_ids[b, :, :k].tolist(), self.topk_probs[b, :, :k].tolist()

    def to_record(self, b: int = 0, top_k: int | None = None) -> StepRecord:
        ids, probs = self.topk_lists(b, top_k)
        return StepRecord(
            step=self.step,
            t=self.t,
            s=self.s,
            tokens=self.x[b].tolist(),
            confidence=[None if math.isnan(c) else float(c) for c in self.confidence[b].tolist()],
            # a position with no prediction at this step (e.g. already unmasked: SUBS copies it): []
            topk_ids=[row if row and row[0] >= 0 else [] for row in ids],
            topk_probs=[[round(v, 6) for v in row] if i_row and i_row[0] >= 0 else []
                        for row, i_row in zip(probs, ids)],
            model_called=self.model_called,
            **self.extras(b),
        )


def positions(mask: torch.Tensor) -> list[int]:
    """The indices where a (N,) bool tensor is true."""
    return torch.nonzero(mask).flatten().tolist()


def top_k_of(probs: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(ids, probabilities) of the k largest entries of each distribution (..., V)."""
    p, ids = torch.topk(probs, min(k, probs.shape[-1]), dim=-1)
    return ids, p


class Sampler(ABC):
    """Reverse diffusion one `step()` at a time. Subclasses set `config`, `x` (B, N) (the
    current ids), `initial` (B, N) (the ids before the first step) and `k` (steps taken)."""

    config: SamplerConfig
    x: torch.Tensor
    initial: torch.Tensor
    k: int = 0
    mask_id: int | None = None  # the absorbing state, for variants that have one

    @property
    def done(self) -> bool:
        return self.k >= self.config.steps

    @abstractmethod
    def step(self) -> StepOutput:
        """Advance one reverse step."""

    def trajectory_fields(self) -> dict:
        """The Trajectory's header for sequence 0 (extended by samplers that have more)."""
        return {"mask_id": self.mask_id, "initial": self.initial[0].tolist(), "settings": self.config.to_dict()}

    def pin_tensors(self, n_positions: int, n_ids: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(positions, ids) of the config's pins as long tensors, checked against the sequence length
        and the ids this sampler can hold (a clear error otherwise)."""
        pins = self.config.pins
        for i, u in pins:
            if i >= n_positions:
                raise ValueError(f"position {i + 1} cannot be pinned: the sequence has {n_positions} positions")
            if u >= n_ids or u == self.mask_id:
                raise ValueError(f"id {u} cannot be pinned: it is not a unit this model writes")
        pos = torch.tensor([i for i, _ in pins], dtype=torch.long)
        ids = torch.tensor([u for _, u in pins], dtype=torch.long)
        return pos, ids

    def _check_not_done(self) -> None:
        if self.done:
            raise RuntimeError("the sampler has already taken all its steps")


def run_trajectory(sampler: Sampler, variant: str, vocab, on_step: Callable | None = None) -> Trajectory:
    """Run sequence 0 of a sampler to the end, one StepRecord per step.

    `on_step(record, sampler)` is called as soon as each step is computed (streaming)."""
    header = sampler.trajectory_fields()
    header["settings"] = {**header["settings"], "variant": variant}
    traj = Trajectory(variant=variant, vocab=vocab, **header)
    while not sampler.done:
        rec = sampler.step().to_record(0, sampler.config.top_k)
        traj.records.append(rec)
        if on_step is not None:
            on_step(rec, sampler)
    return traj


def sample_batched(make_sampler: Callable[[SamplerConfig, int], Sampler], n: int, config: SamplerConfig,
                   chunk: int = CHUNK) -> torch.Tensor:
    """n samples (n, N), in chunks of `chunk`: the chunk that starts at sample j runs with seed
    config.seed + j (its own stream), so (n, seed) always gives the same samples."""
    out = []
    for start in range(0, n, chunk):
        cfg = replace(config, seed=config.seed + start, top_k=1)  # records are not kept: top-1 is enough
        sampler = make_sampler(cfg, min(chunk, n - start))
        while not sampler.done:
            sampler.step()
        out.append(sampler.x.cpu().long())
    return torch.cat(out) if out else torch.zeros((0, 0), dtype=torch.long)
