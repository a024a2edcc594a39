"""The reverse process of masked diffusion, for the toy model and real ones (docs/maths.md section 1).

`MaskedSampler` keeps the sampler contract of `sampler.py`: built from a
`MaskedSamplerConfig`, one `step()` at a time, each returning a `MaskedStepOutput`.

Strategies
- `ancestral`: MDLM's reverse step t -> s; each masked position is revealed with
  probability (alpha_s - alpha_t) / (1 - alpha_t), its unit drawn from p_theta(. | z_t).
  Optional ReMDM "cap" remasking (eta > 0) masks revealed units again.
- `random`, `low-confidence`, `margin`, `entropy`: LLaDA's fixed-count sampler; each
  step draws a candidate per masked position (Gumbel-max at temperature tau), scores
  the masked positions (the `SCORES` table) and commits the k best, k spread evenly over
  the steps of the current semi-autoregressive block.

The model is any callable mapping ids (B, N) to logits (B, N, vocab) with attributes
`mask_id` and `takes_time` (False: its output depends on the ids only, so the last
output can be reused when nothing changed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import schedules
from .sampler import Sampler, SamplerConfig, StepOutput, positions

NEG_INF = float("-inf")


# ------------------------------------------------------- scores of the fixed-count sampler
# Each maps the predictions at the masked positions (see MaskedSampler._predict) and the
# probability of each candidate to a score; the highest scores are committed first.


def _low_confidence(pred: dict, p_cand: torch.Tensor) -> torch.Tensor:
    return p_cand  # p_theta(x0-hat | z_t) of the drawn candidate (LLaDA)


def _margin(pred: dict, p_cand: torch.Tensor) -> torch.Tensor:
    return pred["top_p"][:, 0] - pred["top_p"][:, 1]  # top-1 minus top-2 probability (Dream)


def _entropy(pred: dict, p_cand: torch.Tensor) -> torch.Tensor:
    logp = pred["logits"].double() - pred["lse"][:, None]
    return (logp.exp() * logp.clamp_min(-1e300)).sum(-1)  # minus the entropy of p_theta (Dream)


SCORES = {"random": None, "low-confidence": _low_confidence, "margin": _margin, "entropy": _entropy}
STRATEGIES = ("ancestral", *SCORES)


@dataclass
class MaskedSamplerConfig(SamplerConfig):
    strategy: str = "low-confidence"
    temperature: float = 1.0  # Gumbel-max temperature tau of the candidates (0: argmax)
    block_length: int | None = None  # None: one block over the whole generated part
    schedule: str = "linear"  # alpha_t of the ancestral strategy
    cfg_scale: float = 0.0  # unsupervised classifier-free guidance w (0: off)
    suppress_ids: tuple[int, ...] = ()  # e.g. end-of-sequence ids given -inf logits
    reuse_output: bool = True  # reuse the last model output when nothing changed
    remask_eta: float = 0.0  # ReMDM "cap" remasking for the ancestral strategy (0: plain MDLM)

    strategies = STRATEGIES

    def __post_init__(self):
        super().__post_init__()
        if self.temperature < 0:
            raise ValueError("the temperature must be >= 0")
        schedules.get(self.schedule)
        if self.remask_eta and self.strategy != "ancestral":
            raise ValueError("ReMDM remasking applies to the ancestral strategy")
        if not 0.0 <= self.remask_eta <= 1.0:
            raise ValueError("the remasking eta must lie in [0, 1]")
        self.suppress_ids = tuple(self.suppress_ids)


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
class MaskedStepOutput(StepOutput):
    committed: torch.Tensor | None = None  # (B, N) bool: revealed at this step
    remasked: torch.Tensor | None = None  # (B, N) bool: masked again at this step (ReMDM)

    def extras(self, b: int) -> dict:
        return {"committed": positions(self.committed[b]), "remasked": positions(self.remasked[b])}


class MaskedSampler(Sampler):
    """Reverse diffusion for a masked model, one `step()` at a time."""

    def __init__(self, model, config: MaskedSamplerConfig, x_init: torch.Tensor, gen_start: int = 0,
                 gen_length: int | None = None):
        self.model = model
        self.config = config
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
        self.schedule = schedules.get(config.schedule)
        pin_pos, pin_ids = self.pin_tensors(self.x.shape[1], getattr(model, "vocab_size", 1 << 62))
        self.x[:, pin_pos.to(self.device)] = pin_ids.to(self.device)  # a pin is written now and never masked
        if config.start_step == 0:  # prompt / pinned positions: everything not masked at the start
            self.fixed = self.x != self.mask_id
        else:  # a continued run: the prompt and the pins (the units committed so far may be re-masked)
            self.fixed = torch.zeros_like(self.x, dtype=torch.bool)
            self.fixed[:, :gen_start] = True
            self.fixed[:, pin_pos.to(self.device)] = True
        self.initial = self.x.cpu().clone()
        self.generator = torch.Generator(device=self.device).manual_seed(int(config.seed))
        self.k = config.start_step  # steps taken (a branch continues from its parting step)
        self.grid = schedules.time_grid(config.steps)
        self._last_x: torch.Tensor | None = None
        self._last_logits: torch.Tensor | None = None
        self._counts: torch.Tensor | None = None
        self._predictions: dict | None = None
        self.model_calls = 0
        self.reused = 0

    def trajectory_fields(self) -> dict:
        return {**super().trajectory_fields(), "fixed": positions(self.fixed[0]), "block_length": self.block_length,
                "gen_start": self.gen_start}

    # ------------------------------------------------------------ the model

    def _logits(self) -> tuple[torch.Tensor, bool]:
        """Guided logits (B, N, vocab), [MASK] and suppressed ids at -inf; reused when nothing changed."""
        cfg = self.config
        if (cfg.reuse_output and not getattr(self.model, "takes_time", False) and self._last_x is not None
                and torch.equal(self._last_x, self.x)):
            self.reused += 1
            return self._last_logits, False
        c = self.model(self.x).float()
        if cfg.cfg_scale and self.fixed.any():
            # unsupervised CFG: the unconditional pass masks the prompt / pinned positions
            u = self.model(torch.where(self.fixed, torch.full_like(self.x, self.mask_id), self.x)).float()
            c = u + (cfg.cfg_scale + 1.0) * (c - u)  # u + (w + 1)(c - u)
            self.model_calls += 1
        self.model_calls += 1
        c[..., self.mask_id] = NEG_INF  # SUBS: never predict [MASK]
        for i in cfg.suppress_ids:
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
            k = min(max(self.config.top_k, 2), lg.shape[-1])
            top_v, top_i = torch.topk(lg, k, dim=-1)
            lse = torch.logsumexp(lg, -1).double()  # log sum_v exp(logit_v)
            top_p = torch.exp(top_v.double() - lse[:, None])  # softmax of the top k, float64
            self._predictions = {"rows": rows, "logits": lg, "lse": lse, "top_p": top_p, "top_i": top_i}
        return self._predictions

    def _candidates(self, pred: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """x0-hat per masked position and its probability: argmax at tau = 0 (the top-1), else
        Gumbel-max argmax(logits / tau + g) computed in float64."""
        tau = self.config.temperature
        if tau == 0:
            return pred["top_i"][:, 0], pred["top_p"][:, 0]
        lg = pred["logits"].double()
        u = torch.rand(lg.shape, generator=self.generator, device=lg.device, dtype=torch.float64)
        gumbel = -torch.log(-torch.log(u.clamp_min(1e-300)))
        cand = (lg / tau + gumbel).argmax(-1)
        return cand, torch.exp(lg.gather(-1, cand[:, None])[:, 0] - pred["lse"])

    def _scatter(self, values_m: torch.Tensor, rows: torch.Tensor, fill, dtype=None) -> torch.Tensor:
        """Per-masked-position values (M, ...) back onto the (B, N, ...) canvas, `fill` elsewhere."""
        shape = self.x.shape + values_m.shape[1:]
        out = torch.full(shape, fill, dtype=dtype or values_m.dtype, device=self.x.device)
        out.view(-1, *values_m.shape[1:]).index_copy_(0, rows, values_m.to(out.dtype))
        return out

    # ------------------------------------------------------------- one step

    def step(self) -> MaskedStepOutput:
        self._check_not_done()
        cfg, shape = self.config, self.x.shape
        # 1. p_theta(x0 | z_t) at the masked positions (SUBS: never [MASK]; the rest is copied through)
        logits, called = self._logits()
        masked = self.x == self.mask_id
        pred = self._predict(logits, masked)
        rows = pred["rows"]
        # 2. a candidate x0-hat per masked position and its probability
        cand_m, p_cand_m = self._candidates(pred)
        cand = self.x.reshape(-1).clone().index_copy_(0, rows, cand_m).view(shape)
        p_cand = self._scatter(p_cand_m, rows, float("nan"), torch.float64)
        t, s = float(self.grid[self.k]), float(self.grid[self.k + 1])
        # 3. which masked positions are revealed now (and, with ReMDM, which revealed ones are masked again)
        remask = torch.zeros_like(masked)
        if cfg.strategy == "ancestral":
            commit, remask = self._ancestral_commit(masked, t, s)
            conf = p_cand
        else:
            score_fn = SCORES[cfg.strategy]
            score = None if score_fn is None else self._scatter(score_fn(pred, p_cand_m), rows, float("nan"),
                                                                torch.float64)
            commit, conf = self._fixed_count_commit(score, masked)
        # 4. z_s: revealed positions take their candidate, re-masked ones go back to [MASK]
        self.x = torch.where(commit, cand, self.x)
        self.x = torch.where(remask, torch.full_like(self.x, self.mask_id), self.x)
        self.k += 1
        if self.done:  # 5. at s = 0 anything still masked takes its argmax
            left = self.x == self.mask_id
            if left.any():
                self.x = torch.where(left, logits.argmax(-1), self.x)
                commit = commit | left
        k = min(cfg.top_k, pred["top_p"].shape[-1])
        return MaskedStepOutput(
            step=self.k, t=t, s=s, x=self.x.cpu(),
            topk_ids=self._scatter(pred["top_i"][:, :k], rows, -1).cpu(),
            topk_probs=self._scatter(pred["top_p"][:, :k], rows, 0.0).cpu(),
            confidence=conf.cpu(), model_called=called, committed=commit.cpu(), remasked=remask.cpu(),
        )

    def _ancestral_commit(self, masked: torch.Tensor, t: float, s: float) -> tuple[torch.Tensor, torch.Tensor]:
        """MDLM's reveal draw, with ReMDM's cap remasking when eta > 0."""
        cfg, shape = self.config, self.x.shape
        a_t, a_s = self.schedule.alpha(t), self.schedule.alpha(s)
        # ReMDM "cap": sigma_t = min(eta, (1 - alpha_s) / alpha_t); sigma = 0 is plain MDLM
        sigma = min(cfg.remask_eta, (1.0 - a_s) / a_t) if a_t > 0 else 0.0
        # reveal probability (alpha_s - (1 - sigma_t) alpha_t) / (1 - alpha_t); everything at the last step
        q = 1.0 if self.k == cfg.steps - 1 else (a_s - (1.0 - sigma) * a_t) / (1.0 - a_t)
        draw = torch.rand(shape, generator=self.generator, device=masked.device, dtype=torch.float64)
        commit = masked & (draw < q)
        remask = torch.zeros_like(masked)
        if sigma > 0:  # each revealed (not prompt / pinned) unit is masked again with probability sigma_t
            d2 = torch.rand(shape, generator=self.generator, device=masked.device, dtype=torch.float64)
            remask = ~masked & ~self.fixed & (d2 < sigma)
        return commit, remask

    def _fixed_count_commit(self, score, masked):
        """Commit the k highest-scoring masked positions of the current block (score None: random)."""
        j = self.k % self.steps_per_block  # step within the block
        b = self.k // self.steps_per_block
        lo = self.gen_start + b * self.block_length
        in_block = torch.zeros_like(masked)
        in_block[:, lo:lo + self.block_length] = True
        if j == 0 or self._counts is None:  # the block's counts: its masked count, spread over its steps left
            n_masked = (masked & in_block).sum(-1).tolist()
            self._counts = torch.tensor([spread_counts(n, self.steps_per_block - j) for n in n_masked])
            self._counts_from = j
        if score is None:  # random: a uniform number per position
            score = torch.rand(masked.shape, generator=self.generator, device=masked.device, dtype=torch.float64)
        eligible = masked & in_block
        score = torch.where(eligible, score, torch.full_like(score, NEG_INF))
        order = torch.argsort(score, dim=-1, descending=True, stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        n_commit = self._counts[:, j - self._counts_from].to(rank.device)[:, None]
        commit = (rank < n_commit) & eligible
        conf = torch.where(eligible, score, torch.full_like(score, float("nan")))
        return commit, conf
