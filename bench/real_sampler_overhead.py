"""Real-model sampler overhead: stepwise sampler wall time against the bare forward passes it needs.

    PYTHONPATH=. .venv/bin/python bench/real_sampler_overhead.py [--model PATH_OR_ID] [--repeat 2] [--lengths 64 128]

For the embedded model (default) at 64 and 128 generated tokens: the sampler's wall time (each step
followed by the record a page keeps, top 10 per position), the same forward passes made bare on the
same inputs, their ratio (target: at most 1.10), and how many forward passes the output reuse saved.
The measurement is bench/sampler_overhead.py's: each step is followed by a bare forward pass on the
input it fed the model, every repeat uses the same seed, each step keeps the (step, bare pass) pair
of its quietest repeat (`ratio`) and, apart, its least own work (its time minus its model calls):
`own work -> ratio` = (bare forwards + own work) / bare forwards, the steadier estimate on a busy
machine, with the thread's CPU time beside. The last column compares it with the target (at most 1
meets it).
"""

from __future__ import annotations

import argparse

import torch
from sampler_overhead import paired_times, report

from dlm_core.sampling.masked_sampler import MaskedSampler, MaskedSamplerConfig
from dlm_core.variants import hf_adapter

TARGET = 1.10


class Recording:
    """A sampler whose step also makes the record a page keeps (to_record: the top 10 per position)."""

    def __init__(self, sampler: MaskedSampler):
        self.sampler = sampler

    @property
    def done(self) -> bool:
        return self.sampler.done

    @property
    def x(self) -> torch.Tensor:
        return self.sampler.x

    @property
    def model_calls(self) -> int:
        return self.sampler.model_calls

    def step(self):
        out = self.sampler.step()
        out.to_record(0)
        return out


def run(lm, gen_length: int, steps: int, strategy: str, temperature: float, repeat: int) -> None:
    canvas = hf_adapter.build_canvas(lm, "", gen_length)
    cfg = MaskedSamplerConfig(steps=steps, strategy=strategy, temperature=temperature, seed=1, top_k=10)
    t = paired_times(lambda model: Recording(MaskedSampler(model, cfg, canvas.ids, canvas.gen_start,
                                                           canvas.gen_length)), lm, repeat)
    print(f"  {gen_length:4d} tokens {steps:4d} steps {strategy:15s} tau={temperature:<4} "
          f"passes saved by reuse {steps - t['calls']:3d}  " + report(t, TARGET), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lengths", type=int, nargs="+", default=[64, 128])
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lm = hf_adapter.load(a.model)
    print(f"{lm.name}: {lm.n_params() / 1e6:.1f} M parameters on {lm.device}, {a.threads} thread(s), "
          f"each step's quietest of {a.repeat}; target: sampler / bare forwards <= {TARGET}")
    for n in a.lengths:
        run(lm, n, n, "random", 1.0, a.repeat)
        run(lm, n, n, "low-confidence", 1.0, a.repeat)
        run(lm, n, n, "threshold", 1.0, a.repeat)
        run(lm, n, n, "low-confidence", 0.0, a.repeat)
        run(lm, n, 2 * n, "low-confidence", 0.0, a.repeat)  # half the steps commit nothing: reuse


if __name__ == "__main__":
    main()
