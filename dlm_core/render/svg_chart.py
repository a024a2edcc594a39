"""A small chart drawn as inline SVG: the charts a page shows when it opens, with no chart library.

Why: plotly's browser script is about 4 MB; on a small machine a new tab spends over a second
parsing it before the first chart appears, so a page that opens with a plotly chart cannot open
in 2 s (bench/page_open.py). The charts under the stage are simple (bars, a strip, a few points
and lines), so they are drawn here as SVG inside the page's HTML: nothing to load, and drawn as
fast as text. Hovering a point or bar shows its value (an SVG <title>).

Every text that comes from data (unit names, a model's tokens) is escaped by `safe_html`.
No Streamlit and no torch here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dlm_core.render.safe_html import Markup, html_of, join

# plotly's Viridis, ten equally spaced stops: the one scale for probability and confidence
VIRIDIS = ["#440154", "#482878", "#3e4989", "#31688e", "#26828e", "#1f9e89", "#35b779", "#6ece58", "#b5de2b",
           "#fde725"]


def viridis(v: float) -> str:
    """The Viridis colour of v in [0, 1] (clipped), linearly interpolated between the stops."""
    v = 0.0 if v != v else min(max(float(v), 0.0), 1.0)
    x = v * (len(VIRIDIS) - 1)
    i = min(int(x), len(VIRIDIS) - 2)
    a, b = VIRIDIS[i], VIRIDIS[i + 1]
    f = x - i
    rgb = [round(int(a[j:j + 2], 16) * (1 - f) + int(b[j:j + 2], 16) * f) for j in (1, 3, 5)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def ink_on(v: float) -> str:
    """Text colour readable on viridis(v): white on the dark half, black on the light half."""
    return "#FFFFFF" if v < 0.55 else "#000000"


def nice_ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> list[float]:
    """About n round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart)."""
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / max(n - 1, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 5, 10)), key=lambda st: abs(span / st - (n - 1)))  # nearest n ticks
    if integer:
        step = max(1, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + 1e-9 * max(1.0, abs(hi)):
        ticks.append(round(v, 10))
        v += step
    return ticks


def _fmt(v: float) -> str:
    return f"{v:g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


@dataclass
class SvgChart:
    """Data coordinates (xlim, ylim) mapped onto a width x height picture with room for the axes.
    Add layers (lines, points, bars, text) in drawing order, then `markup()`."""

    xlim: tuple[float, float]
    ylim: tuple[float, float]
    label: str  # what the chart shows, for a screen reader (aria-label)
    width: int = 460  # about the width it is drawn at in a half-page column, so 12 px text reads as 12 px
    height: int = 240
    xlabel: str = ""
    ylabel: str = ""
    axes: bool = True  # False: no ticks or frame (an embedding picture, where axes mean nothing)
    integer_x: bool = False  # ticks on whole numbers (steps)
    margin: tuple[int, int, int, int] = (52, 14, 12, 42)  # left, right, top, bottom, in pixels
    layers: list[Markup] = field(default_factory=list)

    def px(self, x: float) -> float:
        left, right = self.margin[0], self.width - self.margin[1]
        lo, hi = self.xlim
        return left + (x - lo) / ((hi - lo) or 1.0) * (right - left)

    def py(self, y: float) -> float:
        top, bottom = self.margin[2], self.height - self.margin[3]
        lo, hi = self.ylim
        return bottom - (y - lo) / ((hi - lo) or 1.0) * (bottom - top)

    def line(self, xs, ys, color: str, width: float = 2.5, dash: str | None = None, title: str | None = None):
        pts = " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in zip(xs, ys))
        self.layers.append(html_of(
            "<polyline points='{pts}' fill='none' stroke='{color}' stroke-width='{w}' stroke-dasharray='{dash}' "
            "stroke-linejoin='round'>{title}</polyline>",
            pts=pts, color=color, w=width, dash=dash or "none", title=_title(title)))

    def points(self, xs, ys, fills, r: float = 6, stroke: str = "#000000", titles=None, labels=None,
               label_colors=None, label_dy: float = 0.0, diamonds=None, stroke_width: float = 1.0):
        """Markers at (x, y): fill per point, an optional hover title and a text label per point
        (drawn at the marker, shifted by label_dy pixels); `diamonds[i]` draws point i as a diamond."""
        n = len(xs)
        fills = fills if isinstance(fills, (list, tuple)) else [fills] * n
        for i in range(n):
            cx, cy = self.px(xs[i]), self.py(ys[i])
            if diamonds is not None and diamonds[i]:
                shape = html_of("<polygon points='{p}' fill='{f}' stroke='{s}' stroke-width='{sw}'/>",
                                p=f"{cx:.1f},{cy - r:.1f} {cx + r:.1f},{cy:.1f} {cx:.1f},{cy + r:.1f} "
                                  f"{cx - r:.1f},{cy:.1f}", f=fills[i], s=stroke, sw=stroke_width)
            else:
                shape = html_of("<circle cx='{x}' cy='{y}' r='{r}' fill='{f}' stroke='{s}' stroke-width='{sw}'/>",
                                x=f"{cx:.1f}", y=f"{cy:.1f}", r=r, f=fills[i], s=stroke, sw=stroke_width)
            text = Markup("")
            if labels is not None and labels[i] != "":
                color = label_colors[i] if label_colors is not None else "#222222"
                text = html_of("<text x='{x}' y='{y}' text-anchor='middle' dominant-baseline='central' "
                               "font-size='13' font-family='monospace' fill='{c}'>{t}</text>",
                               x=f"{cx:.1f}", y=f"{cy + label_dy:.1f}", c=color, t=labels[i])
            self.layers.append(html_of("<g>{shape}{text}{title}</g>", shape=shape, text=text,
                                       title=_title(titles[i] if titles is not None else None)))

    def bars(self, xs, heights, fills, bar_width: float = 0.7, titles=None):
        """Vertical bars from y = 0, `bar_width` in x units."""
        n = len(xs)
        fills = fills if isinstance(fills, (list, tuple)) else [fills] * n
        for i in range(n):
            x0, x1 = self.px(xs[i] - bar_width / 2), self.px(xs[i] + bar_width / 2)
            y0, y1 = self.py(0), self.py(heights[i])
            self.layers.append(html_of(
                "<rect x='{x}' y='{y}' width='{w}' height='{h}' fill='{f}'>{title}</rect>",
                x=f"{x0:.1f}", y=f"{min(y0, y1):.1f}", w=f"{x1 - x0:.1f}", h=f"{abs(y1 - y0):.1f}", f=fills[i],
                title=_title(titles[i] if titles is not None else None)))

    def vline(self, x: float, color: str = "#000000", dash: str = "4 4"):
        self.line([x, x], list(self.ylim), color, width=1.5, dash=dash)

    def note(self, text: str, x: float, y: float, size: int = 12, color: str = "#555555", anchor: str = "middle"):
        """A text at data coordinates (x, y)."""
        self.layers.append(html_of(
            "<text x='{x}' y='{y}' text-anchor='{a}' font-size='{s}' fill='{c}'>{t}</text>",
            x=f"{self.px(x):.1f}", y=f"{self.py(y):.1f}", a=anchor, s=size, c=color, t=text))

    def _axes(self) -> list[Markup]:
        left, right = self.margin[0], self.width - self.margin[1]
        top, bottom = self.margin[2], self.height - self.margin[3]
        out = [html_of("<rect x='{x}' y='{y}' width='{w}' height='{h}' fill='#FFFFFF' stroke='#BBBBBB'/>",
                       x=left, y=top, w=right - left, h=bottom - top)]
        if not self.axes:
            return out
        for v in nice_ticks(*self.ylim):
            y = self.py(v)
            out.append(html_of("<line x1='{a}' x2='{b}' y1='{y}' y2='{y}' stroke='#EEEEEE'/>"
                               "<text x='{t}' y='{y}' text-anchor='end' dominant-baseline='central' font-size='12' "
                               "fill='#444444'>{v}</text>", a=left, b=right, y=f"{y:.1f}", t=left - 6, v=_fmt(v)))
        for v in nice_ticks(*self.xlim, n=min(8, 1 + int(self.xlim[1] - self.xlim[0])) if self.integer_x else 6,
                            integer=self.integer_x):
            x = self.px(v)
            out.append(html_of("<line x1='{x}' x2='{x}' y1='{a}' y2='{b}' stroke='#999999'/>"
                               "<text x='{x}' y='{t}' text-anchor='middle' font-size='12' fill='#444444'>{v}</text>",
                               x=f"{x:.1f}", a=bottom, b=bottom + 4, t=bottom + 17, v=_fmt(v)))
        if self.xlabel:
            out.append(html_of("<text x='{x}' y='{y}' text-anchor='middle' font-size='13' fill='#222222'>{t}</text>",
                               x=(left + right) / 2, y=self.height - 6, t=self.xlabel))
        if self.ylabel:
            out.append(html_of("<text x='14' y='{y}' text-anchor='middle' font-size='13' fill='#222222' "
                               "transform='rotate(-90 14 {y})'>{t}</text>", y=(top + bottom) / 2, t=self.ylabel))
        return out

    def markup(self) -> Markup:
        """The chart as one <div><svg> block (a <div> so that markdown keeps it as raw HTML)."""
        return html_of(
            "<div style='max-width:{w}px'><svg role='img' aria-label='{label}' viewBox='0 0 {w} {h}' "
            "width='100%' style='height:auto;display:block;font-family:sans-serif'>{body}</svg></div>",
            w=self.width, h=self.height, label=self.label, body=join([*self._axes(), *self.layers]))


def _title(text: str | None) -> Markup:
    return html_of("<title>{t}</title>", t=text) if text else Markup("")
