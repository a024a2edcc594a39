"""The app's own look that Streamlit's theme (.streamlit/config.toml) cannot set: the app-wide style
sheet (assets/theme/app.css: caption contrast, the focus ring, reduced motion, print) and the favicon,
drawn here from the palette so that no page fetches anything from outside. No Streamlit here."""

from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image, ImageDraw

from dlm_core import ASSETS
from dlm_core.render.palette import MARKS, STATES
from dlm_core.render.safe_html import Markup

THEME_CSS = ASSETS / "theme" / "app.css"


def app_css() -> Markup:
    """The app-wide style sheet as one <style> element (the programmer's file, no data in it)."""
    css = THEME_CSS.read_text(encoding="utf-8")
    if "</" in css:
        raise ValueError(f"{THEME_CSS} must not close its <style> element")
    return Markup(f"<style>{css}</style>")


@lru_cache(maxsize=1)
def favicon_png(size: int = 64) -> bytes:
    """The favicon: a column of the token x step grid (a mask, a unit committed now, two committed
    earlier), in the states' colours and marks."""
    im = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    u = size / 64
    for j, state in enumerate(("mask", "committed_now", "committed_earlier", "committed_earlier")):
        x0, y0 = round((4 + (j % 2) * 30) * u), round((4 + (j // 2) * 30) * u)
        box = (x0, y0, x0 + round(26 * u), y0 + round(26 * u))
        d.rounded_rectangle(box, radius=round(5 * u), fill=STATES[state][0],
                            outline=MARKS["mask"][2] if state == "mask" else None, width=max(1, round(3 * u)))
        if state == "committed_now":
            r = 5 * u
            cx, cy = box[2] - r - 4 * u, box[1] + r + 4 * u
            d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=MARKS[state][2])
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()
