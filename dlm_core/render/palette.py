"""One palette for the whole app (design.md section 4): what each colour means, defined once.

- STATES: the colour of a token's state in the stage, the grid, the chips, the legend and the
  exports (Okabe-Ito, colour-blind safe). These colours mean states only.
- SERIES: the colours of series in charts (variants, strategies, schedules). They are taken from
  Paul Tol's colour-blind-safe "muted" scheme, none of them a state colour, so a chart never
  suggests a state; a series is also named in its legend.
- SEQUENTIAL: the one scale for confidence and probability (viridis).
"""

from __future__ import annotations

# state -> (fill, text colour, legend label)
STATES = {
    "mask": ("#D9D9D9", "#222222", "[MASK] / still noise"),
    "committed_now": ("#E69F00", "#000000", "committed at this step"),
    "committed_earlier": ("#0072B2", "#FFFFFF", "committed earlier (unchanged)"),
    "changed": ("#D55E00", "#FFFFFF", "changed at this step (self-correction)"),
    "remasked": ("#CC79A7", "#000000", "re-masked at this step (ReMDM)"),
}
STATE_ORDER = list(STATES)  # a state's code (its index), as the stage's data and the exports use it
LEGEND_ORDER = ("mask", "committed_now", "changed", "committed_earlier", "remasked")  # how a legend reads
PROMPT_OUTLINE = "#000000"  # prompt / pinned by the user: black outline

SEQUENTIAL = "Viridis"  # the one scale for confidence and probability

# Series: Tol's muted indigo, green, purple, wine, olive, teal; every one >= 3:1 against white.
SERIES = ("#332288", "#117733", "#AA4499", "#882255", "#999933", "#44AA99")
VARIANT_COLORS = {"masked": SERIES[0], "uniform": SERIES[1], "gaussian": SERIES[2], "autoregressive": SERIES[4]}
NEUTRAL = "#555555"  # a series with no colour of its own; reference lines use black


STRATEGY_COLORS = {"low-confidence": SERIES[0], "ancestral": SERIES[1], "entropy": SERIES[2], "threshold": SERIES[3],
                   "margin": SERIES[5], "random": NEUTRAL}
POSITION_COLORS = (*SERIES, NEUTRAL)  # one colour per position (paths in embedding space)


def series_color(name: str, j: int = 0) -> str:
    """The colour of a named series (a variant's own, else the j-th series colour)."""
    return VARIANT_COLORS.get(name, SERIES[j % len(SERIES)])
