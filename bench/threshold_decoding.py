"""Confidence-threshold decoding (Fast-dLLM) against fixed-count decoding: forward passes, quality, wall time.

    PYTHONPATH=. .venv/bin/python bench/threshold_decoding.py [--n 4000] [--prompts 2] [--gen-length 64]
                                                              [--thresholds 0.9 0.2 0.15 0.1] [--skip-real]

1. Toy language (shipped masked model, temperature 1): validity against forward passes per sentence for
   the threshold strategy at several thresholds and for fixed-count strategies at T = 1 to 6
   (dlm_core.parallel_decoding.study, n sentences per point), and the fewest passes at which a
   threshold matches one unit per step (low-confidence, T = 6).
2. The embedded real model, temperature 0 (Fast-dLLM's setting), prompts from its held-out text: the
   fixed-count low-confidence run at T = the generation length (one token per pass) against threshold
   decoding at each threshold, and against a fixed count with as many steps as the threshold run took
   (the same budget). Quality: the mean pseudo-log-likelihood of the generated tokens (each token
   masked alone, scored by the same model, nats per token; Salazar et al. 2020), the share of distinct
   tokens (repetition lowers it) and the share of tokens identical to the one-per-pass text. Equal
   quality: a pseudo-log-likelihood at most 0.05 nats per token lower and a distinct share at most
   0.05 lower than the one-per-pass run's. Each generation runs --repeat times (temperature 0: the same
   run) and its least time counts. The time compared is the thread's CPU time (one thread: the wall
   time of a machine that is not shared; on a busy one the wall time, printed beside, also counts the
   waits for a core). The target: threshold decoding at equal quality in at most 0.5 x the time of T =
   the generation length; the last line prints the best ratio measured and its ratio to the target
   (at most 1 meets it).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

EQUAL_PLL = 0.05  # nats per token
EQUAL_DISTINCT = 0.05
TARGET = 0.5


def toy_part(n: int) -> None:
    from dlm_core.studies import threshold_decoding as P
    from dlm_core.studies import training

    model = training.load_checkpoint(training.default_checkpoint("masked"))[0]
    settings = P.StudySettings(n_samples=n)
    r = P.study(model, settings)
    print(f"toy language, shipped masked model, temperature {settings.temperature:g}, {n} sentences per point "
          f"({r['wall_time_s']:.0f} s)")
    print(f"  {'strategy':28s} {'passes / sentence':>20s} {'validity':>17s} {'coverage':>9s}")
    for t, c in r["threshold"].items():
        print(f"  {'threshold ' + t:28s} {c['passes']:12.2f} ± {c['passes_stderr']:.2f} "
              f"{c['validity']:9.3f} ± {c['validity_stderr']:.3f} {c['coverage_fraction']:9.3f}")
    for strategy, by_T in r["fixed"].items():
        for T, c in by_T.items():
            print(f"  {strategy + ', T = ' + T:28s} {c['passes']:12.2f} ± {c['passes_stderr']:.2f} "
                  f"{c['validity']:9.3f} ± {c['validity_stderr']:.3f} {c['coverage_fraction']:9.3f}")
    print("  " + P.study_summary(r).replace("**", ""))


def pseudo_log_likelihood(lm, ids: list[int], lo: int, hi: int, chunk: int = 16) -> float:
    """Mean log p(x_i | everything else) over the positions lo..hi-1, each masked alone ([MASK] never predicted)."""
    x = torch.tensor([ids] * (hi - lo))
    pos = torch.arange(lo, hi)
    x[torch.arange(hi - lo), pos] = lm.mask_id
    total = 0.0
    for a in range(0, hi - lo, chunk):
        logits = lm(x[a:a + chunk]).double()
        rows = torch.arange(logits.shape[0])
        lg = logits[rows, pos[a:a + chunk]]
        lg[:, lm.mask_id] = float("-inf")
        target = torch.tensor(ids)[pos[a:a + chunk]]
        total += float(torch.log_softmax(lg, -1)[rows, target].sum())
    return total / (hi - lo)


def real_part(prompts: int, gen_length: int, thresholds: list[float], repeat: int) -> None:
    from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
    from dlm_core.studies.threshold_decoding import forward_passes
    from dlm_core.variants import hf_adapter

    torch.set_num_threads(1)
    lm = hf_adapter.load()
    held = json.loads((hf_adapter.EMBEDDED / "heldout.json").read_text())
    # the model card's held-out prompts (sentence starts), else the first 12 tokens of held-out windows
    texts = held.get("prompts") or [lm.tokenizer.decode(ids[1:13]) for ids in held["ids"]]
    texts = texts[:prompts]
    print(f"\n{lm.name}: temperature 0, {gen_length} tokens, one block, {len(texts)} held-out prompts; "
          f"equal quality: pseudo-log-likelihood (PLL) at most {EQUAL_PLL} nats/token and the distinct share at most "
          f"{EQUAL_DISTINCT} below the one-per-pass run's")

    def gen(prompt: str, strategy: str, steps: int, threshold: float = 0.9) -> dict:
        wall = cpu = float("inf")
        for _ in range(repeat):  # temperature 0: the same run each time; its quietest wall time counts
            cfg = MaskedSamplerConfig(steps=steps, strategy=strategy, threshold=threshold, temperature=0.0,
                                      block_length=gen_length, top_k=1)
            t0, c0 = time.perf_counter(), time.thread_time()
            traj = hf_adapter.generate(lm, prompt, gen_length, cfg)
            wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.thread_time() - c0)
        lo, hi = traj.gen_start, traj.gen_start + gen_length
        gen_ids = traj.final[lo:hi]
        return {"wall": wall, "cpu": cpu, "passes": forward_passes(traj), "ids": gen_ids, "text": lm.decode(gen_ids),
                "pll": pseudo_log_likelihood(lm, traj.final, lo, hi), "distinct": len(set(gen_ids)) / len(gen_ids)}

    best: dict[float, list[dict]] = {t: [] for t in thresholds}
    for j, prompt in enumerate(texts):
        ref = gen(prompt, "low-confidence", gen_length)
        print(f"\nprompt {j + 1}: {prompt!r}")
        print(f"  {'run':38s} {'passes':>6s} {'wall s':>7s} {'/ ref':>6s} {'cpu / ref':>9s} {'PLL':>7s} "
              f"{'distinct':>8s} {'same tokens':>11s}")

        def line(name: str, r: dict, ref: dict = ref) -> None:
            same = sum(a == b for a, b in zip(r["ids"], ref["ids"], strict=True)) / gen_length
            print(f"  {name:38s} {r['passes']:6d} {r['wall']:7.2f} {r['wall'] / ref['wall']:6.2f} "
                  f"{r['cpu'] / ref['cpu']:9.2f} {r['pll']:7.3f} {r['distinct']:8.2f} {same:11.0%}")

        line(f"low-confidence, T = {gen_length} (reference)", ref)
        rows = [("reference", ref)]
        for thr in thresholds:
            r = gen(prompt, "threshold", gen_length, thr)
            line(f"threshold {thr:g}", r)
            same_budget = gen(prompt, "low-confidence", r["passes"])
            line(f"  low-confidence, T = {r['passes']} (same passes)", same_budget)
            rows += [(f"threshold {thr:g}", r), (f"low-confidence T = {r['passes']}", same_budget)]
            equal = r["pll"] >= ref["pll"] - EQUAL_PLL and r["distinct"] >= ref["distinct"] - EQUAL_DISTINCT
            best[thr].append({"ratio": r["cpu"] / ref["cpu"], "wall": r["wall"] / ref["wall"],
                              "passes": r["passes"] / ref["passes"], "equal": equal,
                              "pll_vs_same_passes": r["pll"] - same_budget["pll"]})
        print("  texts side by side:")
        for name, r in rows:
            print(f"    {name:26s} | {r['text'][:110]!r}")
    print()
    for thr, runs in best.items():
        ratio = sum(r["ratio"] for r in runs) / len(runs)
        n_equal = sum(r["equal"] for r in runs)
        gain = sum(r["pll_vs_same_passes"] for r in runs) / len(runs)
        passes = sum(r["passes"] for r in runs) / len(runs)
        wall = sum(r["wall"] for r in runs) / len(runs)
        print(f"threshold {thr:g}: time / one-per-pass {ratio:.2f} (wall {wall:.2f}, passes {passes:.2f}; mean over "
              f"prompts), equal quality on "
              f"{n_equal} of {len(runs)} prompts; PLL minus the fixed count's at the same passes "
              f"{gain:+.3f} nats/token")
    qualified = [sum(r["ratio"] for r in runs) / len(runs) for runs in best.values() if all(r["equal"] for r in runs)]
    if qualified:
        ratio = min(qualified)
        print(f"best time ratio at equal quality: {ratio:.2f} (target <= {TARGET}); ratio / target "
              f"{ratio / TARGET:.2f}")
    else:
        print(f"no threshold reached equal quality on every prompt (target: <= {TARGET} x the time at equal "
              "quality); ratio / target: not met")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4000, help="toy sentences per point")
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--gen-length", type=int, default=64)
    ap.add_argument("--thresholds", type=float, nargs="+", default=[0.9, 0.2, 0.15, 0.1])
    ap.add_argument("--repeat", type=int, default=2, help="runs per generation; the quietest wall time counts")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-toy", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if not a.skip_toy:
        toy_part(a.n)
    if not a.skip_real:
        real_part(a.prompts, a.gen_length, a.thresholds, a.repeat)


if __name__ == "__main__":
    main()
