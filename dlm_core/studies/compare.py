"""Comparing the variants honestly (docs/maths.md section 4): one footing for all three.

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

from dlm_core import ASSETS

# Only the light part (reading and tabulating results) is imported eagerly, so that the Compare
# page draws its table before torch is loaded; compute() imports the models' modules.
from dlm_core.variants.evaluate import VALIDITY_STEPS  # numpy only

RESULTS = ASSETS / "compare_results.json"


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


def command_of(cs: CompareSettings) -> str:
    """The CLI line that recomputes these settings (python -m dlm_core compare)."""
    quick = cs.n_t < CompareSettings.n_t
    base = CompareSettings.quick() if quick else CompareSettings()
    return ("python -m dlm_core compare --json" + " --quick" * quick
            + (f" --samples {cs.n_samples}" if cs.n_samples != base.n_samples else ""))


def compute(settings: CompareSettings | None = None, progress=None, models: dict | None = None) -> dict:
    """All the numbers of the Compare page. `progress(fraction, text)` reports along the way;
    `models` may replace a variant's shipped model (e.g. one trained on the Train page).

    Every registered variant is evaluated the same way (Variant.evaluate: its bound, and the
    sampled quality at every step budget, exact where the variant can be); the masked variant's
    sampling strategies, schedules and ReMDM remasking are studied beside them."""
    import torch

    from dlm_core.sampling.masked_sampler import STRATEGIES
    from dlm_core.schedules import SCHEDULES
    from dlm_core.studies import training
    from dlm_core.toy_language import entropy_bits_per_unit, support_arrays, support_size
    from dlm_core.variants.evaluate import EvalSettings, StepsCell, kl_bits
    from dlm_core.variants.masked import ancestral_exact_probs, log_probs_fn
    from dlm_core.variants.registry import VARIANTS

    cs = settings or CompareSettings()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    H = entropy_bits_per_unit()
    models = {v: (models or {}).get(v) or training.load_checkpoint(training.default_checkpoint(v))[0]
              for v in VARIANTS}
    jobs = len(VARIANTS) + len(cs.strategy_steps) * len(STRATEGIES) + len(cs.remdm_etas)
    done = 0

    def tick(text: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(min(done / jobs, 1.0), text)

    ev = EvalSettings(n_samples=cs.n_samples, n_t=cs.n_t, steps=tuple(cs.steps), seed=cs.seed)
    variants = {}
    for name, variant in VARIANTS.items():
        r = variant.evaluate(models[name], ev).to_dict()
        variants[name] = {"nelbo_bits_per_unit": r["nelbo_bits_per_unit"], "nelbo_stderr_bits": r["nelbo_stderr_bits"],
                          "nelbo_minus_entropy_bits": r["nelbo_minus_entropy_bits"], "by_steps": r["by_steps"],
                          **{k: v for k, v in r["details"].items() if k == "nll_bits_per_unit"}}
        tick(f"{name}: bound and {len(cs.steps)} step budgets")

    masked, model = VARIANTS["masked"], models["masked"]
    strategies = {}
    for T in cs.strategy_steps:
        strategies[str(T)] = {}
        for strategy in STRATEGIES:
            x = masked.sample(model, cs.n_samples, T, seed=cs.seed + 7 * T, strategy=strategy)
            strategies[str(T)][strategy] = StepsCell.from_samples(x).to_dict()
            tick(f"masked, {strategy}, {T} steps")
    sa, lp = support_arrays(), log_probs_fn(model)
    schedules_ = {}
    for sched in SCHEDULES:  # exact, for the ancestral sampler
        cells = {}
        for T in cs.steps:
            p_T = ancestral_exact_probs(sa.x, lp, T, sched)
            cells[str(T)] = {"validity_exact": float(p_T.sum()), "forward_kl_bits_exact": kl_bits(sa.p, p_T)}
        schedules_[sched] = cells
    remdm = {}
    for eta in cs.remdm_etas:
        x = masked.sample(model, cs.n_samples, cs.remdm_steps, seed=cs.seed + 31, strategy="ancestral",
                          remask_eta=eta)
        remdm[f"{eta:g}"] = StepsCell.from_samples(x).to_dict()
        tick(f"ReMDM eta = {eta:g}")

    return {
        "what": f"Toy-language comparison of the {', '.join(VARIANTS)} variants (docs/maths.md section 4)",
        "computed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_time_s": round(time.perf_counter() - t0, 1),
        "command": command_of(cs),
        "settings": asdict(cs),
        "seeds": "variant cells at T: seed + 1000 T (+ chunk start); strategies: seed + 7 T; ReMDM: seed + 31; "
                 "uniform / Gaussian NELBO: generator seed",
        "entropy_bits_per_unit": H,
        "support_size": support_size(),
        "plugin_kl_bias_bits": (support_size() - 1) / (2 * cs.n_samples * math.log(2)),
        "variants": variants,
        "strategies": strategies,
        "schedules": schedules_,
        "remdm": {"steps": cs.remdm_steps, "by_eta": remdm},
    }


def load_results(path: str | Path = RESULTS) -> dict | None:
    p = Path(path)
    return json.loads(p.read_text()) if p.exists() else None


def missing_variants(results: dict, names) -> list[str]:
    """The registered variants a results file does not hold yet (it was computed before they were added)."""
    return [n for n in names if n not in results.get("variants", {})]


def summary_rows(results: dict, steps: int) -> list[dict]:
    """The headline table at one step budget: one row per variant."""
    rows = []
    for v, row in results["variants"].items():
        if str(steps) not in row["by_steps"]:  # a budget its sampler cannot write a sentence in (autoregressive)
            fewest = min(int(k) for k in row["by_steps"])
            rows.append({**dict.fromkeys(("variant", "NELBO − H (bits/unit)", "validity", "error reasons", "coverage",
                                          "forward KL (bits, exact)", "KL valid (bits)", "TV"), "—"),
                         "variant": v, "validity": f"— (needs at least {fewest} steps)"})
            continue
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


def strategy_rows(results: dict, steps: int) -> list[dict]:
    """The masked strategies at one step budget: one row per strategy."""
    return [{"strategy": k, "validity": f"{c['validity']:.4f} ± {c['validity_stderr']:.4f}",
             "coverage": f"{c['coverage_fraction']:.3f}", "KL valid (bits)": f"{c['kl_valid_bits']:.3f}",
             "TV": f"{c['tv']:.3f}"} for k, c in results["strategies"][str(steps)].items()]


def markdown_table(rows: list[dict]) -> str:
    """Rows of equal keys as a Markdown table (drawn at once by the page, no table widget to load)."""
    if not rows:
        return ""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]).replace("|", "/") for k in keys) + " |" for r in rows]
    return "\n".join(lines)
