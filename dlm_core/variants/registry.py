"""The registry of toy variants: one line per variant. A new variant is its module (a
`base.ToyVariant` subclass and an instance) and one line here. (The real-model variant, variants/real.py,
is not listed: it samples a model loaded by name, not one trained on the toy language.)"""

from __future__ import annotations

from dlm_core.variants import autoregressive, gaussian, masked, uniform
from dlm_core.variants.base import ToyVariant

VARIANTS: dict[str, ToyVariant] = {
    "masked": masked.VARIANT,
    "uniform": uniform.VARIANT,
    "gaussian": gaussian.VARIANT,
    "autoregressive": autoregressive.VARIANT,  # the baseline: the masked network with a causal mask
}


def get(name: str) -> ToyVariant:
    """The variant of that name; a clear error for an unknown one."""
    if name not in VARIANTS:
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[name]
