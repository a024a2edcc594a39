"""The forward (noising) process of any variant at one time t, for the Forward page.

`forward_view` returns plain numbers (no plotting): a sampled corruption of the sentence,
what the variant shows of it (Variant.forward_view), and the colour state of each position
in forward words: clean, or corrupted by the noise.
"""

from __future__ import annotations

from .variants import get

PRESETS = (
    "dog s are our friend s",
    "our dog s are your s",
    "your cat is our friend [PAD]",
    "we are their s",
    "you are your cat",
)


def forward_view(variant: str, x0: tuple[int, ...], t: float, seed: int = 0, schedule: str = "linear",
                 model=None) -> dict:
    """One corrupted sample z_t of x0, its states and what the variant shows of it at time t."""
    v = get(variant)
    if model is None and v.needs_model_for_forward():
        raise ValueError(f"the {variant} forward process needs the trained model")
    view = v.forward_view(model, x0, t, seed=seed, schedule=schedule)
    view["states"] = ["mask" if v.mask_id is not None and u == v.mask_id else "changed" if i in view["changed"]
                      else "committed_earlier" for i, u in enumerate(view["tokens"])]
    return view


def schedule_curve(variant: str, schedule: str = "linear", model=None, n: int = 201) -> dict:
    """The noise schedule of a variant over t in [0, 1] (curves by label)."""
    return get(variant).schedule_curve(model, schedule, n)
