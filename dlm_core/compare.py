"""Comparing the variants honestly (maths.md section 4): one footing for all three.

The exact entropy H is the floor; every variant gets the same step budgets, the same
number of samples and fixed seeds. Exact numbers are used where they exist (masked:
NELBO, ancestral-sampler validity and forward KL); the rest are sampled, with their
standard errors. `compute()` is what the CLI's `compare` prints and what the shipped
results file (assets/compare_results.json) holds.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

# Only the light part (reading and tabulating results) is imported eagerly, so that the Compare
# page draws its table before torch is loaded; compute() imports the models' modules.
RESULTS = Path(__file__).resolve().parent.parent / "assets" / "compare_results.json"
VALIDITY_STEPS = (1, 2, 3, 6, 12, 24, 100)


@dataclass
class CompareSettings:
    n_samples: int = 20000  # per sampled cell (the plug-in KL bias is ~ (216 - 1) / (2 n ln 2) bits)
    n_t: int = 1000  # Monte-Carlo times per sentence for the uniform / Gaussian bounds
    steps: tuple[int, ...] = VALIDITY_STEPS
    strategy_steps: tuple[int, ...] = (3, 6)
    remdm_steps: int = 12
    remdm_etas: tuple[float, ...] = (0.0, 0.1, 0.2, 0.4)
    seed: int = 0

    @classmethod
    def quick(cls) -> CompareSettings:
        return cls(n_samples=2000, n_t=100)


def _metrics(x) -> dict:
    from .toy_language import sample_metrics

    m = sample_metrics(x.tolist())
    return {"validity": m.validity, "validity_stderr": m.validity_stderr, "reasons": m.reasons,
            "coverage_fraction": m.coverage_fraction, "kl_valid_bits": m.kl_valid_bits, "tv": m.tv, "n": m.n}


def _samples(variant: str, model, n: int, steps: int, seed: int, **options):
    import torch

    from . import training

    module = training.variant_module(variant)
    out = [module.sample_ids(model, min(4096, n - lo), steps, seed=seed + lo, **options) for lo in range(0, n, 4096)]
    return torch.cat(out)


def compute(settings: CompareSettings | None = None, progress=None, models: dict | None = None) -> dict:
    """All the numbers of the Compare page. `progress(fraction, text)` reports along the way;
    `models` may replace a variant's shipped model (e.g. one trained on the Train page)."""
    import numpy as np
    import torch

    from . import masked, training
    from .evaluate import BITS, kl_bits
    from .sampler import STRATEGIES
    from .schedules import SCHEDULES
    from .toy_language import entropy_bits_per_unit, support_arrays, support_size

    st = settings or CompareSettings()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    H = entropy_bits_per_unit()
    models = dict(models or {})
    for v in training.VARIANTS:
        if v not in models:
            models[v] = training.load_checkpoint(training.default_checkpoint(v))[0]
    jobs = len(training.VARIANTS) * len(st.steps) + len(st.strategy_steps) * len(STRATEGIES) + len(st.remdm_etas)
    done = 0

    def tick(text: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done / jobs, 1.0), text)

    sa = support_arrays()
    variants = {}
    for v in training.VARIANTS:
        model = models[v]
        row: dict = {"by_steps": {}}
        if v == "masked":
            lp = masked.log_probs_fn(model)
            row["nelbo_bits_per_unit"] = float(np.sum(sa.p * masked.exact_nelbo(sa.x, lp))) / BITS
            row["nelbo_stderr_bits"] = 0.0
            row["nll_bits_per_unit"] = float(np.sum(sa.p * masked.exact_nll(sa.x, lp))) / BITS
        else:
            nelbo, se = training.variant_module(v).nelbo_estimate(model, n_t=st.n_t,
                                                                 generator=torch.Generator().manual_seed(st.seed))
            row["nelbo_bits_per_unit"], row["nelbo_stderr_bits"] = float(nelbo), float(se)
        row["nelbo_minus_entropy_bits"] = row["nelbo_bits_per_unit"] - H
        for T in st.steps:
            opts = {"strategy": "ancestral"} if v == "masked" else {}
            cell = _metrics(_samples(v, model, st.n_samples, T, st.seed + 1000 * T, **opts))
            if v == "masked":  # exact where it exists
                pT = masked.ancestral_exact_probs(sa.x, masked.log_probs_fn(model), T)
                cell["validity_exact"] = float(pT.sum())
                cell["forward_kl_bits_exact"] = kl_bits(sa.p, pT)
            row["by_steps"][str(T)] = cell
            tick(f"{v}: {T} steps")
        variants[v] = row

    lm = masked.log_probs_fn(models["masked"])
    strategies = {}
    for T in st.strategy_steps:
        strategies[str(T)] = {}
        for strategy in STRATEGIES:
            x = _samples("masked", models["masked"], st.n_samples, T, st.seed + 7 * T, strategy=strategy)
            strategies[str(T)][strategy] = _metrics(x)
            tick(f"masked, {strategy}, {T} steps")
    schedules_ = {}
    for sched in SCHEDULES:  # exact, for the ancestral sampler
        cells = {}
        for T in st.steps:
            pT = masked.ancestral_exact_probs(sa.x, lm, T, sched)
            cells[str(T)] = {"validity_exact": float(pT.sum()), "forward_kl_bits_exact": kl_bits(sa.p, pT)}
        schedules_[sched] = cells
    remdm = {}
    for eta in st.remdm_etas:
        x = _samples("masked", models["masked"], st.n_samples, st.remdm_steps, st.seed + 31,
                     strategy="ancestral", remask_eta=eta)
        remdm[f"{eta:g}"] = _metrics(x)
        tick(f"ReMDM eta = {eta:g}")

    return {
        "what": "Toy-language comparison of the masked, uniform and Gaussian variants (maths.md section 4)",
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "command": "python -m dlm_core compare --json" + (" --quick" if st.n_samples < 20000 else ""),
        "settings": asdict(st),
        "seeds": "variant cells: seed + 1000 T (+ chunk start); strategies: seed + 7 T; ReMDM: seed + 31; "
                 "uniform / Gaussian NELBO: generator seed",
        "entropy_bits_per_unit": H,
        "support_size": support_size(),
        "plugin_kl_bias_bits": (support_size() - 1) / (2 * st.n_samples * math.log(2)),
        "variants": variants,
        "strategies": strategies,
        "schedules": schedules_,
        "remdm": {"steps": st.remdm_steps, "by_eta": remdm},
    }


def load_results(path: str | Path = RESULTS) -> dict | None:
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else None


def summary_rows(results: dict, steps: int) -> list[dict]:
    """The headline table at one step budget: one row per variant."""
    rows = []
    for v, row in results["variants"].items():
        cell = row["by_steps"][str(steps)]
        bad = {k: c for k, c in cell["reasons"].items() if k != "valid" and c}
        rows.append({
            "variant": v,
            "NELBO − H (bits/unit)": f"{row['nelbo_minus_entropy_bits']:+.4f}"
                                     + (f" ± {row['nelbo_stderr_bits']:.4f}" if row["nelbo_stderr_bits"] else
                                        " (exact)"),
            "validity": f"{cell['validity']:.3f} ± {cell['validity_stderr']:.3f}"
                        + (f" (exact {cell['validity_exact']:.3f})" if "validity_exact" in cell else ""),
            "error reasons": ", ".join(f"{k.replace('_', ' ')} {c}" for k, c in bad.items()) or "none",
            "coverage": f"{cell['coverage_fraction']:.3f}",
            "forward KL (bits, exact)": f"{cell['forward_kl_bits_exact']:.3f}" if "forward_kl_bits_exact" in cell
            else "—",
            "KL valid (bits)": f"{cell['kl_valid_bits']:.3f}",
            "TV": f"{cell['tv']:.3f}",
        })
    return rows


def markdown_table(rows: list[dict]) -> str:
    """Rows of equal keys as a Markdown table (drawn at once by the page, no table widget to load)."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]).replace("|", "/") for k in keys) + " |" for r in rows]
    return "\n".join(lines)
