"""The interfaces every variant implements. Everything outside the variant modules (the CLI, the
comparison, training, the pages) reaches a variant only through them:

- `Variant`, what every variant has, toy or real (variants/real.py): a sampler (`make_sampler`) built
  from its config class, whose declared options are what a page draws as controls; `trajectory` and
  `sample` on top of it; branches (`branch`: continue a run from step k with pins and re-masks);
- `ToyVariant`, a variant trained on the toy language (one module each: masked.py, uniform.py,
  gaussian.py, registered in registry.VARIANTS): the denoiser (`build_model`), the forward process
  (`corrupt`), the training `loss`, the bound (`bound`) and one `EvalReport` (`evaluate`), the Forward
  page's view of z_t (`forward_view`, `schedule_curve`), its default number of steps, vocabulary, legend
  states and the page texts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch

from dlm_core import schedules
from dlm_core.sampling.branching import Edits, check_parting_step, splice
from dlm_core.sampling.sampler import Sampler, SamplerConfig, run_trajectory, sample_batched
from dlm_core.toy_language import UNITS
from dlm_core.trajectory import Trajectory
from dlm_core.variants.evaluate import EvalReport, EvalSettings, sampled_cells


@dataclass(frozen=True)
class PageText:
    """What the pages say about a variant, in plain words first (equations in `*_how`)."""

    intro: str  # one or two sentences above the Reverse page's stage
    reverse_how: str  # Markdown with LaTeX: how one reverse step works
    prediction: str  # what the per-position distribution at step {k} is
    forward_how: str  # Markdown with LaTeX: the forward process
    forward_marginals: str = ""  # caption of the per-position distribution of z_t
    notice: str = ""  # one plain line under the stage / the token × step grid: what to notice
    pin: str = ""  # what holding a position at a unit (a pin) means for this variant, in one sentence


class Variant(ABC):
    """What every variant has, toy or real: its sampler and the runs made with it."""

    name: str
    default_steps: int  # what a page starts with
    config_class: type[SamplerConfig]
    sampler_class: type[Sampler]  # built as sampler_class(model, config, x_init=..., batch=...)
    mask_id: int | None = None  # the absorbing state, if the variant has one
    vocab: tuple[str, ...] = UNITS  # id -> text of the ids its samplers emit
    legend: tuple[str, ...] = ()  # the cell states (render/palette.STATES) its trajectories use

    # ------------------------------------------------------------------------- sampling

    def make_sampler(self, model, config: SamplerConfig, x_init=None, batch: int = 1) -> Sampler:
        """A sampler over `batch` sequences (or over x_init, a starting canvas)."""
        return self.sampler_class(model, config, x_init=x_init, batch=batch)

    def sampler_config(self, steps: int | None = None, seed: int = 0, **options) -> SamplerConfig:
        """The config with this variant's defaults; a clear error for an option it does not take."""
        return self.config_class.build(self.name, steps=self.default_steps if steps is None else int(steps),
                                       seed=int(seed), **options)

    def trajectory(self, model, steps: int | None = None, seed: int = 0, x_init=None,
                   on_step: Callable | None = None, **options) -> Trajectory:
        """One sequence through the sampler, one record per step (`on_step(record, sampler)` streams)."""
        sampler = self.make_sampler(model, self.sampler_config(steps, seed, **options), x_init=x_init)
        return run_trajectory(sampler, self.name, list(self.vocab), on_step)

    def sample(self, model, n: int, steps: int | None = None, seed: int = 0, **options) -> torch.Tensor:
        """n unconditional samples (n, L), in chunks seeded seed + chunk start."""
        config = self.sampler_config(steps, seed, **options)
        return sample_batched(lambda cfg, b: self.make_sampler(model, cfg, batch=b), n, config)

    # ------------------------------------------------------------ editing a run: branches

    def state_at(self, traj: Trajectory, k: int) -> torch.Tensor:
        """The sampler state after k steps of a trajectory (1, L): the ids (Gaussian: z_t)."""
        return torch.tensor([traj.tokens_at(k)], dtype=torch.long)

    def forget(self, model, state: torch.Tensor, positions: list[int], t: float,
               generator: torch.Generator) -> torch.Tensor:
        """The state with `positions` sent back to noise at time t (a re-mask). A variant that does not
        say how refuses re-masks (pins and new seeds still work)."""
        if positions:
            raise ValueError(f"the {self.name} variant cannot re-mask a position")
        return state

    def check_edits(self, traj: Trajectory, edits: Edits) -> None:
        """A clear ValueError for edits this variant cannot make on this run (any position, here)."""
        return None

    def continuation_sampler(self, model, config: SamplerConfig, state: torch.Tensor, traj: Trajectory) -> Sampler:
        """The sampler that continues `traj` from the edited `state` (config.start_step = the parting step)."""
        return self.make_sampler(model, config, x_init=state)

    def finish_branch(self, model, branch: Trajectory, parent: Trajectory) -> Trajectory:
        """What a branch carries beyond its records (a real model: its vocabulary and decoded texts)."""
        return branch

    def branch(self, model, traj: Trajectory, k: int, edits: Edits, seed: int,
               on_step: Callable | None = None, label: str = "") -> Trajectory:
        """Continue `traj` from step k with `edits` (pins, re-masks) and its own seed, as a branch
        that shares the first k steps (sampling/branching.py). `on_step(record, sampler)` streams."""
        k = check_parting_step(traj, k)
        edits.check(traj.length)
        self.check_edits(traj, edits)
        config = replace(self.config_class.from_settings(traj.settings), seed=int(seed),
                         pins=tuple(edits.pins.items()), start_step=k)
        generator = torch.Generator().manual_seed(int(seed) + 7919)  # the re-mask draws' own stream
        t_k = float(schedules.time_grid(traj.n_steps)[k])
        state = self.forget(model, self.state_at(traj, k), list(edits.remask), t_k, generator)
        sampler = self.continuation_sampler(model, config, state, traj)
        return self.finish_branch(model, splice(traj, k, sampler, edits, on_step, label), traj)


class ToyVariant(Variant):
    """A variant trained on the toy language: its denoiser, forward process, loss, exact evaluation and
    the Forward page's view."""

    family: str = "diffusion"  # "diffusion", or "autoregressive" for the baseline that writes left to right
    min_steps: int = 1  # the fewest steps its sampler can write a sentence in (autoregressive: one per unit)
    forward_schedules: tuple[str, ...] = ("linear",)  # alpha_t choices of its forward process
    train_defaults: dict = {}  # TrainConfig overrides
    exact_nelbo: bool = False  # whether `bound` is exact (no standard error)
    text: PageText

    # ------------------------------------------------------------------ model and training

    @abstractmethod
    def build_model(self, cfg) -> torch.nn.Module:
        """The denoiser of a training.TrainConfig."""

    @abstractmethod
    def corrupt(self, model, x0: torch.Tensor, t: torch.Tensor, generator=None, schedule: str = "linear"):
        """z_t ~ q(z_t | x0) for a batch x0 (B, L) at times t (B,)."""

    @staticmethod
    @abstractmethod
    def loss(model, x0: torch.Tensor, schedule: str = "linear", generator=None) -> torch.Tensor:
        """The training loss of a batch, nats per sentence (a variant sets its module's function)."""

    def objective(self, cfg) -> Callable:
        """The training loss of a recipe (training.TrainConfig) as `fn(model, x0, generator)`: the variant's `loss`
        with the recipe's schedule and targets. A lab choice that changes the loss (docs/maths.md section 10) is
        the masked (and, for the task, the autoregressive) variant's; any other refuses it clearly."""
        choices = {"weighting": "k", "time_input": False, "task": "pretrain"}
        taken = [name for name, default in choices.items() if getattr(cfg, name, default) != default]
        if taken:
            raise ValueError(f"the {self.name} variant has no {' / '.join(taken)} choice (the lab varies the masked "
                             "variant's loss)")
        extra = {} if cfg.targets == "exact" else {"targets": cfg.targets}  # a variant's loss may not take targets
        return lambda model, x0, generator: self.loss(model, x0, cfg.schedule, generator, **extra)

    def training_bound(self, model, cfg) -> float:
        """What a training's live curve measures (bits per unit): the bound, with a small Monte-Carlo setting where
        it is not exact. A variant with lab choices measures the bound of what the recipe trained for."""
        return self.nelbo(model, EvalSettings(n_t=32))[0]

    # ----------------------------------------------------------------------- evaluation

    @abstractmethod
    def bound(self, model, settings: EvalSettings) -> tuple[float, float, dict]:
        """(NELBO, its standard error, details) in bits per unit over the exact data distribution."""

    def nelbo(self, model, settings: EvalSettings | None = None) -> tuple[float, float]:
        value, stderr, _ = self.bound(model, settings or EvalSettings())
        return value, stderr

    def evaluate(self, model, settings: EvalSettings | None = None) -> EvalReport:
        """The bound and, for every step budget, the sampled quality of the sampler."""
        settings = settings or EvalSettings()
        torch.set_num_threads(1)
        value, stderr, details = self.bound(model, settings)
        cells = sampled_cells(self, model, settings, **self.sampled_options(settings))
        return EvalReport(variant=self.name, nelbo_bits_per_unit=value, nelbo_stderr_bits=stderr,
                          nelbo_exact=self.exact_nelbo, by_steps=cells, settings=asdict(settings), details=details)

    def exact_validity(self, model, steps: int, schedule: str = "linear") -> float | None:
        """The exact valid mass of the `steps`-step sampler, for variants that can compute it (else None)."""
        return None

    def sampled_options(self, settings: EvalSettings) -> dict:
        """Sampler options of the evaluation's (and the comparison's) sampled cells."""
        return {}

    # --------------------------------------------------------------------- Forward page

    @abstractmethod
    def forward_view(self, model, x0, t: float, seed: int = 0, schedule: str = "linear") -> dict:
        """One draw of z_t for a sentence x0 and what the Forward page shows of it: `tokens` (the
        units shown), `changed` (positions the noise changed), `alpha`, and `marginals` (L, V')
        or the 2-D embedding view (`units_2d`, `scaled_2d`, `clean_2d`)."""

    def schedule_curve(self, model, schedule: str = "linear", n: int = 201) -> dict:
        """The noise level over t in [0, 1]: {"t": t, "curves": {label: values}}."""
        t = np.linspace(0.0, 1.0, n)
        return {"t": t, "curves": {"α_t (still clean)": schedules.get(schedule).alpha(t)}}

    def needs_model_for_forward(self) -> bool:
        """Whether forward_view needs the trained model (e.g. its embedding table)."""
        return False

    def embedding_projection(self, model):
        """(units_2d, projection) for variants that live in an embedding space, else None."""
        return None
