"""The autoregressive twin: the masked denoiser's transformer with a causal mask and shifted targets
(docs/maths.md section 9). The baseline every diffusion LM is measured against, on the same toy language.

Input: [BOS, x^1, ..., x^(L-1)] with BOS the [MASK] id (so the input vocabulary, the embedding and every
layer are the masked model's); output at position i: p_theta(x^i | x^<i) over the 13 units. Nothing else
differs from `denoiser.Denoiser`.

- Loss: the exact negative log-likelihood, -log p_theta(x) = sum_i -log p_theta(x^i | x^<i), nats per
  sentence; with exact targets (Rao-Blackwell, as the diffusion losses) the cross-entropy at position i is
  taken against the language's own p(x^i | x^<i) (`prefix_conditionals`): the same expectation.
- Likelihood: exact, one forward pass per sentence (`sentence_log_probs`), so its bound is the NLL itself
  (no ELBO) and its valid mass sum_{x in the language} p_theta(x) is exact too.
- Sampler (`ARSampler`): left to right, one unit per step, on the stage like any trajectory: the canvas
  starts all [MASK] (pins written in), and step k writes the leftmost unwritten position from
  softmax(logits / temperature). It takes exactly as many steps as there are positions to write (6 for a
  sentence); `steps` is the most it may take, as for the masked threshold strategy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from dlm_core.sampling.options import option
from dlm_core.sampling.sampler import Sampler, SamplerConfig, StepOutput, positions, run_trajectory, top_k_of
from dlm_core.toy_language import MASK, MASK_ID, UNITS, L, V, support_arrays
from dlm_core.trajectory import Trajectory
from dlm_core.variants import masked_objectives
from dlm_core.variants.base import PageText, ToyVariant
from dlm_core.variants.denoiser import Denoiser, DenoiserConfig
from dlm_core.variants.evaluate import BITS, EvalSettings, kl_bits

BOS = MASK_ID  # the start symbol: the masked model's [MASK] input id (the same embedding table)


def shift_right(x: torch.Tensor, bos: int = BOS) -> torch.Tensor:
    """[BOS, x^1, ..., x^(L-1)]: the input whose output at position i predicts x^i (shifted targets)."""
    return torch.cat([torch.full_like(x[:, :1], bos), x[:, :-1]], 1)


@lru_cache(maxsize=1)
def _language_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    sa = support_arrays()
    return torch.as_tensor(sa.x), torch.as_tensor(sa.p)


def prefix_conditionals(x: torch.Tensor) -> torch.Tensor:
    """p(x^i = v | x^<i) under the toy language (B, L, V), float32: every sentence that shares the prefix,
    weighted by p(x). A prefix no sentence has (x outside the language) falls back to the one-hot of x^i."""
    X, p = _language_tensors()
    same = (X[None] == x[:, None]).long()  # (B, N, L)
    prefix = torch.cat([torch.ones_like(same[..., :1]), same.cumprod(-1)[..., :-1]], -1).double()  # x^<i agrees
    w = prefix * p[None, :, None]  # (B, N, L)
    cond = torch.einsum("bni,niv->biv", w, F.one_hot(X, V).double())
    total = w.sum(1)[..., None]  # (B, L, 1)
    return torch.where(total > 0, cond / total.clamp_min(1e-300), F.one_hot(x, V).double()).float()


def loss(model, x0: torch.Tensor, schedule: str = "linear", generator=None, targets: str = "exact") -> torch.Tensor:
    """-log p_theta(x) = sum_i -log p_theta(x^i | x^<i), nats per sentence, averaged over the batch (the NLL:
    exact, no bound). targets="exact": the cross-entropy at i against the language's p(x^i | x^<i) (its
    expectation over the sentences that share the prefix is the same); "sampled": the drawn sentence's unit.
    `schedule` and `generator` are not used (nothing is drawn)."""
    if targets not in ("exact", "sampled"):
        raise ValueError(f"targets must be 'exact' or 'sampled', not {targets!r}")
    logp = F.log_softmax(model(shift_right(x0)), -1)  # (B, L, V): log p_theta(. | x^<i)
    if targets == "exact":
        ce = -(prefix_conditionals(x0) * logp).sum(-1)
    else:
        ce = -logp.gather(-1, x0[..., None])[..., 0]
    return ce.sum(-1).mean()


@torch.no_grad()
def sentence_log_probs(model, x: np.ndarray) -> np.ndarray:
    """log p_theta(x) in nats for every row of x (N, L), float64: one forward pass per sentence."""
    out = []
    for chunk in torch.as_tensor(np.asarray(x), dtype=torch.long).split(4096):
        logp = F.log_softmax(model(shift_right(chunk)).double(), -1)
        out.append(logp.gather(-1, chunk[..., None])[..., 0].sum(-1).numpy())
    return np.concatenate(out) if out else np.zeros(0)


# ---------------------------------------------------------------------------------- sampler


@dataclass
class ARConfig(SamplerConfig):
    """Left to right, one unit per step. `steps` is the most steps it may take: it takes one per position
    to write, and fewer than that is refused."""

    steps: int = L
    strategy: str = "left-to-right"
    temperature: float = option(1.0, label="Temperature", lo=0.0, hi=2.0, step=0.1,
                                help="0 = always the most likely unit")

    strategies = ("left-to-right",)

    def __post_init__(self):
        super().__post_init__()
        if self.temperature < 0:
            raise ValueError("the temperature must be >= 0")


@dataclass
class ARStepOutput(StepOutput):
    committed: torch.Tensor | None = None  # (B, N) bool: the position written at this step

    def extras(self, b: int) -> dict:
        return {"committed": positions(self.committed[b])}


class ARSampler(Sampler):
    """Writes the leftmost unwritten ([MASK]) position of every row, one per step."""

    mask_id = MASK_ID

    def __init__(self, model, config: ARConfig, x_init=None, batch: int = 1, forced: torch.Tensor | None = None):
        """`forced` (B, L): write these units instead of drawing (teacher forcing: the model's predictions of a
        given sentence, as the records show them)."""
        self.model, self.config, self.forced = model.eval(), config, forced
        x = torch.full((batch, L), MASK_ID, dtype=torch.long) if x_init is None else \
            torch.as_tensor(x_init, dtype=torch.long).reshape(-1, L).clone()
        pin_pos, pin_ids = self.pin_tensors(L, V)
        x[:, pin_pos] = pin_ids  # a pin stands on the canvas from the start; the model never looks right of i
        self.fixed = pin_pos.tolist() if config.start_step else positions(x[0] != MASK_ID)
        self.x, self.initial = x, x.clone()
        self.k = config.start_step
        need = int((x[0] == MASK_ID).sum())
        if config.start_step == 0 and need > config.steps:
            raise ValueError(f"an autoregressive model writes one unit per step, left to right: these {need} "
                             f"positions need {need} steps, not {config.steps}")
        self.total = config.start_step + need
        self.generator = torch.Generator().manual_seed(int(config.seed))

    @property
    def done(self) -> bool:
        return self.k >= self.total

    def trajectory_fields(self) -> dict:
        return {**super().trajectory_fields(), "fixed": list(self.fixed)}

    @torch.no_grad()
    def step(self) -> ARStepOutput:
        self._check_not_done()
        rows = torch.arange(self.x.shape[0])
        masked = self.x == MASK_ID
        before = masked.sum(-1)
        pos = masked.long().argmax(-1)  # the leftmost unwritten position of each row
        logits = self.model(shift_right(self.x)).double()[rows, pos]  # sees x^<pos only (causal)
        probs = torch.softmax(logits, -1)  # p_theta(. | x^<pos), what the record shows
        tau = self.config.temperature
        if self.forced is not None:
            unit = torch.as_tensor(self.forced, dtype=torch.long).reshape(-1, L)[rows, pos]
        elif tau == 0:
            unit = probs.argmax(-1)
        else:  # an exact draw from softmax(logits / tau)
            unit = torch.multinomial(torch.softmax(logits / tau, -1), 1, generator=self.generator)[:, 0]
        self.x[rows, pos] = unit
        self.k += 1
        n, k = self.x.shape
        ids = torch.full((n, k, min(self.config.top_k, V)), -1, dtype=torch.long)
        top_p = torch.zeros(ids.shape, dtype=torch.float64)
        ids[rows, pos], top_p[rows, pos] = top_k_of(probs, self.config.top_k)
        confidence = torch.full((n, k), math.nan, dtype=torch.float64)
        confidence[rows, pos] = probs[rows, unit]
        committed = torch.zeros((n, k), dtype=torch.bool)
        committed[rows, pos] = True
        return ARStepOutput(step=self.k, t=float(before[0]) / L, s=float(before[0] - 1) / L, x=self.x.clone(),
                            topk_ids=ids, topk_probs=top_p, confidence=confidence, committed=committed)


def teacher_forced_trajectory(model, x) -> Trajectory:
    """The model writing the given sentence x (L ids), one unit per step, left to right: each record holds its
    prediction p_theta(. | x^<k) before the step and the unit it was told to write."""
    sampler = ARSampler(model, ARConfig(), forced=torch.as_tensor([list(x)]))
    return run_trajectory(sampler, VARIANT_NAME, [*UNITS, MASK])


# ---------------------------------------------------------------------------------- variant

VARIANT_NAME = "autoregressive"


class AutoregressiveVariant(ToyVariant):
    name = VARIANT_NAME
    family = "autoregressive"
    default_steps = L
    min_steps = L
    config_class = ARConfig
    sampler_class = ARSampler
    loss = staticmethod(loss)
    mask_id = MASK_ID
    vocab = (*UNITS, MASK)
    legend = ("mask", "committed_now", "committed_earlier")
    train_defaults = {}  # the masked recipe (TrainConfig's defaults): the same network, the same schedule
    exact_nelbo = True
    text = PageText(
        intro="An autoregressive model writes one unit per step, strictly left to right, each from its prediction "
              "given every unit before it. It is the masked model's network with a causal mask: position i only "
              "sees the units to its left.",
        reverse_how="Column *k* shows the sequence after *k* steps: step *k* writes position *k* with a unit drawn "
                    "from $p_\\theta(x^k \\mid x^{<k})$. The probability of a sentence is the product of these "
                    "predictions, $\\log p_\\theta(x) = \\sum_i \\log p_\\theta(x^i \\mid x^{<i})$, so its "
                    "likelihood is exact (no bound), and a written unit never changes.",
        prediction="p_θ(x | the units to its left) at step {k}, before its update",
        forward_how="An autoregressive model has no noise. Read as a masked model, its corruption hides the "
                    "future: at noise level $t$ the last $\\lceil tL \\rceil$ units are `[MASK]`, always from the "
                    "right, so undoing it means writing strictly left to right.",
        forward_marginals="the hidden positions are always the last ones.",
        notice="What to notice: one unit per step, always the leftmost grey cell: the model never sees what comes "
               "after the position it writes.",
        pin="an autoregressive model only looks left: a pinned unit stands on the canvas from the start, but the "
            "units before it are written without seeing it.",
    )

    def build_model(self, cfg) -> Denoiser:
        """The masked denoiser (ids: 13 units + [MASK] as the start symbol; 13 unit logits), causal."""
        return Denoiser(DenoiserConfig(n_in=V + 1, n_out=V, d_model=cfg.d_model, n_layers=cfg.n_layers,
                                       n_heads=cfg.n_heads, d_ff=cfg.d_ff, causal=True))

    def corrupt(self, model, x0, t, generator=None, schedule: str = "linear"):
        """The future hidden: position i (from 0) is [MASK] when i >= (1 - t) L."""
        t = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)
        hide = torch.arange(x0.shape[1])[None] >= torch.floor((1 - t) * x0.shape[1] + 1e-9)
        return torch.where(hide, torch.full_like(x0, MASK_ID), x0)

    def objective(self, cfg):
        """Its NLL, or for the instruction task the NLL of the response given the subject (the prompt's units
        carry no loss). The weighting and the time input are the masked loss's choices."""
        if getattr(cfg, "task", "pretrain") == "pretrain":
            return super().objective(cfg)
        if getattr(cfg, "weighting", "k") != "k" or getattr(cfg, "time_input", False):
            raise ValueError("the autoregressive variant has no loss weighting or time input choice")

        def fn(model, x0, generator=None):
            logp = F.log_softmax(model(shift_right(x0)), -1).gather(-1, x0[..., None])[..., 0]
            response = masked_objectives.maskable(x0, "instruction")
            return -(logp * response).sum(-1).mean()

        return fn

    def training_bound(self, model, cfg) -> float:
        """The exact NLL, bits per unit; for the instruction task, of the response given the subject."""
        if getattr(cfg, "task", "pretrain") == "pretrain":
            return self.bound(model, EvalSettings())[0]
        sa = support_arrays()
        x = torch.as_tensor(sa.x)
        with torch.no_grad():
            logp = F.log_softmax(model(shift_right(x)).double(), -1).gather(-1, x[..., None])[..., 0]
        nll = -(logp * masked_objectives.maskable(x, "instruction")).sum(-1).numpy()
        return float(np.sum(sa.p * nll)) / BITS

    def bound(self, model, settings: EvalSettings) -> tuple[float, float, dict]:
        """The exact NLL over the 216 sentences (an autoregressive likelihood needs no bound), and the
        model's exact valid mass sum_x p_theta(x)."""
        sa = support_arrays()
        nll = -sentence_log_probs(model, sa.x)
        value = float(np.sum(sa.p * nll)) / BITS
        return value, 0.0, {"nll_bits_per_unit": value, "valid_mass": float(np.exp(-nll).sum())}

    def evaluate(self, model, settings: EvalSettings | None = None):
        """The exact NLL, and at every budget T >= 6 the sampled metrics beside the exact valid mass and forward
        KL (the same at every T: it always takes 6 steps). Budgets below 6 cannot write a sentence."""
        from dataclasses import replace

        settings = settings or EvalSettings()
        settings = replace(settings, steps=tuple(T for T in settings.steps if T >= self.min_steps))
        report = super().evaluate(model, settings)
        sa = support_arrays()
        q = np.exp(sentence_log_probs(model, sa.x))
        for cell in report.by_steps.values():
            cell.validity_exact, cell.forward_kl_bits_exact = float(q.sum()), kl_bits(sa.p, q)
        return report

    def exact_validity(self, model, steps: int, schedule: str = "linear") -> float | None:
        """sum_x p_theta(x) over the language (the same at every T >= 6; None below)."""
        if steps < self.min_steps:
            return None
        return float(np.exp(sentence_log_probs(model, support_arrays().x)).sum())

    def forward_view(self, model, x0, t: float, seed: int = 0, schedule: str = "linear") -> dict:
        z = self.corrupt(model, torch.as_tensor(x0, dtype=torch.long)[None], float(t))[0].tolist()
        hidden = [i for i, u in enumerate(z) if u == MASK_ID]
        marg = np.zeros((len(x0), V + 1))
        for i, u in enumerate(z):
            marg[i, u] = 1.0
        return {"alpha": 1 - len(hidden) / len(x0), "tokens": z, "marginals": marg, "marginal_labels": list(self.vocab),
                "changed": hidden}

    def schedule_curve(self, model, schedule: str = "linear", n: int = 201) -> dict:
        t = np.linspace(0.0, 1.0, n)
        return {"t": t, "curves": {"share still visible": np.floor((1 - t) * L + 1e-9) / L}}


VARIANT = AutoregressiveVariant()
