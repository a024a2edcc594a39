"""The block cache on a real model: time with and without it, and how much it changes the text.

    PYTHONPATH=. .venv/bin/python bench/block_cache.py [--model PATH_OR_ID] [--lengths 128 256] [--repeat 3]

For each generation length (default 128 and 256 tokens), block 32, temperature 0, low-confidence with
one token per step (LLaDA's setting, steps = length): the generation's wall time without the cache and
with the prefix and the dual cache (sampling/block_cache.py), the ratio cached / uncached, the positions
computed per run (what the cache saves, independent of the machine's load) and the fraction of generated
tokens equal to the uncached run's. The embedded model is bidirectional (BERT), so the cache is an
approximation there and the fraction measures it; on a block-causal model it is exactly 1
(tests/test_block_cache.py). The runs alternate (off, prefix, dual, off, ...) and each keeps its quickest
repeat, so the ratios compare runs made side by side. The held-out NELBO does not change: the cache
only affects sampling. The prompts are the first two of the model card's held-out prompts.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from dlm_core.sampling.masked_sampler import MaskedSampler, MaskedSamplerConfig
from dlm_core.variants import hf_adapter

MODES = ("off", "prefix", "dual")


def one_run(lm, prompt: str, gen_length: int, cache: str) -> tuple[float, list[int], int]:
    canvas = hf_adapter.build_canvas(lm, prompt, gen_length)
    cfg = MaskedSamplerConfig(steps=gen_length, strategy="low-confidence", temperature=0.0, block_length=32,
                              cache=cache, top_k=10)
    sampler = MaskedSampler(lm, cfg, canvas.ids, gen_start=canvas.gen_start, gen_length=gen_length)
    t0 = time.perf_counter()
    while not sampler.done:
        sampler.step().to_record(0)  # the record a page keeps
    seconds = time.perf_counter() - t0
    tokens = sampler.x[0, canvas.gen_start:canvas.gen_start + gen_length].tolist()
    return seconds, tokens, sampler.positions_computed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--lengths", type=int, nargs="+", default=[128, 256])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lm = hf_adapter.load(a.model)
    held = json.loads((hf_adapter.EMBEDDED / "heldout.json").read_text())
    prompts = held.get("prompts", ["to be or not to be, that is the question"])[:2]
    print(f"{lm.name}, {lm.device.type}, {a.threads} thread(s); block 32, temperature 0, low-confidence, "
          f"one token per step; quickest of {a.repeat} alternating repeats", flush=True)
    print(f"{'tokens':>6} {'cache':>6} {'seconds':>8} {'ratio':>6} {'positions':>10} {'same tokens':>11}")
    for n in a.lengths:
        best = {m: float("inf") for m in MODES}
        tokens, computed = {}, {}
        for _ in range(a.repeat):
            for m in MODES:  # side by side: off, prefix, dual, off, ...
                runs = [one_run(lm, prompt, n, m) for prompt in prompts]
                best[m] = min(best[m], sum(s for s, _, _ in runs))
                tokens[m] = [t for _, t, _ in runs]
                computed[m] = sum(p for _, _, p in runs)
        for m in MODES:
            same = sum(x == y for a_, b_ in zip(tokens[m], tokens["off"]) for x, y in zip(a_, b_))
            print(f"{n:>6} {m:>6} {best[m]:8.2f} {best[m] / best['off']:6.2f} {computed[m]:>10} "
                  f"{same / (n * len(prompts)):11.3f}", flush=True)


if __name__ == "__main__":
    main()
