"""The reverse process of masked diffusion, for the toy model and real ones (docs/maths.md section 1).

`MaskedSampler` keeps the sampler contract of `sampler.py`: built from a
`MaskedSamplerConfig`, one `step()` at a time, each returning a `MaskedStepOutput`.

Strategies
- `ancestral`: MDLM's reverse step t -> s; each masked position is revealed with
  probability (alpha_s - alpha_t) / (1 - alpha_t), its unit drawn from p_theta(. | z_t).
  Optional ReMDM "cap" remasking (eta > 0) masks revealed units again.
- `random`, `low-confidence`, `margin`, `entropy`: LLaDA's fixed-count sampler; each
  step draws a candidate per masked position (from softmax(logits / tau)), scores the
  masked positions (the `SCORES` table) and commits the k best, k spread evenly over the
  steps of the current semi-autoregressive block.
- `threshold`: confidence-threshold parallel decoding (Fast-dLLM, Wu et al. 2025); each
  step commits every masked position of the current block whose confidence (the
  low-confidence score) is at least `threshold`, and at least the most confident one, so
  the number of steps (forward passes) depends on the text: `steps` is only the most it
  may take (the last allowed step commits everything left), and the run is `done` as soon
  as nothing is masked.

Candidates are drawn exactly from softmax(logits / tau) by inverse CDF (`Prediction.draw`):
one uniform per row against float32 chunk masses that bound the exact float64 weights
exp((logit - max) / tau), with an exact acceptance within the chosen chunk; only for the rows
that need one: every masked position when the candidates are scored, only the committed
ones for `random` and `ancestral` (whose choice of positions does not look at the
candidates). tau = 0 is the argmax (the lowest id among equal maxima).

The model is any callable mapping ids (B, N) to logits (B, N, vocab) with attributes
`mask_id` and `takes_time` (False: its output depends on the ids only, so the last
output can be reused when nothing changed).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from dlm_core import schedules
from dlm_core.sampling.block_cache import CACHE_MODES, BlockCache
from dlm_core.sampling.masked_prediction import Prediction, topk_rows
from dlm_core.sampling.options import option
from dlm_core.sampling.sampler import Sampler, SamplerConfig, StepOutput, positions

NEG_INF = float("-inf")


# ------------------------------------------------------- scores of the fixed-count sampler
# Each maps the prediction at the masked positions (a `Prediction`) and the probability of
# each candidate to a score; the highest scores are committed first.


def _low_confidence(pred: Prediction, p_cand: torch.Tensor) -> torch.Tensor:
    return p_cand  # p_theta(x0-hat | z_t) of the drawn candidate (LLaDA)


def _margin(pred: Prediction, p_cand: torch.Tensor) -> torch.Tensor:
    p = pred.top_probs(2)[1]
    return p[:, 0] - p[:, 1]  # top-1 minus top-2 probability (Dream)


def _entropy(pred: Prediction, p_cand: torch.Tensor) -> torch.Tensor:
    logp = pred.logits.double() - pred.lse[:, None]
    return (logp.exp() * logp.clamp_min(-1e300)).sum(-1)  # minus the entropy of p_theta (Dream)


SCORES = {"random": None, "low-confidence": _low_confidence, "margin": _margin, "entropy": _entropy}
STRATEGIES = ("ancestral", *SCORES)  # the strategies that take exactly `steps` steps
THRESHOLD = "threshold"  # confidence-threshold parallel decoding: as many steps as the text needs
ALL_STRATEGIES = (*STRATEGIES, THRESHOLD)
BLOCKWISE = (*SCORES, THRESHOLD)  # the strategies that fill semi-autoregressive blocks


@dataclass
class MaskedSamplerConfig(SamplerConfig):
    strategy: str = "low-confidence"
    temperature: float = 1.0  # the candidates are drawn from softmax(logits / tau) (0: argmax)
    block_length: int | None = None  # None: one block over the whole generated part
    schedule: str = "linear"  # alpha_t of the ancestral strategy
    cfg_scale: float = 0.0  # unsupervised classifier-free guidance w (0: off)
    suppress_ids: tuple[int, ...] = ()  # e.g. end-of-sequence ids given -inf logits
    reuse_output: bool = True  # reuse the last model output when nothing changed
    remask_eta: float = 0.0  # ReMDM "cap" remasking for the ancestral strategy (0: plain MDLM)
    # threshold strategy: commit every position whose confidence is at least this (> 1: one per step)
    threshold: float = 0.9
    cache: str = option(
        "off", label="Block cache", choices=CACHE_MODES, when=("strategy", BLOCKWISE),
        help="Keep the keys and values of the prompt and finished blocks from each block's first pass; recompute "
             "the current block and what follows (prefix) or the current block only (dual) (Fast-dLLM). Exact for "
             "block-causal models, an approximation for bidirectional ones such as BERT.")

    strategies = ALL_STRATEGIES

    def __post_init__(self):
        super().__post_init__()
        if self.temperature < 0:
            raise ValueError("the temperature must be >= 0")
        schedules.get(self.schedule)
        if self.remask_eta and self.strategy != "ancestral":
            raise ValueError("ReMDM remasking applies to the ancestral strategy")
        if not 0.0 <= self.remask_eta <= 1.0:
            raise ValueError("the remasking eta must lie in [0, 1]")
        if not (isinstance(self.threshold, (int, float)) and math.isfinite(self.threshold) and self.threshold >= 0):
            raise ValueError(f"the confidence threshold must be a number >= 0, not {self.threshold!r}")
        self.threshold = float(self.threshold)
        self.suppress_ids = tuple(self.suppress_ids)
        if self.cache not in CACHE_MODES:
            raise ValueError(f"unknown block cache {self.cache!r}; one of: {', '.join(CACHE_MODES)}")
        if self.cache != "off" and self.cfg_scale:
            raise ValueError("the block cache does not combine with guidance (its unconditional pass would need a "
                             "cache of its own): turn one of them off")


def spread_counts(n: int, steps: int) -> list[int]:
    """n commits over `steps` steps as evenly as possible, earlier steps taking the remainder."""
    base, rem = divmod(n, steps)
    return [base + (1 if j < rem else 0) for j in range(steps)]


def plan_blocks(gen_length: int, steps: int, block_length: int | None,
                fixed_steps: bool = True) -> tuple[int, int, int]:
    """(block_length, number of blocks, steps per block); clear errors for bad settings. Without
    `fixed_steps` (the threshold strategy) a block takes as many steps as it needs (0 returned)."""
    if steps < 1:
        raise ValueError("the number of steps must be at least 1")
    if gen_length < 1:
        raise ValueError("there is nothing to generate (generation length 0)")
    block = gen_length if block_length in (None, 0) else int(block_length)
    if block < 1 or gen_length % block != 0:
        raise ValueError(f"the generation length ({gen_length}) must be divisible by the block length ({block})")
    n_blocks = gen_length // block
    if not fixed_steps:
        return block, n_blocks, 0
    if steps % n_blocks != 0:
        raise ValueError(f"the number of steps ({steps}) must be divisible by the number of blocks ({n_blocks})")
    return block, n_blocks, steps // n_blocks


@dataclass
class MaskedStepOutput(StepOutput):
    """`topk_ids` / `topk_probs` are made from `predicted` when first read, and a record
    (`to_record(b)`) makes only its own sequence's: a batch drawn for its samples never pays
    for a top k over the vocabulary that no one reads."""

    committed: torch.Tensor | None = None  # (B, N) bool: revealed at this step
    remasked: torch.Tensor | None = None  # (B, N) bool: masked again at this step (ReMDM)
    recomputed: tuple[int, int] | None = None  # block cache on: the span [lo, hi) this step's pass computed
    # (b, k) -> (ids, probs) of sequence b's top k, (N, k) (b None: the whole batch, (B, N, k))
    predicted: Callable | None = field(default=None, repr=False, compare=False)

    def extras(self, b: int) -> dict:
        out = {"committed": positions(self.committed[b]), "remasked": positions(self.remasked[b])}
        if self.recomputed is not None:
            out["recomputed"] = list(range(*self.recomputed))
        return out

    def topk_lists(self, b: int, top_k: int | None = None) -> tuple[list, list]:
        if self.__dict__.get("topk_ids") is None and self.predicted is not None:
            ids, probs = self.predicted(b, top_k)
            return ids.tolist(), probs.tolist()
        return super().topk_lists(b, top_k)


def _made_when_read(name: str) -> property:
    """A top-k field of MaskedStepOutput: the whole batch's, from `predicted`, when first read."""

    def get(self):
        if self.__dict__.get(name) is None and self.predicted is not None:
            self.__dict__["topk_ids"], self.__dict__["topk_probs"] = self.predicted(None, None)
        return self.__dict__.get(name)

    def put(self, value):
        self.__dict__[name] = value

    return property(get, put)


MaskedStepOutput.topk_ids = _made_when_read("topk_ids")
MaskedStepOutput.topk_probs = _made_when_read("topk_probs")


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
        self.by_threshold = config.strategy == THRESHOLD
        self.block_length, self.n_blocks, self.steps_per_block = plan_blocks(
            self.gen_length, config.steps, config.block_length, fixed_steps=not self.by_threshold
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
        # the block of each position of the generated part (n_blocks elsewhere: never in a block)
        rel = torch.arange(self.x.shape[1], device=self.device) - gen_start
        self._block_of = torch.where((rel >= 0) & (rel < self.gen_length),
                                     rel.div(self.block_length, rounding_mode="floor"), self.n_blocks)
        self._last_x: torch.Tensor | None = None
        self._last_logits: torch.Tensor | None = None
        self._counts: torch.Tensor | None = None
        self._predictions: Prediction | None = None
        self.model_calls = 0
        self.reused = 0
        self.positions_computed = 0  # over all passes: positions whose hidden states were computed
        self.cache = BlockCache.of(model, config.cache, gen_start, self.block_length)  # None when off
        self._span: tuple[int, int] | None = None

    @property
    def done(self) -> bool:
        """All steps taken; for the threshold strategy also as soon as nothing is masked."""
        if self.k >= self.config.steps:
            return True
        return self.by_threshold and not bool((self.x == self.mask_id).any())

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
            self._span = (0, 0)
            return self._last_logits, False
        if self.cache is not None:  # the block cache: a full pass at a block's first step, else part of it
            c, self._span = self.cache.logits(self.x, self._current_block(), self._last_logits)
            c = c.float()
            self.positions_computed += self._span[1] - self._span[0]
        else:
            c = self.model(self.x).float()
            self.positions_computed += self.x.shape[1]
        if cfg.cfg_scale and self.fixed.any():
            # unsupervised CFG: the unconditional pass masks the prompt / pinned positions
            u = self.model(torch.where(self.fixed, torch.full_like(self.x, self.mask_id), self.x)).float()
            c = u + (cfg.cfg_scale + 1.0) * (c - u)  # u + (w + 1)(c - u)
            self.model_calls += 1
            self.positions_computed += self.x.shape[1]
        self.model_calls += 1
        c[..., self.mask_id] = NEG_INF  # SUBS: never predict [MASK]
        for i in cfg.suppress_ids:
            c[..., i] = NEG_INF
        self._last_x, self._last_logits = self.x.clone(), c
        if self._predictions is not None:  # the last step's draw weights are not needed any more
            self._predictions.release()
        self._predictions = None
        return c, True

    def _current_block(self) -> int:
        """The block the next step fills: by the step count (fixed count), the leftmost block with a mask
        (threshold, over the batch), or 0 (ancestral: one block)."""
        if self.by_threshold:
            masked = self.x == self.mask_id
            return min(int(torch.where(masked, self._block_of, self.n_blocks).min()), self.n_blocks - 1)
        if self.config.strategy == "ancestral":
            return 0
        return self.k // self.steps_per_block

    def _top_k(self, pred: Prediction, b: int | None, top_k: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, probabilities) of the top k predictions of sequence b (N, k), or of the whole batch
        (B, N, k) for b None; -1 and 0 where nothing was predicted. Made when a record asks for them."""
        width = min(self.config.top_k, pred.logits.shape[-1])
        k = width if top_k is None else min(top_k, width)
        rows, (n_seq, n_pos) = pred.rows, self.x.shape
        if b is None:
            lo, hi, base, shape = 0, len(rows), 0, (n_seq, n_pos)
        else:  # the rows are sorted: sequence b's are one slice
            lo, hi = torch.searchsorted(rows, torch.tensor([b * n_pos, (b + 1) * n_pos], device=rows.device)).tolist()
            base, shape = b * n_pos, (n_pos,)
        if lo == 0 and hi == len(rows):
            ids, probs = pred.top_probs(k)
        else:
            v, ids = topk_rows(pred.logits[lo:hi], k)
            probs = (v.double() - pred.lse[lo:hi, None]).exp_()
        at = rows[lo:hi] - base
        out_ids = torch.full((*shape, k), -1, dtype=torch.long, device=rows.device)
        out_p = torch.zeros((*shape, k), dtype=torch.float64, device=rows.device)
        out_ids.view(-1, k).index_copy_(0, at, ids)
        out_p.view(-1, k).index_copy_(0, at, probs)
        return out_ids.cpu(), out_p.cpu()

    def _candidates(self, pred: Prediction, sel: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x0-hat for each masked position (or the positions `sel` of the prediction's rows) and its
        probability p_theta(x0-hat | z_t): the argmax at tau = 0, else an exact draw from
        softmax(logits / tau) (`Prediction.draw`: one uniform per row from the sampler's stream)."""
        tau = self.config.temperature
        if tau == 0:
            cand = pred.argmax() if sel is None else pred.argmax()[sel]
            return cand, pred.probs_of(cand, sel)
        return pred.draw(tau, self.generator, sel)

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
        if self._predictions is None:  # a single sequence (a page's run) will read its record's top k
            self._predictions = Prediction(logits, masked, top=max(cfg.top_k, 2) if shape[0] == 1 else 0)
        pred = self._predictions
        rows = pred.rows
        if self.by_threshold:  # no time grid: t and s are the masked fractions before and after the step
            t = s = None
        else:
            t, s = float(self.grid[self.k]), float(self.grid[self.k + 1])
        # 2. which masked positions are revealed now (and, with ReMDM, which revealed ones are masked again),
        # and 3. a candidate x0-hat for each position that needs one, with its probability
        remask = torch.zeros_like(masked)
        if cfg.strategy in ("ancestral", "random"):  # the positions do not depend on the candidates
            if cfg.strategy == "ancestral":
                commit, remask = self._ancestral_commit(masked, t, s)
            else:
                commit, conf = self._fixed_count_commit(None, masked)
            sel = commit.reshape(-1).index_select(0, rows).nonzero().squeeze(1)  # committed, among the rows
            cand_m, p_cand_m = self._candidates(pred, sel)
            cand_rows = rows.index_select(0, sel)
            if cfg.strategy == "ancestral":
                conf = self._scatter(p_cand_m, cand_rows, float("nan"), torch.float64)
        else:  # every masked position is scored with its candidate
            cand_m, p_cand_m = self._candidates(pred)
            cand_rows = rows
            p_cand = self._scatter(p_cand_m, rows, float("nan"), torch.float64)
            if self.by_threshold:
                commit, conf = self._threshold_commit(p_cand, masked)  # the low-confidence score
            else:
                score_fn = SCORES[cfg.strategy]
                score = p_cand if score_fn is _low_confidence else self._scatter(score_fn(pred, p_cand_m), rows,
                                                                                 float("nan"), torch.float64)
                commit, conf = self._fixed_count_commit(score, masked)
        # 4. z_s: revealed positions take their candidate, re-masked ones go back to [MASK]
        cand = self.x.reshape(-1).clone().index_copy_(0, cand_rows, cand_m).view(shape)
        self.x = torch.where(commit, cand, self.x)
        if cfg.remask_eta:
            self.x = torch.where(remask, torch.full_like(self.x, self.mask_id), self.x)
        self.k += 1
        if self.done:  # 5. at s = 0 anything still masked takes its argmax
            left = self.x == self.mask_id
            if left.any():
                self.x = torch.where(left, logits.argmax(-1), self.x)
                commit = commit | left
        if self.by_threshold:
            t, s = self._masked_fraction(masked), self._masked_fraction(self.x == self.mask_id)
        out = MaskedStepOutput(
            step=self.k, t=t, s=s, x=self.x.cpu(), topk_ids=None, topk_probs=None,
            confidence=conf.cpu(), model_called=called, committed=commit.cpu(), remasked=remask.cpu(),
            recomputed=self._span if self.cache is not None else None,
            predicted=lambda b, top_k: self._top_k(pred, b, top_k),
        )
        if shape[0] == 1:  # a single sequence: its record's top k is made now, and the prediction let go
            out.topk_ids, out.topk_probs = self._top_k(pred, None, None)
            out.predicted = None
        return out

    def _masked_fraction(self, masked: torch.Tensor) -> float:
        """The share of the generated part still masked (over the batch): the threshold strategy's time."""
        part = masked[:, self.gen_start:self.gen_start + self.gen_length]
        return float(part.sum()) / max(part.numel(), 1)

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
            n_masked = (masked & in_block).sum(-1)
            left = self.steps_per_block - j  # spread_counts(n, left) for every sequence at once
            base, rem = n_masked.div(left, rounding_mode="floor"), n_masked.remainder(left)
            self._counts = base[:, None] + (torch.arange(left, device=masked.device) < rem[:, None])
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

    def _threshold_commit(self, score: torch.Tensor, masked: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fast-dLLM: in each sequence's current block (its leftmost block with a masked position), commit
        every masked position whose score is at least the threshold, and always the highest-scoring one
        (the first on ties, as the fixed-count order). On the last step `steps` allows, everything left."""
        if self.k == self.config.steps - 1:
            eligible = masked
        else:
            block = torch.where(masked, self._block_of, self.n_blocks).amin(-1, keepdim=True)
            eligible = masked & (self._block_of == block)
        score = torch.where(eligible, score, NEG_INF)
        best = score.argmax(-1, keepdim=True)  # the first maximum
        commit = eligible & (score >= self.config.threshold)
        commit.scatter_(1, best, eligible.gather(1, best))
        conf = torch.where(eligible, score, float("nan"))
        return commit, conf
