"""The stepwise reverse-process sampler for masked diffusion models (toy and real).

Like a diffusers scheduler: build it with a model, settings and a starting canvas;
each `step()` advances one reverse step and returns what it did, which becomes one
`StepRecord` of the Trajectory. Maths: ../shared/maths.md section 1.

Strategies
- `ancestral`: MDLM's reverse step t -> s; each masked position is revealed with
  probability (alpha_s - alpha_t) / (1 - alpha_t), its unit drawn from p_theta(. | z_t).
- `random`, `low-confidence`, `margin`, `entropy`: LLaDA's fixed-count sampler; each
  step draws a candidate per masked position (Gumbel-max at temperature tau), scores
  the masked positions and commits the k best, k spread evenly over the steps of the
  current semi-autoregressive block.

The model is any callable mapping ids (B, N) to logits (B, N, vocab) with attributes
`mask_id` and `takes_time` (False: its output depends on the ids only, so the last
output can be reused when nothing changed).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from . import schedules
from .trajectory import StepRecord, Trajectory

STRATEGIES = ("ancestral", "random", "low-confidence", "margin", "entropy")
NEG_INF = float("-inf")


@dataclass
class SamplerConfig:
    steps: int = 6
    strategy: str = "low-confidence"
    temperature: float = 1.0
    block_length: int | None = None  # None: one block over the whole generated part
    schedule: str = "linear"  # ancestral only
    cfg_scale: float = 0.0  # unsupervised classifier-free guidance w (0: off)
    seed: int = 0
    top_k: int = 13  # how many of each position's predicted units a record keeps
    suppress_ids: tuple[int, ...] = ()  # e.g. end-of-sequence ids given -inf logits
    reuse_output: bool = True  # reuse the last model output when nothing changed
    remask_eta: float = 0.0  # ReMDM "cap" remasking for the ancestral strategy (0: plain MDLM)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["suppress_ids"] = list(self.suppress_ids)
        return d


def spread_counts(n: int, steps: int) -> list[int]:
    """n commits over `steps` steps as evenly as possible, earlier steps taking the remainder."""
    base, rem = divmod(n, steps)
    return [base + (1 if j < rem else 0) for j in range(steps)]


def plan_blocks(gen_length: int, steps: int, block_length: int | None) -> tuple[int, int, int]:
    """(block_length, number of blocks, steps per block); clear errors for bad settings."""
    if steps < 1:
        raise ValueError("the number of steps must be at least 1")
    if gen_length < 1:
        raise ValueError("there is nothing to generate (generation length 0)")
    block = gen_length if block_length in (None, 0) else int(block_length)
    if block < 1 or gen_length % block != 0:
        raise ValueError(f"the generation length ({gen_length}) must be divisible by the block length ({block})")
    n_blocks = gen_length // block
    if steps % n_blocks != 0:
        raise ValueError(f"the number of steps ({steps}) must be divisible by the number of blocks ({n_blocks})")
    return block, n_blocks, steps // n_blocks


@dataclass
class StepResult:
    """What one step did, for the whole batch (tensors on the CPU)."""

    step: int
    t: float
    s: float
    x: torch.Tensor  # (B, N) ids after the step
    committed: torch.Tensor  # (B, N) bool
    confidence: torch.Tensor  # (B, N) float64, NaN where not scored
    topk_probs: torch.Tensor  # (B, N, k) the predicted distribution's top k (SUBS) ...
    topk_ids: torch.Tensor  # (B, N, k) ... and their ids
    model_called: bool
    remasked: torch.Tensor | None = None  # (B, N) bool: re-masked at this step (ReMDM)

    def record(self, b: int = 0, top_k: int | None = None) -> StepRecord:
        k = self.topk_ids.shape[-1] if top_k is None else min(top_k, self.topk_ids.shape[-1])
        p, ids = self.topk_probs[b, :, :k].tolist(), self.topk_ids[b, :, :k].tolist()
        conf = self.confidence[b].tolist()
        return StepRecord(
            step=self.step,
            t=self.t,
            s=self.s,
            tokens=self.x[b].tolist(),
            committed=torch.nonzero(self.committed[b]).flatten().tolist(),
            remasked=[] if self.remasked is None else torch.nonzero(self.remasked[b]).flatten().tolist(),
            confidence=[None if np.isnan(c) else float(c) for c in conf],
            # positions that were not masked have no prediction (SUBS copies them through): []
            topk_ids=[row if row[0] >= 0 else [] for row in ids],
            topk_probs=[[round(v, 6) for v in row] if i_row[0] >= 0 else [] for row, i_row in zip(p, ids)],
            model_called=self.model_called,
        )


class MaskedSampler:
    """Reverse diffusion for a masked model, one `step()` at a time."""

    def __init__(self, model, config: SamplerConfig, x_init: torch.Tensor, gen_start: int = 0,
                 gen_length: int | None = None):
        if config.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {config.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if config.temperature < 0:
            raise ValueError("the temperature must be >= 0")
        self.model = model
        self.cfg = config
        self.mask_id = model.mask_id
        self.device = getattr(model, "device", torch.device("cpu"))
        self.x = x_init.clone().to(self.device)
        if self.x.dim() == 1:
            self.x = self.x[None]
        self.gen_start = gen_start
        self.gen_length = self.x.shape[1] - gen_start if gen_length is None else gen_length
        self.block_length, self.n_blocks, self.steps_per_block = plan_blocks(
            self.gen_length, config.steps, config.block_length
        )
        if config.strategy == "ancestral" and self.n_blocks > 1:
            raise ValueError("the ancestral strategy runs over the whole sequence: use one block")
        if config.remask_eta and config.strategy != "ancestral":
            raise ValueError("ReMDM remasking applies to the ancestral strategy")
        if not 0.0 <= config.remask_eta <= 1.0:
            raise ValueError("the remasking eta must lie in [0, 1]")
        # prompt / pinned positions: everything not masked at the start
        self.fixed = self.x != self.mask_id
        self.generator = torch.Generator(device=self.device).manual_seed(int(config.seed))
        self.k = 0  # steps taken
        self.grid = schedules.time_grid(config.steps)
        self._last_x: torch.Tensor | None = None
        self._last_logits: torch.Tensor | None = None
        self._counts: torch.Tensor | None = None
        self._predictions: dict | None = None
        self.model_calls = 0
        self.reused = 0

    @property
    def done(self) -> bool:
        return self.k >= self.cfg.steps

    # ------------------------------------------------------------ the model

    def _logits(self) -> tuple[torch.Tensor, bool]:
        """Guided logits (B, N, vocab), [MASK] and suppressed ids at -inf; reused when nothing changed."""
        if (
            self.cfg.reuse_output
            and not getattr(self.model, "takes_time", False)
            and self._last_x is not None
            and torch.equal(self._last_x, self.x)
        ):
            self.reused += 1
            return self._last_logits, False
        c = self.model(self.x).float()
        if self.cfg.cfg_scale and self.fixed.any():
            # unsupervised CFG: the unconditional pass masks the prompt / pinned positions
            u = self.model(torch.where(self.fixed, torch.full_like(self.x, self.mask_id), self.x)).float()
            c = u + (self.cfg.cfg_scale + 1.0) * (c - u)  # u + (w + 1)(c - u)
            self.model_calls += 1
        self.model_calls += 1
        c[..., self.mask_id] = NEG_INF  # SUBS: never predict [MASK]
        for i in self.cfg.suppress_ids:
            c[..., i] = NEG_INF
        self._last_x, self._last_logits = self.x.clone(), c
        self._predictions = None
        return c, True

    def _predict(self, logits: torch.Tensor, masked: torch.Tensor) -> dict:
        """The predicted distribution at the masked positions only (committed ones are copied through):
        its top k and log-normaliser. Probabilities are formed in float64 from the float32 logits.
        Cached while nothing changes (the model output is then reused too)."""
        if self._predictions is None:
            rows = masked.reshape(-1).nonzero().squeeze(1)
            lg = logits.reshape(-1, logits.shape[-1]).index_select(0, rows)  # (M, vocab) float32
            k = min(max(self.cfg.top_k, 2), lg.shape[-1])
            top_v, top_i = torch.topk(lg, k, dim=-1)
            lse = torch.logsumexp(lg, -1).double()  # log sum_v exp(logit_v)
            top_p = torch.exp(top_v.double() - lse[:, None])  # softmax of the top k, float64
            self._predictions = {"rows": rows, "logits": lg, "lse": lse, "top_p": top_p, "top_i": top_i}
        return self._predictions

    def _candidates(self, pred: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """x0-hat per masked position and its probability: argmax at tau = 0 (the top-1), else
        Gumbel-max argmax(logits / tau + g) computed in float64."""
        tau = self.cfg.temperature
        if tau == 0:
            return pred["top_i"][:, 0], pred["top_p"][:, 0]
        lg = pred["logits"].double()
        u = torch.rand(lg.shape, generator=self.generator, device=lg.device, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
        cand = (lg / tau + gumbel).argmax(-1)
        return cand, torch.exp(lg.gather(-1, cand[:, None])[:, 0] - pred["lse"])

    # ------------------------------------------------------------- one step

    def step(self) -> StepResult:
        if self.done:
            raise RuntimeError("the sampler has already taken all its steps")
        cfg = self.cfg
        logits, called = self._logits()
        masked = self.x == self.mask_id
        pred = self._predict(logits, masked)
        rows = pred["rows"]
        cand_m, p_cand_m = self._candidates(pred)
        shape = self.x.shape
        nan = torch.full(shape, float("nan"), dtype=torch.float64, device=self.x.device)
        cand = self.x.reshape(-1).clone().index_copy_(0, rows, cand_m).view(shape)
        p_cand = nan.reshape(-1).clone().index_copy_(0, rows, p_cand_m).view(shape)
        t, s = float(self.grid[self.k]), float(self.grid[self.k + 1])

        remask = torch.zeros_like(masked)
        if cfg.strategy == "ancestral":
            a_t, a_s = schedules.alpha(t, cfg.schedule), schedules.alpha(s, cfg.schedule)
            # ReMDM "cap": sigma_t = min(eta, (1 - alpha_s) / alpha_t); sigma = 0 is plain MDLM
            sigma = min(cfg.remask_eta, (1.0 - a_s) / a_t) if a_t > 0 else 0.0
            # reveal probability (alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t)
            q = 1.0 if self.k == cfg.steps - 1 else (a_s - (1.0 - sigma) * a_t) / (1.0 - a_t)
            draw = torch.rand(shape, generator=self.generator, device=masked.device, dtype=torch.float64)
            commit = masked & (draw < q)
            if sigma > 0:  # each revealed (not prompt / pinned) unit is re-masked with probability sigma_t
                d2 = torch.rand(shape, generator=self.generator, device=masked.device, dtype=torch.float64)
                remask = ~masked & ~self.fixed & (d2 < sigma)
            conf = p_cand
        else:
            if cfg.strategy == "low-confidence":
                score_m = p_cand_m
            elif cfg.strategy == "margin":  # top-1 minus top-2 probability (Dream)
                score_m = pred["top_p"][:, 0] - pred["top_p"][:, 1]
            elif cfg.strategy == "entropy":  # minus the entropy of the predicted distribution (Dream)
                logp = pred["logits"].double() - pred["lse"][:, None]
                score_m = (logp.exp() * logp.clamp_min(-1e300)).sum(-1)
            else:
                score_m = None
            score = nan.reshape(-1).clone().index_copy_(0, rows, score_m).view(shape) if score_m is not None else None
            commit, conf = self._fixed_count_commit(score, masked)

        self.x = torch.where(commit, cand, self.x)
        self.x = torch.where(remask, torch.full_like(self.x, self.mask_id), self.x)
        self.k += 1
        if self.done:  # anything still masked takes its argmax
            left = self.x == self.mask_id
            if left.any():
                self.x = torch.where(left, logits.argmax(-1), self.x)
                commit = commit | left
        k = min(cfg.top_k, pred["top_p"].shape[-1])
        top_p = torch.zeros(shape + (k,), dtype=torch.float64, device=self.x.device)
        top_i = torch.full(shape + (k,), -1, dtype=torch.long, device=self.x.device)
        top_p.view(-1, k).index_copy_(0, rows, pred["top_p"][:, :k])
        top_i.view(-1, k).index_copy_(0, rows, pred["top_i"][:, :k])
        return StepResult(
            step=self.k,
            t=t,
            s=s,
            x=self.x.cpu(),
            committed=commit.cpu(),
            confidence=conf.cpu(),
            topk_probs=top_p.cpu(),
            topk_ids=top_i.cpu(),
            model_called=called,
            remasked=remask.cpu(),
        )

    def _fixed_count_commit(self, score, masked):
        """Commit the k highest-scoring masked positions of the current block (score None: random)."""
        j = self.k % self.steps_per_block  # step within the block
        b = self.k // self.steps_per_block
        lo = self.gen_start + b * self.block_length
        hi = lo + self.block_length
        in_block = torch.zeros_like(masked)
        in_block[:, lo:hi] = True
        if j == 0:  # counts of this block come from its masked count when it starts
            n_masked = (masked & in_block).sum(-1).tolist()
            self._counts = torch.tensor([spread_counts(n, self.steps_per_block) for n in n_masked])
        if score is None:  # random: a uniform number per position
            score = torch.rand(masked.shape, generator=self.generator, device=masked.device, dtype=torch.float64)
        eligible = masked & in_block
        score = torch.where(eligible, score, torch.full_like(score, NEG_INF))
        order = torch.argsort(score, dim=-1, descending=True, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        n_commit = self._counts[:, j].to(rank.device)[:, None]
        commit = (rank < n_commit) & eligible
        conf = torch.where(eligible, score, torch.full_like(score, float("nan")))
        return commit, conf


def sample(model, config: SamplerConfig, x_init: torch.Tensor, gen_start: int = 0) -> torch.Tensor:
    """Run all steps without keeping records; returns the final ids (B, N)."""
    config = SamplerConfig(**{**config.to_dict(), "top_k": 1, "suppress_ids": tuple(config.suppress_ids)})
    s = MaskedSampler(model, config, x_init, gen_start)
    while not s.done:
        s.step()
    return s.x.cpu()


def generate_trajectory(
    model,
    config: SamplerConfig,
    x_init: torch.Tensor,
    gen_start: int = 0,
    gen_length: int | None = None,
    variant: str = "masked",
    on_step=None,
    vocab: list[str] | dict | None = "model",
) -> Trajectory:
    """Run a single sequence through the sampler and keep one record per step.

    `on_step(record, sampler)` is called as soon as each step is computed (streaming).
    `vocab="model"` copies the model's (small) vocabulary into the trajectory.
    """
    x_init = x_init if x_init.dim() == 2 else x_init[None]
    s = MaskedSampler(model, config, x_init[:1], gen_start, gen_length)
    traj = Trajectory(
        variant=variant,
        vocab=list(model.vocab) if vocab == "model" else (vocab or {}),
        mask_id=model.mask_id,
        initial=x_init[0].tolist(),
        settings=config.to_dict(),
        fixed=torch.nonzero(s.fixed[0]).flatten().tolist(),
        block_length=s.block_length,
        gen_start=gen_start,
    )
    while not s.done:
        rec = s.step().record(0)
        traj.records.append(rec)
        if on_step is not None:
            on_step(rec, s)
    return traj
