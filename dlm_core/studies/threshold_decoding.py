"""Confidence-threshold parallel decoding (Fast-dLLM, Wu et al. 2025) against fixed-count decoding:
what a run costs in forward passes and what the passes buy (docs/maths.md section 1).

- `forward_passes(traj)`: the model forward passes a run made (guidance: two per call).
- `passes_note(traj)`: the plain sentence the Reverse and Real pages put beside a result: this run's
  passes, and what a fixed-count run and an autoregressive model of the same length need.
- `study(model)`: measured on the toy language, for the shipped (or any) masked model: validity
  against forward passes per sentence, for the threshold strategy at several thresholds and for
  fixed-count strategies at several step budgets T. The passes of a threshold run are counted per
  sentence: the steps until that sentence has nothing masked (a batch keeps stepping for the others,
  a sentence decoded alone would stop).
- `study_summary(results)`: what it shows, in sentences computed from its numbers (the figure is
  render/study_figures.threshold_figure).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass


def forward_passes(traj) -> int:
    """Model forward passes of a trajectory: one per step that called the model (a step that reused the
    last output costs none), two with classifier-free guidance (a conditional and an unconditional pass)."""
    calls = sum(1 for r in traj.records if r.model_called)
    guided = bool(traj.settings.get("cfg_scale")) and bool(traj.fixed)
    return calls * (2 if guided else 1)


def passes_note(traj, unit: str = "unit") -> str:
    """One plain sentence for a finished masked run: its forward passes, and what a fixed-count run and an
    autoregressive model need for the same number of new units (`unit`: "unit" or "token")."""
    n = forward_passes(traj)
    if traj.mask_id is None:
        return ""
    new = sum(1 for i in traj.initial if i == traj.mask_id)
    units = f"{new} {unit}{'s' if new != 1 else ''}"
    per = f" ({new / n:.1f} {unit}s per pass)" if n else ""
    head = f"This run made **{n} forward pass{'es' if n != 1 else ''}** for {units}{per}."
    if traj.settings.get("strategy") == "threshold":
        head += (f" The confidence threshold ({traj.settings.get('threshold')}) decided how many: every {unit} it "
                 "was sure enough of was committed in the same pass.")
    return (head + f" A fixed-count run (LLaDA) of the same length needs {new} passes to commit one {unit} per "
            f"step; with fewer steps it commits several per pass whatever their confidence. An autoregressive "
            f"model needs {new} passes, one per {unit}.")


# ------------------------------------------------------------------------------- the toy study


@dataclass
class StudySettings:
    thresholds: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 0.9)
    steps: tuple[int, ...] = (1, 2, 3, 4, 5, 6)  # step budgets T of the fixed-count strategies
    strategies: tuple[str, ...] = ("low-confidence", "random")  # fixed-count strategies beside threshold
    n_samples: int = 2000
    temperature: float = 1.0
    seed: int = 0  # threshold j: seed + 100 j; fixed-count at T: seed + 7 T

    @classmethod
    def quick(cls) -> StudySettings:
        return cls(thresholds=(0.5, 0.9), steps=(2, 6), strategies=("low-confidence",), n_samples=400)


def _run(variant, model, n: int, steps: int, seed: int, **options) -> tuple:
    """n toy sentences through the masked sampler in one batch: (samples (n, L), passes per sentence (n,))."""
    import torch

    cfg = variant.sampler_config(steps, seed, **options)
    cfg.top_k = 1  # no records are kept
    sampler = variant.make_sampler(model, cfg, batch=n)
    passes = torch.zeros(n, dtype=torch.long)
    while not sampler.done:
        waiting = (sampler.x == sampler.mask_id).any(-1)  # the sentences this pass is for
        out = sampler.step()
        if out.model_called:
            passes += waiting
    return sampler.x.cpu(), passes


def _cell(x, passes) -> dict:
    import math

    from dlm_core.variants.evaluate import StepsCell

    cell = StepsCell.from_samples(x).to_dict()
    p = passes.double()
    cell["passes"] = float(p.mean())
    cell["passes_stderr"] = float(p.std() / math.sqrt(len(p))) if len(p) > 1 else 0.0
    return cell


def study(model, settings: StudySettings | None = None, progress=None) -> dict:
    """Validity (and the other sampled metrics) against forward passes per sentence on the toy language:
    the threshold strategy at each threshold (at most L steps) and each fixed-count strategy at each T.
    `progress(fraction, text)` reports along the way."""
    import torch

    from dlm_core.toy_language import L
    from dlm_core.variants.registry import VARIANTS

    st = settings or StudySettings()
    torch.set_num_threads(1)
    variant = VARIANTS["masked"]
    t0 = time.perf_counter()
    jobs = len(st.thresholds) + len(st.strategies) * len(st.steps)
    done = 0

    def tick(text: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done / jobs, text)

    threshold = {}
    for j, thr in enumerate(st.thresholds):
        x, passes = _run(variant, model, st.n_samples, L, st.seed + 100 * j, strategy="threshold", threshold=thr,
                         temperature=st.temperature)
        threshold[f"{thr:g}"] = _cell(x, passes)
        tick(f"threshold {thr:g}")
    fixed = {}
    for strategy in st.strategies:
        fixed[strategy] = {}
        for T in st.steps:
            x, passes = _run(variant, model, st.n_samples, T, st.seed + 7 * T, strategy=strategy,
                             temperature=st.temperature)
            fixed[strategy][str(T)] = _cell(x, passes)
            tick(f"{strategy}, T = {T}")
    return {"what": "validity against forward passes per sentence: confidence-threshold vs fixed-count decoding",
            "settings": asdict(st), "length": L, "threshold": threshold, "fixed": fixed,
            "wall_time_s": round(time.perf_counter() - t0, 2)}


def study_summary(results: dict) -> str:
    """What the study shows, in plain sentences computed from its numbers: the fewest forward passes at which
    a threshold matches the quality of one unit per step (within two standard errors), and the threshold
    that gains most over the low-confidence fixed count at the same passes (the straight line between the
    two nearest step budgets T)."""
    L = results["length"]
    fixed = {int(T): c for T, c in results["fixed"].get("low-confidence", {}).items()}
    ref = fixed.get(L)
    cells = sorted(results["threshold"].items(), key=lambda kv: kv[1]["passes"])
    if ref is None or not cells:
        return ""
    same = [(t, c) for t, c in cells
            if c["validity"] >= ref["validity"] - 2 * (c["validity_stderr"] ** 2 + ref["validity_stderr"] ** 2) ** 0.5]
    text = f"One unit per step (low-confidence, T = {L}) reaches validity {ref['validity']:.3f} in {L} passes. "
    if same:
        t, c = same[0]
        text += (f"The threshold strategy matches it (within two standard errors) from threshold {t} on, with "
                 f"{c['passes']:.2f} passes per sentence ({1 - c['passes'] / L:.0%} fewer).")
    else:
        text += "No threshold matches it."
    best = None
    for t, c in cells:
        lo = max((T for T in fixed if T <= c["passes"]), default=None)
        hi = min((T for T in fixed if T >= c["passes"]), default=None)
        if lo is None or hi is None:
            continue
        line = fixed[lo]["validity"] if hi == lo else fixed[lo]["validity"] + (c["passes"] - lo) / (hi - lo) * (
            fixed[hi]["validity"] - fixed[lo]["validity"])
        if best is None or c["validity"] - line > best[0]:
            best = (c["validity"] - line, t, c, lo, hi, line)
    if best is not None:
        gain, t, c, lo, hi, line = best
        between = f"T = {lo}" if lo == hi else f"T = {lo} ({fixed[lo]['validity']:.3f}) and T = {hi} " \
                                              f"({fixed[hi]['validity']:.3f})"
        text += (f" At the same passes the largest difference is threshold {t}: validity {c['validity']:.3f} with "
                 f"{c['passes']:.2f} passes, where the fixed count's line between {between} gives {line:.3f} "
                 f"({gain:+.3f}).")
    return text
