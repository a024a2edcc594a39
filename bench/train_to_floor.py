"""Toy training to the entropy floor: each variant trained from scratch with the shipped recipe, timed.

    PYTHONPATH=. .venv/bin/python bench/train_to_floor.py [--variants masked autoregressive] [--checks 10]

For each variant: `training.train(training.default_config(variant))` on one thread (the recipe
`python -m dlm_core train` uses, with the shipped seed). At `--checks` evenly spaced steps a
callback measures NELBO/H with the evaluation's own code (`Variant.nelbo`: exact for masked, the exact NLL for
the autoregressive twin; the
Monte-Carlo estimate with its standard error for uniform and Gaussian, at n_t = CHECK_NT). The
checks run inside the training loop but outside the timed region: the clock is the training's
wall time (thread CPU time beside it) with the time the checks took taken off, so time-to-target
is the training time at the first check whose estimate is at or below the target. The checks
draw from their own generator, so the trained weights are bit for bit those of an unchecked run:
the script says whether they equal the shipped checkpoint's. At the end the final NELBO/H comes
from the full evaluation settings (n_t = 1000, seed 0: the number `python -m dlm_core eval
--variant V --json` prints), and each line ends with the two ratios to target (at most 1 meets it).

Timings are of this machine as it is: on a busy one (see the load average printed) wall time runs
ahead of CPU time.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from dlm_core.studies import training
from dlm_core.toy_language import entropy_bits_per_unit
from dlm_core.variants.evaluate import EvalSettings
from dlm_core.variants.registry import get

TARGETS = {"masked": 1.003, "uniform": 1.010, "gaussian": 1.020, "autoregressive": 1.010}  # NELBO (AR: NLL) / H
TARGET_S = 20.0  # training wall time, one thread
CHECK_NT = {"masked": 0, "uniform": 200, "gaussian": 1000, "autoregressive": 0}  # Monte-Carlo times per sentence


class Checks:
    """The training callback: NELBO/H at the chosen steps, with the time it took kept apart."""

    def __init__(self, variant: str, steps: int, n_checks: int):
        self.variant, self.H = variant, entropy_bits_per_unit()
        self.at = {round(steps * k / n_checks) for k in range(1, n_checks + 1)}
        self.spent = {"wall": 0.0, "cpu": 0.0}  # in the checks
        self.start = {"wall": time.perf_counter(), "cpu": time.thread_time()}
        self.rows: list[dict] = []

    def __call__(self, step: int, loss: float, model) -> bool:
        if step not in self.at:
            return True
        w0, c0 = time.perf_counter(), time.thread_time()
        train_wall = w0 - self.start["wall"] - self.spent["wall"]
        train_cpu = c0 - self.start["cpu"] - self.spent["cpu"]
        model.eval()
        with torch.no_grad():
            value, se = get(self.variant).nelbo(model, EvalSettings(n_t=max(1, CHECK_NT[self.variant])))
        model.train()
        self.rows.append({"step": step, "wall": train_wall, "cpu": train_cpu, "ratio": value / self.H,
                          "se": se / self.H})
        self.spent["wall"] += time.perf_counter() - w0
        self.spent["cpu"] += time.thread_time() - c0
        return True


def same_weights(model, variant: str) -> bool | None:
    """Whether the weights equal the shipped checkpoint's, bit for bit (None: no shipped checkpoint)."""
    try:
        shipped, _ = training.load_checkpoint(training.default_checkpoint(variant))
    except training.CheckpointError:
        return None
    a, b = model.state_dict(), shipped.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def run(variant: str, n_checks: int) -> dict:
    cfg = training.default_config(variant)
    checks = Checks(variant, cfg.steps, n_checks)
    result = training.train(cfg, callback=checks)
    train_wall = result.wall_time_s - checks.spent["wall"]
    train_cpu = time.thread_time() - checks.start["cpu"] - checks.spent["cpu"]
    value, se = get(variant).nelbo(result.model, EvalSettings())  # the full settings: what `eval` reports
    H = checks.H
    reached = next((r for r in checks.rows if r["ratio"] <= TARGETS[variant]), None)
    return {"variant": variant, "cfg": cfg, "rows": checks.rows, "reached": reached, "wall": train_wall,
            "cpu": train_cpu, "ratio": value / H, "se": se / H, "same": same_weights(result.model, variant)}


def report(r: dict) -> None:
    v, cfg, target = r["variant"], r["cfg"], TARGETS[r["variant"]]
    print(f"\n{v}: {cfg.steps} steps x {cfg.batch_size}, lr {cfg.lr:g} (warm-up {cfg.warmup}, cosine to "
          f"{cfg.min_lr_ratio:g}), AdamW betas {tuple(cfg.betas)}, width {cfg.d_model} x {cfg.n_layers} layers, "
          f"targets {cfg.targets}, seed {cfg.seed}")
    kind = "exact" if CHECK_NT[v] == 0 else f"n_t = {CHECK_NT[v]}"
    print(f"  checks ({kind}):   step   train wall s   cpu s   NELBO/H")
    for row in r["rows"]:
        se = "" if row["se"] == 0 else f" ± {row['se']:.4f}"
        print(f"  {'':18}{row['step']:6d} {row['wall']:13.1f} {row['cpu']:7.1f}   {row['ratio']:.4f}{se}")
    hit = r["reached"]
    print(f"  time to target {target}: " + (f"{hit['wall']:.1f} s wall ({hit['cpu']:.1f} s cpu) at step {hit['step']}"
                                           if hit else "not reached at any check"))
    same = {True: "yes", False: "NO", None: "no shipped checkpoint"}[r["same"]]
    print(f"  weights equal to the shipped checkpoint: {same}")
    se = "" if r["se"] == 0 else f" ± {r['se']:.4f}"
    print(f"{v}: NELBO/H {r['ratio']:.4f}{se} (target {target}: ratio {r['ratio'] / target:.4f}), "
          f"{r['wall']:.1f} s (target {TARGET_S:g} s: ratio {r['wall'] / TARGET_S:.2f}); cpu {r['cpu']:.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--variants", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    ap.add_argument("--checks", type=int, default=10, help="NELBO checks per training (evenly spaced steps)")
    a = ap.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} cpus, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; torch {torch.__version__}, "
          f"1 thread; H = {entropy_bits_per_unit():.6f} bits per unit")
    results = [run(v, a.checks) for v in a.variants]
    for r in results:
        report(r)
    print("\nsummary (ratios to target last; at most 1 meets it)")
    for r in results:
        target = TARGETS[r["variant"]]
        se = "" if r["se"] == 0 else f" ± {r['se']:.4f}"
        print(f"{r['variant']}: NELBO/H {r['ratio']:.4f}{se} (target {target}: ratio {r['ratio'] / target:.4f}), "
              f"{r['wall']:.1f} s (target {TARGET_S:g} s: ratio {r['wall'] / TARGET_S:.2f})")


if __name__ == "__main__":
    main()
