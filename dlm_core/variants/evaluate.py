"""One evaluation report for every variant, against the exact toy language (bits per unit).

`EvalReport` has the same keys for the three variants: the bound (NELBO) against the
entropy H, and per step budget T a `StepsCell` of sampled metrics (validity with its
standard error, error reasons, coverage, KL on valid samples, total variation) plus the
exact validity and forward KL where a variant can compute them (masked). What only one
variant has goes under `details`. Nothing here imports a variant: the variants import it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from dlm_core.toy_language import L, entropy_bits, entropy_bits_per_unit, sample_metrics, support_size

VALIDITY_STEPS = (1, 2, 3, 6, 12, 24, 100)  # the step budgets T every report and the comparison use
BITS = L * math.log(2)  # nats per sentence -> bits per unit


@dataclass
class EvalSettings:
    n_samples: int = 20000  # samples per step budget (the plug-in KL bias is ~ (216 - 1) / (2 n ln 2) bits)
    n_t: int = 1000  # Monte-Carlo times per sentence for the bounds that are not exact
    steps: tuple[int, ...] = VALIDITY_STEPS
    seed: int = 0  # the samples at T use seed + 1000 T (sampler.sample_batched adds the chunk start)
    schedule: str = "linear"  # alpha_t of the masked ancestral sampler's exact validity

    @classmethod
    def quick(cls, **kw) -> EvalSettings:
        """Seconds, not minutes: for right after training and for tests."""
        return cls(**{"n_samples": 1000, "n_t": 100, **kw})

    def seed_at(self, steps: int) -> int:
        return self.seed + 1000 * steps


@dataclass
class StepsCell:
    """Quality of the T-step sampler."""

    validity: float  # fraction of samples that are sentences of the language
    validity_stderr: float
    reasons: dict  # error reason -> count (toy_language.REASONS)
    coverage_fraction: float  # distinct valid sentences / support size
    kl_valid_bits: float  # KL(empirical valid samples || p), bits per sentence
    tv: float  # total variation between the samples and p, invalid mass included
    n: int
    validity_exact: float | None = None  # exact valid mass, where the variant can compute it
    forward_kl_bits_exact: float | None = None  # exact KL(p || p_T), bits per sentence

    @classmethod
    def from_samples(cls, x) -> StepsCell:
        m = sample_metrics(x.tolist() if hasattr(x, "tolist") else x)
        return cls(validity=m.validity, validity_stderr=m.validity_stderr, reasons=m.reasons,
                   coverage_fraction=m.coverage_fraction, kl_valid_bits=m.kl_valid_bits, tv=m.tv, n=m.n)

    def to_dict(self) -> dict:
        """As a dict, without the exact fields a variant could not compute."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass
class EvalReport:
    variant: str
    nelbo_bits_per_unit: float
    nelbo_stderr_bits: float  # 0 when exact
    nelbo_exact: bool
    by_steps: dict[str, StepsCell] = field(default_factory=dict)  # keyed by str(T)
    settings: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)  # what only this variant reports
    entropy_bits_per_unit: float = field(default_factory=entropy_bits_per_unit)
    entropy_bits: float = field(default_factory=entropy_bits)
    support_size: int = field(default_factory=support_size)

    @property
    def nelbo_over_entropy(self) -> float:
        return self.nelbo_bits_per_unit / self.entropy_bits_per_unit

    def to_dict(self) -> dict:
        d = asdict(self)
        d["by_steps"] = {k: cell.to_dict() for k, cell in self.by_steps.items()}
        d["nelbo_over_entropy"] = self.nelbo_over_entropy
        d["nelbo_minus_entropy_bits"] = self.nelbo_bits_per_unit - self.entropy_bits_per_unit
        return d


def kl_bits(p: np.ndarray, q: np.ndarray) -> float:
    """Forward KL(p || q) in bits per sentence over the support (inf if q misses a sentence)."""
    with np.errstate(divide="ignore"):
        return float(np.sum(p * (np.log2(p) - np.log2(q))))


def sampled_cells(variant, model, settings: EvalSettings, **options) -> dict[str, StepsCell]:
    """The sampled metrics of the T-step sampler for every T of the settings (seeded per T)."""
    return {str(T): StepsCell.from_samples(variant.sample(model, settings.n_samples, steps=T,
                                                          seed=settings.seed_at(T), **options))
            for T in settings.steps}
