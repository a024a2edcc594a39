"""Sampler overhead against the bare forward passes it needs, measured side by side.

    PYTHONPATH=. .venv/bin/python bench/sampler_overhead.py [--batch 2000] [--steps 6] [--repeat 5]

Prints, for the shipped masked toy model, the wall time of the stepwise sampler and of
the same number of bare model forward passes on the same batch, and their ratio.
"""

from __future__ import annotations

import argparse
import time

import torch

from dlm_core import masked, training
from dlm_core.masked_sampler import MaskedSampler, MaskedSamplerConfig
from dlm_core.toy_language import MASK_ID, L


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = training.load_checkpoint(training.default_checkpoint("masked"))
    lm = masked.ToyMaskedLM(model)
    x0 = torch.full((a.batch, L), MASK_ID)
    print(f"masked toy model, batch {a.batch}, {a.steps} steps, best of {a.repeat}")
    for strategy in ("random", "low-confidence", "ancestral"):
        t_sampler, t_bare, calls = [], [], 0
        for r in range(a.repeat):
            s = MaskedSampler(lm, MaskedSamplerConfig(steps=a.steps, strategy=strategy, seed=r), x0)
            t0 = time.perf_counter()
            while not s.done:
                s.step()
            t_sampler.append(time.perf_counter() - t0)
            calls = s.model_calls
            t0 = time.perf_counter()
            for _ in range(calls):
                lm(x0)
            t_bare.append(time.perf_counter() - t0)
        ts, tb = min(t_sampler), min(t_bare)
        print(f"  {strategy:15s} sampler {ts * 1e3:8.1f} ms  bare forwards ({calls}) {tb * 1e3:8.1f} ms  "
              f"ratio {ts / tb:5.2f}  reused outputs {a.steps - calls}")


if __name__ == "__main__":
    main()
