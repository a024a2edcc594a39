"""One palette for the whole app (design.md section 4): what each colour means, defined once.

- STATES: the colour of a token's state in the stage, the grid, the chips, the legend and the
  exports (Okabe-Ito, colour-blind safe). These colours mean states only.
- MARKS: the shape each state also has, so that no state is told by colour alone (WCAG 1.4.1): a
  dashed outline for a mask, a dot for committed now, a triangle for changed, a struck-through
  unit for re-masked; committed earlier is the one plain, solid chip. Every surface draws them:
  the player's chips and grid, the legend, the PNG / GIF exports and the offline HTML.
- Contrast (WCAG 1.4.3 and 1.4.11): a state's text on its fill >= 4.5:1, its mark on its fill
  >= 3:1, a mask's outline on the page >= 3:1 (tests/test_contrast.py computes them from here).
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
    "changed": ("#D55E00", "#000000", "changed at this step (self-correction)"),
    "remasked": ("#CC79A7", "#000000", "re-masked at this step (ReMDM)"),
}
STATE_ORDER = list(STATES)  # a state's code (its index), as the stage's data and the exports use it
LEGEND_ORDER = ("mask", "committed_now", "changed", "committed_earlier", "remasked")  # how a legend reads
PROMPT_OUTLINE = "#000000"  # prompt / pinned by the user: black outline
PAGE = "#FFFFFF"  # the background every state is drawn on

# state -> (mark, glyph, ink, what the legend says about it). The mark is how a surface draws it:
# "outline" a dashed outline inside the chip or cell, "dot" / "triangle" a small shape in its top-right
# corner, "strike" a line through the unit, "" nothing. The glyph is the same mark as a character,
# for text (the legend's words, a screen reader's table never uses it). The ink is the mark's colour.
MARKS = {
    "mask": ("outline", "⬚", "#4D4D4D", "dashed outline"),
    "committed_now": ("dot", "●", "#000000", "dot"),
    "committed_earlier": ("", "", "", "plain"),
    "changed": ("triangle", "▲", "#000000", "triangle"),
    "remasked": ("strike", "✕", "#000000", "struck through"),
}

SEQUENTIAL = "Viridis"  # the one scale for confidence and probability

# Series: Tol's muted indigo, green, purple, wine, olive, teal (darkened from #44AA99, 2.8:1, to #3A9A8A);
# every one >= 3:1 against white (WCAG 1.4.11).
SERIES = ("#332288", "#117733", "#AA4499", "#882255", "#999933", "#3A9A8A")
VARIANT_COLORS = {"masked": SERIES[0], "uniform": SERIES[1], "gaussian": SERIES[2], "autoregressive": SERIES[4]}
NEUTRAL = "#555555"  # a series with no colour of its own; reference lines use black


STRATEGY_COLORS = {"low-confidence": SERIES[0], "ancestral": SERIES[1], "entropy": SERIES[2], "threshold": SERIES[3],
                   "margin": SERIES[5], "random": NEUTRAL}
POSITION_COLORS = (*SERIES, NEUTRAL)  # one colour per position (paths in embedding space)


def series_color(name: str, j: int = 0) -> str:
    """The colour of a named series (a variant's own, else the j-th series colour)."""
    return VARIANT_COLORS.get(name, SERIES[j % len(SERIES)])


def luminance(colour: str) -> float:
    """The relative luminance of an sRGB colour '#RRGGBB' (WCAG 2.1)."""
    c = colour.lstrip("#")
    lin = []
    for j in (0, 2, 4):
        v = int(c[j:j + 2], 16) / 255
        lin.append(v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4)
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast(a: str, b: str) -> float:
    """The WCAG contrast ratio of two colours (1 to 21)."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)
