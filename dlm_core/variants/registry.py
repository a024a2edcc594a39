"""The registry of toy variants: one line per variant. A new variant is its module (a
`variant.Variant` subclass and an instance) and one line here."""

from __future__ import annotations

from dlm_core.variants import autoregressive, gaussian, masked, uniform
from dlm_core.variants.base import Variant

VARIANTS: dict[str, Variant] = {
    "masked": masked.VARIANT,
    "uniform": uniform.VARIANT,
    "gaussian": gaussian.VARIANT,
    "autoregressive": autoregressive.VARIANT,  # the baseline: the masked network with a causal mask
}


def get(name: str) -> Variant:
    """The variant of that name; a clear error for an unknown one."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]
