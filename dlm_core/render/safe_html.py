"""The one way HTML is built from data in this project: every value is escaped.

`html_of(template, **values)` fills a template whose placeholders receive escaped text, and
returns `Markup` (a str that is known to be safe). Only `Markup` may be drawn as HTML
(`pages.show_html` refuses anything else), so text from a user, a model, a file or a URL can
never become live HTML. `plot_text` escapes text for plotly labels (plotly reads a small HTML
subset in its labels and decodes entities, so an escaped label shows literally).
"""

from __future__ import annotations

import html


class Markup(str):
    """HTML built by `html_of` / `join` from escaped values: safe to draw."""


def esc(value) -> str:
    """Text, escaped for HTML content and attribute values (quotes included)."""
    return value if isinstance(value, Markup) else html.escape(str(value), quote=True)


def html_of(template: str, **values) -> Markup:
    """`template.format(**values)` with every value escaped (a `Markup` value is kept as it is). The
    template itself is the programmer's text, never data."""
    return Markup(template.format(**{k: esc(v) for k, v in values.items()}))


def join(parts, sep: str = "") -> Markup:
    """Markup pieces joined into one (each piece must already be Markup)."""
    parts = list(parts)
    if not all(isinstance(p, Markup) for p in parts):
        raise TypeError("only Markup pieces can be joined into HTML")
    return Markup(sep.join(parts))


def plot_text(value) -> str:
    """A label for plotly: <, >, & shown as themselves, never read as tags."""
    return html.escape(str(value), quote=False)
