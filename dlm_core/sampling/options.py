"""Declared settings: what a control is (`Option`), how a field declares it (`option`), and how a value
from a link is read (`read_option`). No Streamlit here.

A sampler config marks the fields a page draws with `option(...)`; a page declares its own settings the
same way (pages/state.py), so one declaration gives a setting's widget, its URL key, its range and what
the page says when a link carries a value it cannot use. Reading a value from a link never fails: a value
that cannot be read falls back to the default, a number out of [lo, hi] is clamped, one between the
levels `step` apart is rounded to the nearest, a text longer than `max_len` is cut and an unknown choice
falls back; each change comes with a note in plain words.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

UNSET = type("Unset", (), {"__repr__": lambda self: "UNSET"})()  # an Option value that was not given
WIDGETS = ("select", "slider", "select_slider", "number", "toggle", "checkbox", "radio", "segmented", "text",
           "textarea")


@dataclass(frozen=True)
class Option:
    """How a page draws one setting: a choice among `choices`, a number in [lo, hi] (`step` apart), a
    switch (a bool), or a text (at most `max_len` characters). `when=(field, values)`: the setting only
    matters when that other field takes one of `values`; otherwise the page disables it and the sampler
    gets `off_value` (default: the field's default). `widget`: which control draws it (None: the default
    for its kind; "url": only kept in the link, never drawn)."""

    label: str = ""
    help: str = ""
    choices: tuple | None = None
    lo: float | None = None
    hi: float | None = None
    step: float | None = None
    url: str | None = None  # its name in the page URL (default: the field name)
    in_link: bool = True  # written to the link (False: only read from it, e.g. presenter mode)
    page_default: Any = UNSET  # the page's starting value, when it differs from the config's
    when: tuple[str, tuple] | None = None
    off_value: Any = UNSET
    max_len: int | None = None  # texts: longer ones are cut
    widget: str | None = None  # one of WIDGETS, "url", or None (select for choices, toggle, slider, text)
    parse: Callable[[str], Any] | None = None  # how a link's text becomes a value (default: from the type)
    show: Callable[[Any], str] | None = None  # how a choice is shown in its widget (default: str)

    def __post_init__(self):
        if self.widget not in (None, "url", *WIDGETS):
            raise ValueError(f"unknown widget {self.widget!r}; one of {', '.join(WIDGETS)} or 'url'")


def option(default, **kw) -> Any:
    """A dataclass field that pages draw as a control (its metadata holds the `Option`)."""
    return field(default=default, metadata={"option": Option(**kw)})


def option_active(opt: Option, values: dict) -> bool:
    """Whether a setting matters given the other settings (`Option.when`)."""
    return opt.when is None or values.get(opt.when[0]) in opt.when[1]


def url_bool(text: str) -> bool:
    """A switch in a link: 1/true/yes/on or 0/false/no/off (any case)."""
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def parser_of(opt: Option, default) -> Callable[[str], Any]:
    """How a link's text becomes this setting's value: the option's own parser, else by the type of the
    default (or of its choices)."""
    if opt.parse is not None:
        return opt.parse
    sample = default if default is not None else next((c for c in opt.choices or () if c is not None), "")
    if isinstance(sample, bool):
        return url_bool
    if isinstance(sample, int):
        return int
    if isinstance(sample, float):
        return float
    return str


def number(x) -> str:
    """A bound as a person writes it: 1000000, 0.05, 0."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


@dataclass(frozen=True)
class Read:
    """A value read from a link, and what was changed to make it usable (None: nothing)."""

    value: Any
    note: str | None = None


def read_option(opt: Option, raw: str, default) -> Read:
    """The value a link's text `raw` gives this setting: always usable, with a note when it had to change."""
    try:
        value = parser_of(opt, default)(raw)
        if isinstance(value, float) and math.isnan(value):
            raise ValueError(raw)
    except (TypeError, ValueError, OverflowError):
        return Read(default, "is not a valid value")
    note = None
    if opt.lo is not None and value < opt.lo:
        value, note = type(value)(opt.lo), f"is below the smallest allowed value ({number(opt.lo)})"
    elif opt.hi is not None and value > opt.hi:
        value, note = type(value)(opt.hi), f"is above the largest allowed value ({number(opt.hi)})"
    if opt.step is not None and isinstance(value, (int, float)):
        base = opt.lo or 0
        snapped = type(value)(round(base + round((value - base) / opt.step) * opt.step, 10))
        if abs(snapped - value) > 1e-9:
            value, note = snapped, f"is not one of the levels {opt.step:g} apart"
    if opt.max_len is not None and isinstance(value, str) and len(value) > opt.max_len:
        return Read(value[: opt.max_len], f"is too long: its first {opt.max_len} characters are used")
    if opt.choices is not None and value not in opt.choices:
        return Read(default, "is not one of the choices")
    return Read(value, note)
