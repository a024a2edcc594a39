"""Real-model sampler overhead: stepwise sampler wall time against the bare forward passes it needs.

    PYTHONPATH=. .venv/bin/python bench/real_sampler_overhead.py [--model PATH_OR_ID] [--repeat 3]

For the embedded model (default) at 64 and 128 generated tokens, prints the sampler's wall
time, the time of the same number of bare forward passes on the same canvas, their ratio
(goal: at most 1.10), and how many forward passes the output reuse saved.
"""

from __future__ import annotations

import argparse
import time

import torch

from dlm_core import hf_adapter
from dlm_core.masked_sampler import MaskedSampler, MaskedSamplerConfig


def run(lm, gen_length: int, steps: int, strategy: str, temperature: float, repeat: int) -> None:
    canvas = hf_adapter.build_canvas(lm, "", gen_length)
    best_s, best_b, calls = float("inf"), float("inf"), 0
    for r in range(repeat):
        cfg = MaskedSamplerConfig(steps=steps, strategy=strategy, temperature=temperature, seed=r, top_k=10)
        s = MaskedSampler(lm, cfg, canvas.ids, canvas.gen_start, canvas.gen_length)
        t0 = time.perf_counter()
        while not s.done:
            s.step().to_record(0)  # records are part of the work a page needs
        best_s = min(best_s, time.perf_counter() - t0)
        calls = s.model_calls
        t0 = time.perf_counter()
        for _ in range(calls):
            lm(canvas.ids)
        best_b = min(best_b, time.perf_counter() - t0)
    print(f"  {gen_length:4d} tokens {steps:4d} steps {strategy:15s} tau={temperature:<4} "
          f"sampler {best_s:7.2f} s  bare forwards ({calls:3d}) {best_b:7.2f} s  ratio {best_s / best_b:5.3f}  "
          f"forward passes saved by reuse: {steps - calls}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lm = hf_adapter.load(a.model)
    print(f"{lm.name}: {lm.n_params() / 1e6:.1f} M parameters on {lm.device}, {a.threads} thread(s), "
          f"best of {a.repeat}")
    for n in (64, 128):
        run(lm, n, n, "low-confidence", 0.0, a.repeat)
        run(lm, n, n, "random", 1.0, a.repeat)
        run(lm, n, 2 * n, "low-confidence", 0.0, a.repeat)  # half the steps commit nothing: reuse


if __name__ == "__main__":
    main()
