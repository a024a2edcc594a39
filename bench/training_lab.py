"""The training lab's runs and the data-constrained study, timed.

    PYTHONPATH=. .venv/bin/python bench/training_lab.py [--presets weighting time ...] [--steps N]
                                                        [--study shipped|quick|full]

Each preset's runs are trained one after another on one thread with `training.train` (what a LabJob's worker
does, without the queue), with the preset's steps; each line gives the run's training wall and CPU time, its
ratio to the preset's first run measured side by side in this process, and its exact bound's gap to the floor
(`training_lab.final_metrics`, timed apart). Then the data-constrained study's total: `shipped` prints the wall
time recorded in assets/data_study.json (and each run's); `quick` or `full` runs that study here and times it
(`full` is the README command's settings: 20-30 minutes on this 2-core machine).

Timings are of this machine as it is: on a busy one (see the load average) wall time runs ahead of CPU time.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from dlm_core.studies import data_study, training, training_lab


def time_preset(preset: training_lab.Preset, steps: int | None) -> list[dict]:
    rows = []
    for run in preset.runs:
        cfg = training_lab.run_config(preset, run, steps)
        w0, c0 = time.perf_counter(), time.process_time()
        result = training.train(cfg)
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        m0 = time.perf_counter()
        final = training_lab.final_metrics(cfg, result.model, result.losses)
        rows.append({"label": run.label, "wall": wall, "cpu": cpu, "gap": final["gap_bits"],
                     "floor": final["floor_name"], "measure": time.perf_counter() - m0})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", nargs="+", choices=list(training_lab.PRESETS), default=list(training_lab.PRESETS))
    ap.add_argument("--steps", type=int, help="steps per run (default: each preset's own)")
    ap.add_argument("--study", choices=("shipped", "quick", "full"), default="shipped")
    a = ap.parse_args()
    torch.set_num_threads(1)
    load = os.getloadavg()
    print(f"{os.cpu_count()} cpus, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; torch {torch.__version__}, "
          "1 thread")
    total = 0.0
    for key in a.presets:
        preset = training_lab.PRESETS[key]
        rows = time_preset(preset, a.steps)
        first = rows[0]["wall"]
        print(f"\n{preset.title} ({a.steps or preset.steps} steps per run)")
        for r in rows:
            total += r["wall"]
            print(f"  {r['label']:36} train {r['wall']:6.1f} s wall ({r['cpu']:5.1f} s cpu), ratio to the first "
                  f"{r['wall'] / first:5.2f}; bound - {r['floor']} {r['gap']:+.4f} bits/unit (measured in "
                  f"{r['measure']:.1f} s)")
    print(f"\nall lab runs: {total:.1f} s of training wall time")
    if a.study == "shipped":
        shipped = data_study.load_results()
        if shipped is None:
            print("data-constrained study: no shipped results (assets/data_study.json)")
            return
        print(f"\ndata-constrained study (shipped, computed {shipped['computed_at']}): "
              f"total {shipped['wall_time_s']:.0f} s")
        for r in shipped["runs"]:
            print(f"  {r['family']:3} U = {r['unique_sentences']:5,}: {r['wall_time_s']:6.1f} s "
                  f"({r['steps'][-1]:,} steps, {len(r['epochs'])} measurements)")
        return
    settings = data_study.DataStudySettings.quick() if a.study == "quick" else data_study.DataStudySettings()
    w0, c0 = time.perf_counter(), time.process_time()
    results = data_study.compute(settings)
    print(f"\ndata-constrained study ({a.study}, run here): total {time.perf_counter() - w0:.0f} s wall "
          f"({time.process_time() - c0:.0f} s cpu)")
    for r in results["runs"]:
        print(f"  {r['family']:3} U = {r['unique_sentences']:5,}: {r['wall_time_s']:6.1f} s")


if __name__ == "__main__":
    main()
