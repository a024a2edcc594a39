"""Sampler overhead against the bare forward passes it needs, measured side by side.

    PYTHONPATH=. .venv/bin/python bench/sampler_overhead.py [--batch 2000] [--steps 6] [--repeat 7]

For the shipped masked toy model: the stepwise sampler's wall time against the same forward passes
made bare, on the same inputs, and their ratio (target: at most 1.05). Each step is timed and is
followed at once by a bare forward pass on the input that step fed the model; every run uses the
same seed, so step j does the same work in every repeat, and each step keeps the (step, bare pass)
pair of the repeat where the two took the least time together (a pair slowed by another process
on the machine does not count): `ratio`. The sampler's own work (a step's time minus its model
call) is kept apart at its least per step: `own work -> ratio` is (bare forwards + own work) / bare
forwards, the steadier estimate of the same ratio on a busy machine, and the one the last column
compares with the target (at most 1 meets it); the thread's CPU time gives it beside.
"""

from __future__ import annotations

import argparse
import time

import torch

from dlm_core.sampling.masked_sampler import MaskedSampler, MaskedSamplerConfig
from dlm_core.studies import training
from dlm_core.toy_language import MASK_ID, L
from dlm_core.variants import masked

TARGET = 1.05
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


class Timed:
    """The model behind the sampler, timing each call (the sampler's own work is a step's time minus these)."""

    def __init__(self, model):
        self.model, self.spent = model, {c: 0.0 for c in CLOCKS}

    def __getattr__(self, name):
        return getattr(self.model, name)

    def __call__(self, x):
        t0 = {c: f() for c, f in CLOCKS.items()}
        out = self.model(x)
        for c, f in CLOCKS.items():
            self.spent[c] += f() - t0[c]
        return out


def paired_times(make_sampler, model, repeat: int) -> dict:
    """Per clock: the sampler's time, the bare forward passes' time and the sampler's own work (its time
    minus its model calls), in seconds, and the model calls. Each step is timed and followed at once by a
    bare forward pass on the input it fed the model; of the `repeat` runs (the same seed: step j does the
    same work in each) each step keeps its quietest (step, bare pass) pair (the least time in all) and,
    apart, its least own work; each is summed over the steps."""
    pairs: dict[str, list] = {}
    own: dict[str, list] = {}
    calls = 0
    for _ in range(repeat):
        timed = Timed(model)
        sampler = make_sampler(timed)
        run_pairs = {c: [] for c in CLOCKS}
        run_own = {c: [] for c in CLOCKS}
        while not sampler.done:
            x_in = sampler.x.clone()
            before = dict(timed.spent)
            t0 = {c: f() for c, f in CLOCKS.items()}
            out = sampler.step()
            t1 = {c: f() for c, f in CLOCKS.items()}
            if out.model_called:
                model(x_in)
            t2 = {c: f() for c, f in CLOCKS.items()}
            for c in CLOCKS:
                run_pairs[c].append((t1[c] - t0[c], t2[c] - t1[c] if out.model_called else 0.0))
                run_own[c].append(t1[c] - t0[c] - (timed.spent[c] - before[c]))
        calls = sampler.model_calls
        for c in CLOCKS:
            pairs[c] = run_pairs[c] if c not in pairs else [min(a, b, key=sum) for a, b in zip(pairs[c], run_pairs[c])]
            own[c] = run_own[c] if c not in own else [min(a, b) for a, b in zip(own[c], run_own[c])]
    return {c: {"sampler": sum(s for s, _ in pairs[c]), "bare": sum(b for _, b in pairs[c]), "own": sum(own[c])}
            for c in CLOCKS} | {"calls": calls}


def report(t: dict, target: float = TARGET) -> str:
    """The measured times and ratios of paired_times, the target comparison last. The ratio to the target
    is that of (bare forwards + the sampler's own work) / bare forwards: both parts measured at their
    quietest, it is the steadier estimate of sampler / bare forwards on a busy machine (printed beside it)."""
    w = t["wall"]
    direct = w["sampler"] / w["bare"]
    ratio = (w["bare"] + w["own"]) / w["bare"]
    cpu = (t["cpu"]["bare"] + t["cpu"]["own"]) / t["cpu"]["bare"]
    return (f"sampler {w['sampler']:7.3f} s  bare forwards ({t['calls']:3d}) {w['bare']:7.3f} s  ratio {direct:5.3f}  "
            f"own work {w['own'] * 1e3:7.1f} ms -> ratio {ratio:5.3f} (cpu time {cpu:5.3f})  "
            f"ratio / target {ratio / target:5.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    torch.set_num_threads(1)
    model, _ = training.load_checkpoint(training.default_checkpoint("masked"))
    lm = masked.ToyMaskedLM(model)
    x0 = torch.full((a.batch, L), MASK_ID)
    print(f"masked toy model, batch {a.batch}, {a.steps} steps, temperature 1, each step's quietest of {a.repeat}; "
          f"target: sampler / bare forwards <= {TARGET}")
    for strategy in ("random", "low-confidence", "ancestral", "threshold"):
        cfg = MaskedSamplerConfig(steps=a.steps, strategy=strategy, seed=1)
        t = paired_times(lambda model, cfg=cfg: MaskedSampler(model, cfg, x0), lm, a.repeat)
        print(f"  {strategy:15s} " + report(t), flush=True)


if __name__ == "__main__":
    main()
