"""One infill run, end to end (the CLI's `infill` command and the Infill page both call `run_infill`, so a
number on the page is the CLI's): its settings (`InfillSettings`, with the equivalent command), the
sampled completions against the language's exact conditional and, where it applies, the masked model's
exact infill (infill.py computes both), as one `InfillResult`.
"""

from __future__ import annotations

import math
import shlex
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch

from dlm_core.studies.infill import (
    ExactDistances,
    SampledDistances,
    check_pins,
    describe_pins,
    exact_distances,
    free_positions,
    infill_steps,
    language_conditional,
    model_infill_exact,
    pins_text,
    sample_infill,
    sampled_distances,
)
from dlm_core.toy_language import UNITS, L, decode, validity_reason

TOP_ROWS = 20  # completions the JSON and the page's table keep (the most likely, by language p + share)
INFILL_DEFAULT_STRATEGY = "random"  # the strategy whose infill is known exactly (when a variant has it)
FLAGS = {"remask_eta": "--eta"}  # CLI flags that differ from the option's name with dashes


# ----------------------------------------------------------------------- settings


@dataclass(frozen=True)
class InfillSettings:
    """Everything one infill run depends on; the CLI command and the page's cache key come from it."""

    variant: str = "masked"
    pins: tuple[tuple[int, int], ...] = ()  # (position, unit id), 0-based, sorted
    steps: int | None = None  # None: one step per free position (masked), the variant's default otherwise
    n: int = 2000  # completions sampled
    seed: int = 0  # the sampler's seed (sampler.sample_batched adds the chunk start); also the bootstrap's
    options: tuple[tuple[str, Any], ...] = ()  # sampler options that differ from the config's defaults, sorted

    @classmethod
    def make(cls, variant: str = "masked", pins=None, steps: int | None = None, n: int = 2000, seed: int = 0,
             **options) -> InfillSettings:
        """Checked settings. A variant that has the random strategy samples with it unless told otherwise
        (its infill is the one known exactly); options equal to the config's defaults are dropped."""
        from dlm_core.variants.registry import get

        v = get(variant)
        cls_ = v.config_class
        if "strategy" not in options and INFILL_DEFAULT_STRATEGY in getattr(cls_, "strategies", ()):
            options["strategy"] = INFILL_DEFAULT_STRATEGY
        defaults = {f.name: f.default for f in fields(cls_)}
        options = {k: round(float(val), 10) if isinstance(val, float) else val for k, val in options.items()}
        if options.get("block_length") == L:  # one block over the whole sentence is no block (plan_blocks)
            options["block_length"] = None
        kept = tuple(sorted(((k, val) for k, val in options.items() if k not in defaults or defaults[k] != val
                             or k == "strategy"), key=lambda kv: (kv[0] != "strategy", kv[0])))
        if int(n) < 1:
            raise ValueError("--n must be at least 1 (the number of completions to sample)")
        settings = cls(variant=v.name, pins=tuple(sorted(check_pins(pins or {}).items())),
                       steps=None if steps is None else int(steps), n=int(n), seed=int(seed), options=kept)
        settings.sampler_config()  # a clear error now for options the sampler does not take
        return settings

    @property
    def pin_dict(self) -> dict[int, int]:
        return dict(self.pins)

    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def variant_obj(self):
        from dlm_core.variants.registry import get

        return get(self.variant)

    @property
    def resolved_steps(self) -> int:
        return infill_steps(self.variant_obj(), self.pin_dict, self.steps)

    def sampler_config(self):
        return self.variant_obj().sampler_config(self.resolved_steps, self.seed, pins=self.pins,
                                                 **self.option_dict)

    def exact_why_not(self) -> str:
        """'' when the model's exact infill applies to these settings, else why it does not."""
        cfg = self.sampler_config()
        m = len(free_positions(self.pins))
        if self.variant_obj().mask_id is None:
            return "the exact infill is computed for the masked variant only"
        here = []
        if cfg.strategy != "random":
            here.append(f"strategy {cfg.strategy}")
        if m and cfg.steps != m:
            here.append(f"T = {cfg.steps}")
        if getattr(cfg, "temperature", 1.0) != 1.0:
            here.append(f"temperature {cfg.temperature:g}")
        if getattr(cfg, "block_length", None) not in (None, L):
            here.append(f"blocks of {cfg.block_length}")
        if getattr(cfg, "cfg_scale", 0.0):
            here.append("guidance")
        if not here:
            return ""
        return (f"the exact infill is known for the random strategy with one unit per step (T = {m}, the number "
                f"of free positions) at temperature 1 in one block; here: {', '.join(here)}")

    def command(self) -> str:
        """The CLI command that computes these numbers (positions counted from 1, units by name)."""
        parts = ["python", "-m", "dlm_core", "infill", "--variant", self.variant]
        for i, u in self.pins:
            parts += ["--pin", f"{i + 1}={UNITS[u]}"]
        for k, val in self.options:
            flag = FLAGS.get(k, "--" + k.replace("_", "-"))
            if isinstance(val, bool):
                parts += [flag] if val else []
            elif val is not None:
                parts += [flag, str(val)]
        parts += ["--steps", str(self.resolved_steps), "--n", str(self.n), "--seed", str(self.seed)]
        return " ".join(shlex.quote(p) for p in parts)

    def all_command(self) -> str:
        """The CLI command of the table over every variant and strategy on the same pins, n and seed."""
        parts = ["python", "-m", "dlm_core", "infill", "--all"]
        for i, u in self.pins:
            parts += ["--pin", f"{i + 1}={UNITS[u]}"]
        parts += ["--n", str(self.n), "--seed", str(self.seed)]
        return " ".join(shlex.quote(p) for p in parts)

    def to_dict(self) -> dict:
        return {"variant": self.variant, "pins": pins_text(self.pins), "pins_0based": [list(p) for p in self.pins],
                "steps": self.resolved_steps, "n": self.n, "seed": self.seed, "options": self.option_dict}


# ------------------------------------------------------------------------- one run


@dataclass
class CompletionRow:
    text: str  # the 6 units
    reason: str  # toy_language.validity_reason: 'valid' or the error
    language_p: float  # p(x | pins), exact
    count: int  # how many of the n completions
    share: float  # count / n
    share_se: float  # binomial: sqrt(share (1 - share) / n)
    model_exact_p: float | None = None  # the model's exact infill probability, where it applies


@dataclass
class InfillResult:
    settings: InfillSettings
    steps: int
    free_positions: list[int]  # 0-based
    conditional_size: int  # sentences of the language with the pins
    sampled: SampledDistances
    exact: ExactDistances | None  # None where the exact infill does not apply (see exact_why_not)
    exact_why_not: str
    rows: list[CompletionRow] = field(default_factory=list)  # every sentence with the pins and every sample
    command: str = ""

    def top_rows(self, k: int = TOP_ROWS) -> list[CompletionRow]:
        return self.rows[:k]

    def to_dict(self, top: int | None = TOP_ROWS) -> dict:
        """JSON-ready: settings, distances and the top completions (all of them with top=None)."""
        return {"settings": self.settings.to_dict(), "command": self.command, "steps": self.steps,
                "free_positions": [i + 1 for i in self.free_positions], "conditional_size": self.conditional_size,
                "sampled": asdict(self.sampled), "exact": None if self.exact is None else asdict(self.exact),
                "exact_why_not": self.exact_why_not,
                "rows": [asdict(r) for r in (self.rows if top is None else self.rows[:top])]}


def run_infill(model, settings: InfillSettings) -> InfillResult:
    """Sample the completions, compare them with the language's exact conditional, and (masked, random
    order, one unit per step) with the model's exact infill. Raises ImpossiblePins before sampling anything
    when no sentence has the pins. Runs torch on one thread (docs/maths.md: tiny models, reproducible)."""
    torch.set_num_threads(1)
    pins = settings.pin_dict
    conditional = language_conditional(pins)  # ImpossiblePins here, before any sampling
    variant = settings.variant_obj()
    x = sample_infill(variant, model, pins, settings.n, settings.seed, settings.resolved_steps,
                      **settings.option_dict)
    sampled = sampled_distances(x, conditional, seed=settings.seed)
    counts = Counter(tuple(int(u) for u in row) for row in x)
    why_not = settings.exact_why_not()
    exact = exact_d = None
    if not why_not:
        exact = model_infill_exact(model, pins, list(dict.fromkeys([*conditional, *counts])))
        exact_d = exact_distances(exact, conditional)
    n = settings.n
    rows = []
    for comp in dict.fromkeys([*conditional, *counts]):
        share = counts.get(comp, 0) / n
        rows.append(CompletionRow(text=decode(comp), reason=validity_reason(comp),
                                  language_p=conditional.get(comp, 0.0), count=counts.get(comp, 0), share=share,
                                  share_se=math.sqrt(share * (1 - share) / n),
                                  model_exact_p=None if exact is None else exact.probs[comp]))
    rows.sort(key=lambda r: (-(r.language_p + r.share), r.text))
    return InfillResult(settings=settings, steps=settings.resolved_steps, free_positions=free_positions(pins),
                        conditional_size=len(conditional), sampled=sampled, exact=exact_d, exact_why_not=why_not,
                        rows=rows, command=settings.command())


def infill_by_variant(models: Callable[[str], Any], pins, n: int = 2000, seed: int = 0) -> list[InfillResult]:
    """One run per variant and, for variants with several strategies, per strategy (steps: the default of
    `infill_steps`), on the same pins, n and seed: the table 'per variant and strategy'.
    `models(name)` gives the model of a variant. Raises ImpossiblePins first when nothing fits the pins."""
    from dlm_core.variants.registry import VARIANTS

    language_conditional(pins)
    out = []
    for name, v in VARIANTS.items():
        strategies = getattr(v.config_class, "strategies", ("ancestral",))
        for strategy in strategies if len(strategies) > 1 else (None,):
            opts = {} if strategy is None else {"strategy": strategy}
            out.append(run_infill(models(name), InfillSettings.make(name, pins, None, n, seed, **opts)))
    return out


# -------------------------------------------------------------------------- text


def format_result(result: InfillResult, top: int = 12) -> str:
    """The human-readable report the CLI prints without --json."""
    s, d = result.settings, result.sampled
    pins = describe_pins(s.pins)
    lines = [f"infill, {s.variant} ({', '.join(f'{k}={v}' for k, v in s.options) or 'defaults'}), "
             f"T = {result.steps} steps, n = {s.n}, seed {s.seed}",
             f"pins: {pins}; free positions: {', '.join(str(i + 1) for i in result.free_positions) or 'none'}; "
             f"{result.conditional_size} sentence(s) of the language fit",
             f"sampled   valid mass {d.valid_mass:.4f} ± {d.valid_mass_se:.4f}   TV {d.tv:.4f} ± {d.tv_se:.4f} "
             f"(n exact draws: ~{d.tv_floor:.4f})   KL valid "
             + ("n/a (no valid completion)" if d.kl_valid_bits is None else
                f"{d.kl_valid_bits:.4f} ± {d.kl_valid_se:.4f} bits (n exact draws: ~{d.kl_valid_bias_bits:.4f})")]
    if result.exact is not None:
        e = result.exact
        lines.append(f"exact     valid mass {e.valid_mass:.4f}            TV {e.tv:.4f}            KL valid "
                     f"{e.kl_valid_bits:.4f} bits   forward KL {e.forward_kl_bits:.4f} bits")
    else:
        lines.append(f"exact     n/a: {result.exact_why_not}")
    lines.append("")
    head = f"{'completion':34} {'language p':>10} {'sampled share':>17}" + (
        f" {'model exact':>11}" if result.exact is not None else "") + "  verdict"
    lines.append(head)
    for r in result.top_rows(top):
        exact = f" {r.model_exact_p:11.4f}" if r.model_exact_p is not None else ""
        lines.append(f"{r.text:34} {r.language_p:10.4f} {r.share:8.4f} ± {r.share_se:.4f}{exact}  "
                     f"{r.reason.replace('_', ' ')}")
    return "\n".join(lines)


def pm(value, se, digits: int = 4) -> str:
    """A value ± its standard error ("n/a" where there is none)."""
    return "n/a" if value is None else f"{value:.{digits}f} ± {se:.{digits}f}"


def completion_rows(result: InfillResult, top: int = TOP_ROWS) -> list[dict]:
    """The table of the most likely completions: verdict, the language's exact p, the model's share ± SE
    and, where it applies, the model's exact p."""
    return [{"completion": r.text, "verdict": r.reason.replace("_", " "), "language p (exact)": r.language_p,
             "model share (sampled)": r.share, "± SE": r.share_se,
             **({"model p (exact)": r.model_exact_p} if result.exact is not None else {})}
            for r in result.top_rows(top)]


def variant_rows(results: list[InfillResult]) -> list[dict]:
    """The table of every variant and strategy on the same pins (infill_by_variant)."""
    return [{"variant": r.settings.variant, "strategy": r.settings.sampler_config().strategy,
             "T": r.steps, "validity": pm(r.sampled.valid_mass, r.sampled.valid_mass_se, 3),
             "TV": pm(r.sampled.tv, r.sampled.tv_se), "KL valid (bits)": pm(r.sampled.kl_valid_bits,
                                                                           r.sampled.kl_valid_se),
             "TV (exact)": "" if r.exact is None else f"{r.exact.tv:.4f}"} for r in results]
