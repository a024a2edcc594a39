"""The states' marks in pictures (render/palette.MARKS), for the PNG / GIF exports: a dashed outline
for a mask, a dot or a triangle in the top-right corner for committed now or changed, a line through
a re-masked unit. The browser player draws the same shapes (assets/player/support.js, drawMark).
Also the inks every exported picture uses besides the states' colours."""

from __future__ import annotations

from PIL import ImageDraw

from dlm_core.render.palette import MARKS

WHITE = "#FFFFFF"
INK = "#222222"
MUTED = "#666666"
TRACK = "#E6E6E6"


def _rgb(colour: str) -> tuple[int, int, int]:
    c = colour.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _dashed(d: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float], ink: str, width: int,
            dash: float) -> None:
    (xa, ya), (xb, yb) = a, b
    length = max(abs(xb - xa), abs(yb - ya))
    t = 0.0
    while t < length:
        u, v = t / length, min(t + dash, length) / length
        d.line((xa + u * (xb - xa), ya + u * (yb - ya), xa + v * (xb - xa), ya + v * (yb - ya)), fill=ink, width=width)
        t += 1.7 * dash


def draw_mark(d: ImageDraw.ImageDraw, box, state: str, scale: float = 1.0, strike=None, radius: int = 0) -> None:
    """Draw state's mark on the chip or cell `box` (x0, y0, x1, y1); `strike`: the (x0, x1) a line through
    the unit spans (default: the box, less a margin); `radius`: the box's rounded corners (a dashed
    outline keeps to the straight sides). Boxes smaller than 6 px (a dashed outline: 14 px) keep their
    colour alone."""
    mark, _, ink, _ = MARKS[state]
    x0, y0, x1, y1 = box
    m = min(x1 - x0, y1 - y0)
    if not mark or m < 6 or (mark == "outline" and m < 14):
        return
    if mark == "outline":
        w, dash = max(1, round(2 * scale)), max(3.0, 6 * scale)
        i = w / 2 + 1
        r = radius
        for a, b in (((x0 + r, y0 + i), (x1 - r, y0 + i)), ((x0 + r, y1 - 1 - i), (x1 - r, y1 - 1 - i)),
                     ((x0 + i, y0 + r), (x0 + i, y1 - r)), ((x1 - 1 - i, y0 + r), (x1 - 1 - i, y1 - r))):
            _dashed(d, a, b, ink, w, dash)
    elif mark == "dot":
        rr = max(2.0, min(8 * scale, 0.14 * m))
        pad = min(4 * scale, 0.12 * m) + radius * 0.3
        cx, cy = x1 - 1 - pad - rr, y0 + pad + rr
        d.ellipse((cx - rr, cy - rr, cx + rr, cy + rr), fill=ink)
    elif mark == "triangle":
        a = max(4.0, min(16 * scale, 0.3 * m))
        pad = min(3 * scale, 0.1 * m) + radius * 0.3
        d.polygon([(x1 - 1 - pad - a, y0 + pad + a), (x1 - 1 - pad, y0 + pad + a), (x1 - 1 - pad - a / 2, y0 + pad)],
                  fill=ink)
    elif mark == "strike":
        sx0, sx1 = strike if strike is not None else (x0 + 2, x1 - 3)
        ym = (y0 + y1) / 2
        d.line((sx0, ym, sx1, ym), fill=ink, width=max(2, round(3 * scale)))
