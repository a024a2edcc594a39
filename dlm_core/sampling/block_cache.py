"""The block cache of semi-autoregressive generation: which positions a step recomputes.

Filling a canvas block by block, the positions before the current block (the prompt and the
finished blocks) no longer change. Fast-dLLM (Wu et al. 2025) therefore keeps their keys and
values from one full pass at the start of each block and, at the block's other steps, recomputes
only what can still change:

- `prefix`: the current block and everything after it (Fast-dLLM's prefix cache);
- `dual`: the current block only; the keys and values after it are also kept from the block's
  first pass (Fast-dLLM's dual cache).

The first step of every block is a full pass that refreshes the cache. For a block-causal model
(BD3-LM) the prefix cache gives the same logits for the current block as a full pass; for a
bidirectional model such as BERT, earlier positions would still see later ones change, so the
kept keys and values are an approximation (measured by bench/block_cache.py). The model side,
keys and values layer by layer, is the runner its `kv_runner()` gives each sampler (its own keys and
values, so that runs sharing one model never share a cache): variants/hf_cache.BertKV for BERT.
"""

from __future__ import annotations

import torch

CACHE_MODES = ("off", "prefix", "dual")


class BlockCache:
    """Per step: one full pass at a block's first step, a partial pass at its others."""

    def __init__(self, runner, mode: str, gen_start: int, block_length: int):
        if mode not in CACHE_MODES[1:]:
            raise ValueError(f"unknown cache mode {mode!r}; one of: {', '.join(CACHE_MODES)}")
        self.runner, self.mode = runner, mode  # runner.forward(x, lo, hi, store): variants/hf_cache.BertKV
        self.gen_start, self.block_length = gen_start, block_length
        self.block: int | None = None  # the block whose first pass the cache holds
        self.full_passes = 0
        self.partial_passes = 0
        self.positions_computed = 0  # over all passes: how many positions' hidden states were computed

    @classmethod
    def of(cls, model, mode: str, gen_start: int, block_length: int) -> BlockCache | None:
        """The cache of one sampler (None when `mode` is off): its keys and values are its own, from the
        model's `kv_runner()` (None or missing: the model cannot keep them, a clear ValueError)."""
        if mode == "off":
            return None
        runner = model.kv_runner() if callable(getattr(model, "kv_runner", None)) else None
        if runner is None:
            raise ValueError("this model cannot keep keys and values between steps (the block cache runs "
                             "BERT-style masked LMs, such as the embedded model): turn the cache off")
        return cls(runner, mode, gen_start, block_length)

    def span(self, block: int, n: int) -> tuple[int, int]:
        """The positions [lo, hi) a step inside `block` recomputes."""
        lo = self.gen_start + block * self.block_length
        return lo, (n if self.mode == "prefix" else min(n, lo + self.block_length))

    def logits(self, x: torch.Tensor, block: int, last: torch.Tensor | None) -> tuple[torch.Tensor, tuple[int, int]]:
        """Logits (B, N, vocab) for the canvas `x` at a step of `block`, and the span [lo, hi) computed
        now; `last` is the previous step's logits (kept for the positions not recomputed)."""
        n = x.shape[1]
        if block != self.block or last is None:  # a new block: one full pass that refreshes the cache
            self.block = block
            self.full_passes += 1
            self.positions_computed += n
            return self.runner.forward(x, 0, n, store=True), (0, n)
        lo, hi = self.span(block, n)
        out = last.clone()
        out[:, lo:hi] = self.runner.forward(x, lo, hi, store=False)
        self.partial_passes += 1
        self.positions_computed += hi - lo
        return out, (lo, hi)


def cache_note(traj) -> str:
    """One plain sentence on what a real run computed: its passes, the positions they computed against a run
    without the cache, and its time ("" for a run that recorded none of it)."""
    passes = [r for r in traj.records if r.model_called]
    seconds = traj.settings.get("seconds")
    timing = f" in {seconds:.2f} s" if isinstance(seconds, (int, float)) else ""
    if not any(r.recomputed is not None for r in traj.records):
        return (f"Block cache off: each of the {len(passes)} forward passes computed all {traj.length} positions"
                f"{timing}." if passes else "")
    computed = sum(len(r.recomputed or ()) for r in passes)
    full = sum(1 for r in passes if len(r.recomputed or ()) == traj.length)
    share = computed / max(1, len(passes) * traj.length)
    return (f"Block cache ({traj.settings.get('cache')}): {len(passes)} forward passes, {full} of them full (the "
            f"first step of each block) and {len(passes) - full} over part of the canvas; {computed} positions "
            f"computed, {100 * share:.0f}% of the {len(passes) * traj.length} a run without the cache computes"
            f"{timing}. The small squares in the grid mark them.")
