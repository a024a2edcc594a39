"""The real-model variant: masked diffusion over a Hugging Face masked LM (loaded by hf_adapter), with the
same sampler (sampling/masked_sampler.py), the same branches (base.Variant.branch) and the same Trajectory
contract as the toy masked variant. Its sampler options are declared like the toy variants' (`option()`),
so the Real page draws them with the same controls, and the one rule that differs, how many steps the
threshold strategy may take, lives here (`steps_for`).

What a real model adds to the toy masked variant: a canvas (prompt, masks, the tokenizer's closing token)
with a generated part the edits must stay in, a vocabulary read from the tokenizer, and the decoded text
of each step (hf_adapter.generate).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch

from dlm_core.sampling.masked_sampler import BLOCKWISE, THRESHOLD, MaskedSampler, MaskedSamplerConfig
from dlm_core.sampling.options import option
from dlm_core.trajectory import Trajectory
from dlm_core.variants import hf_adapter
from dlm_core.variants.base import Variant

GENERATE_STEPS = 64  # `generate`'s steps when none are asked for (a fixed-count strategy)
FIXED_COUNT = tuple(s for s in BLOCKWISE if s != THRESHOLD)  # the strategies that take exactly `steps` steps
_CACHE_OPTION = next(f.metadata["option"] for f in fields(MaskedSamplerConfig) if f.name == "cache")


def steps_for(strategy: str, steps: int | None, gen_length: int) -> int:
    """The steps a generation takes (at most, for the threshold strategy): those asked for, else one per
    generated token for the threshold strategy (it commits at least one token per step) and GENERATE_STEPS
    for a fixed count."""
    if steps is not None:
        return int(steps)
    return int(gen_length) if strategy == THRESHOLD else GENERATE_STEPS


@dataclass
class RealSamplerConfig(MaskedSamplerConfig):
    """The masked sampler's settings on a real model, with how the Real page draws them (its link keeps
    them under real_* names)."""

    steps: int = option(
        32, label="Steps", lo=1, hi=512, widget="number", url="real_steps", when=("strategy", FIXED_COUNT),
        off_value=None,
        help="Reverse steps; each commits generation length / steps tokens. The threshold strategy does not use it: "
             "it takes as many steps as it needs, at most one per token.")
    seed: int = option(0, label="Seed", lo=0, hi=10**6, step=1, widget="number", url="real_seed")
    top_k: int = 10  # a record keeps each position's 10 most likely tokens
    strategy: str = option(
        "low-confidence", label="Strategy", choices=BLOCKWISE, url="real_strategy",
        help="random, low-confidence, margin and entropy commit a fixed number of tokens per step, chosen at random "
             "or by the model's confidence (LLaDA / Dream); threshold commits every token whose confidence reaches "
             "the threshold, at least one per step (Fast-dLLM).")
    temperature: float = option(
        1.0, label="Temperature", lo=0.0, hi=2.0, step=0.1, url="real_temperature",
        help="0 = always the most likely token (LLaDA's default); a small model like the embedded one then falls "
             "into repetition, so the default here is 1.")
    block_length: int | None = option(
        None, label="Block length", lo=1, hi=512, widget="number", url="real_block_length", page_default=64,
        help="Semi-autoregressive blocks, filled left to right. Must divide the generation length.")
    cfg_scale: float = option(
        0.0, label="Guidance scale w (unsupervised CFG)", lo=0.0, hi=3.0, step=0.25, url="real_cfg",
        help="Classifier-free guidance without a second model: the unconditional pass masks the prompt, and the "
             "logits used are u + (w + 1)(c − u) (Nie et al. 2024).")
    cache: str = field(default="off", metadata={"option": replace(_CACHE_OPTION, url="real_cache")})
    threshold: float = option(
        0.9, label="Confidence threshold", lo=0.05, hi=1.0, step=0.05, url="real_threshold",
        when=("strategy", (THRESHOLD,)),
        help="Threshold strategy (Fast-dLLM): each step commits every token whose confidence is at least this, and "
             "at least the most confident one.")


class RealVariant(Variant):
    """Masked diffusion on a real model (an hf_adapter.HFMaskedLM): generations, and branches of them."""

    name = "real"
    default_steps = 32
    config_class = RealSamplerConfig
    sampler_class = MaskedSampler
    legend = ("mask", "committed_now", "committed_earlier")
    vocab = ()  # read from the model's tokenizer, per trajectory

    def sampler_config(self, steps: int | None = None, seed: int = 0, *, gen_length: int,
                       **options) -> RealSamplerConfig:
        """The config of a generation of `gen_length` tokens (steps_for: how many steps it takes)."""
        strategy = options.get("strategy", RealSamplerConfig.strategy)
        return self.config_class.build(self.name, steps=steps_for(strategy, steps, gen_length), seed=int(seed),
                                       **options)

    def generate(self, lm, prompt: str | None, gen_length: int, config: RealSamplerConfig | MaskedSamplerConfig,
                 use_chat_template: bool = True, suppress_eos: bool = False, on_step=None) -> Trajectory:
        """One generation (hf_adapter.generate): `on_step(record, sampler, text)` streams each step."""
        return hf_adapter.generate(lm, prompt, gen_length, config, use_chat_template=use_chat_template,
                                   suppress_eos=suppress_eos, on_step=on_step)

    # ---------------------------------------------------------------------------- branches

    def forget(self, model, state, positions, t, generator):
        """Re-masking: the positions go back to the model's [MASK]."""
        state = state.clone()
        state[:, positions] = model.mask_id
        return state

    def check_edits(self, traj: Trajectory, edits) -> None:
        start, length = traj.gen_start, self._gen_length(traj)
        outside = sorted(i + 1 for i in (*edits.pins, *edits.remask) if not start <= i < start + length)
        if outside:
            raise ValueError(f"position(s) {outside} are in the prompt: only generated positions "
                             f"({start + 1}–{start + length}) can be pinned or re-masked")

    def continuation_sampler(self, model, config, state: torch.Tensor, traj: Trajectory) -> MaskedSampler:
        return MaskedSampler(model, config, state, gen_start=traj.gen_start, gen_length=self._gen_length(traj))

    def finish_branch(self, model, branch: Trajectory, parent: Trajectory) -> Trajectory:
        """A branch's vocabulary (the tokens it wrote too) and the decoded text of each of its steps."""
        k = branch.branch["from_step"]
        start, length = parent.gen_start, self._gen_length(parent)
        branch.settings.pop("seconds", None)  # the original's time, not this branch's
        branch.vocab = {**parent.vocab, **hf_adapter.vocab_of(model, branch)}
        branch.text_per_step = list((parent.text_per_step or [])[:k]) + [
            hf_adapter.step_text(model, r.tokens, start, length) for r in branch.records[k:]]
        return branch

    @staticmethod
    def _gen_length(traj: Trajectory) -> int:
        return int(traj.settings.get("gen_length", traj.length - traj.gen_start))


VARIANT = RealVariant()
