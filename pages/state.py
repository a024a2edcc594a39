"""Typed page state: each page declares its settings once, as a dataclass of `setting(...)` fields (an
`Option` each, as sampler configs declare theirs), and from that one declaration come its widgets, its URL
keys (the link in the address bar reproduces the view) and the notices for values a link carried that the
page could not use (dlm_core.sampling.options.read_option).

A setting's value lives in st.session_state under its URL key, and is read from the link
- the first time the page is drawn in a session (or after another page used the same key), and
- whenever the link differs from what the page last wrote to it: a link followed inside the tab (the
  browser's back and forward buttons, a link to the same page) shows what it says, and the settings the
  link does not name take their defaults, as in a new tab.
Otherwise the session's value stands (a widget the user changed), and a value that merely round-trips
(the page wrote it, the link still says it) is never noted.

    @dataclass
    class ReverseSettings:
        seed: int = setting(0, label="Seed", lo=0, hi=10**6, widget="number")

    view = PageState(ReverseSettings)
    view.widget("seed")            # drawn, bound to the link
    ...
    view.finish(notice_box)        # writes the link, says what the link's values became
"""

from __future__ import annotations

from dataclasses import MISSING, fields, replace
from typing import Any

import streamlit as st

from dlm_core.sampling.options import UNSET, Option, option, option_active, read_option

WRITTEN = "_url_written"  # session key: {page: the query this page last wrote}
OWNERS = "_url_key_page"  # session key: {URL key: the page whose setting it holds}
NOTES = "_url_notes"  # session key: notes on values read from the link, said once by finish()


def setting(default, **kw) -> Any:
    """A page's setting, declared like a sampler option (dlm_core.sampling.options.Option)."""
    return option(default, **kw)


def md_escape(text: str) -> str:
    """Text from a URL, a file or a model, safe inside Markdown (no links, no HTML, no formatting)."""
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-.!|~$" else c for c in str(text))


def _page_id() -> str:
    """The page this script run draws (its script hash), or "" outside a page run."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return getattr(ctx, "page_script_hash", "") if ctx is not None else ""


def _shown(value) -> str:
    return md_escape(value if isinstance(value, str) else repr(value))


class PageState:
    """The settings of one page in one script run (see the module docstring)."""

    def __init__(self, declaration: type | None = None):
        self._decl: dict[str, tuple[Option, Any]] = {}
        for f in fields(declaration) if declaration is not None else ():
            default = f.default if f.default is not MISSING else None
            self._decl[f.name] = (f.metadata.get("option", Option()), default)
        self._page = _page_id()
        self._keys: list[str] = []  # the URL keys bound in this run and written to the link, in order
        self._read: set[str] = set()  # the keys read from the link in this run (once each)
        now = st.query_params.to_dict()
        written = st.session_state.setdefault(WRITTEN, {}).get(self._page)
        self.link_followed = bool(now) and written is not None and now != written

    # ------------------------------------------------------------------ reading and binding

    def bind(self, name: str, opt: Option | None = None, default: Any = UNSET, **override) -> Any:
        """The value of a setting (declared on the page, or `opt` given here), read from the link when
        the page must (see the module docstring), kept in st.session_state under its URL key. `override`:
        dynamic parts of its Option (choices, hi, ...) that the page only knows now."""
        decl_default = self._decl.get(name, (Option(), None))[1]
        opt = self._option(name, opt, override)
        if default is UNSET:
            default = decl_default if opt.page_default is UNSET else opt.page_default
        key = opt.url or name
        state = st.session_state
        owners = state.setdefault(OWNERS, {})
        if key in state and owners.get(key, self._page) != self._page:
            del state[key]  # another page's setting of the same name: read afresh
        owners[key] = self._page
        if key not in state or (self.link_followed and key not in self._read):
            state[key] = self._from_link(key, opt, default)
            self._read.add(key)
        if opt.in_link:
            self._keys.append(key)
        return state[key]

    def _option(self, name: str, opt: Option | None, override: dict) -> Option:
        base = opt or self._decl.get(name, (Option(), None))[0]
        return replace(base, **override) if override else base

    def _from_link(self, key: str, opt: Option, default):
        if key not in st.query_params:
            return default
        raw = st.query_params[key]
        read = read_option(opt, raw, default)
        if read.note is not None:
            st.session_state.setdefault(NOTES, []).append(
                f"{md_escape(key)} = {md_escape(repr(str(raw))[:60])} {read.note}: using {_shown(read.value)}")
        return read.value

    def key(self, name: str) -> str:
        """The URL (and session) key of a declared setting."""
        return self._decl[name][0].url or name

    def __getattr__(self, name: str):
        if name.startswith("_") or name not in self._decl:
            raise AttributeError(name)
        return st.session_state[self.key(name)]

    def set(self, name: str, value) -> None:
        """Change a setting's value (e.g. the step the stage reports); the link follows at finish()."""
        st.session_state[self.key(name)] = value

    # ------------------------------------------------------------------------------ widgets

    def widget(self, name: str, where=None, opt: Option | None = None, default: Any = UNSET,
               disabled: bool = False, **kw) -> Any:
        """Bind a setting and draw its widget (Option.widget) in `where` (default: here). `choices`, `lo`,
        `hi` in `kw` are the parts of its Option the page only knows now; the rest go to the widget
        (on_change, placeholder, ...). Returns its value."""
        opt = self._option(name, opt, {k: kw.pop(k) for k in ("choices", "lo", "hi", "label") if k in kw})
        value = self.bind(name, opt, default)
        draw(where or st, opt, opt.url or name, value, disabled, **kw)
        return st.session_state[opt.url or name]

    def sampler(self, config_class, defaults: dict | None = None) -> dict:
        """Draw the options a sampler config declares (dlm_core.sampling.options.option), each bound to the
        link under its URL name; `defaults`: this page's own starting values of some. Returns the options
        for the sampler. A setting that does not apply (Option.when) is drawn disabled and passes its off
        value."""
        declared = config_class.options()
        values = {name: st.session_state.get(opt.url or name, default) for name, opt, default in declared}
        for name, opt, default in declared:
            start = default if opt.page_default is UNSET else opt.page_default
            start = (defaults or {}).get(name, start)
            if opt.choices is None and isinstance(start, (int, float)) and not isinstance(start, bool) \
                    and opt.widget != "number":
                start = float(start)  # a slider of floats
            values[name] = self.widget(name, opt=opt, default=start, disabled=not option_active(opt, values),
                                       help=opt.help or None)
        options = {}
        for name, opt, default in declared:
            off = default if opt.off_value is UNSET else opt.off_value
            options[name] = values[name] if option_active(opt, values) else off
        return options

    # ------------------------------------------------------------------------------ the link

    def remember_link(self) -> None:
        """Record the link as it is now as this page's own (after the page changed it directly)."""
        st.session_state.setdefault(WRITTEN, {})[self._page] = st.query_params.to_dict()

    def finish(self, where=None) -> None:
        """Write every setting bound in this run to the link (so it reproduces the view), remember what
        was written, and say once which values of a followed link were changed. Call it once the page has
        bound its settings, and before any st.stop()."""
        for key in dict.fromkeys(self._keys):
            if key in st.session_state:
                st.query_params[key] = str(st.session_state[key])
        self.remember_link()
        notes = st.session_state.pop(NOTES, [])
        if notes:
            (where or st).info("Some settings in the link were changed: " + "; ".join(notes) + ".",
                               icon=":material/link:")


def draw(where, opt: Option, key: str, value, disabled: bool = False, **kw) -> None:
    """The widget of one setting, bound to st.session_state[key]."""
    choices = opt.choices
    label = opt.label or key
    kw.setdefault("help", opt.help or None)
    fmt = {"format_func": opt.show} if opt.show is not None and "format_func" not in kw else {}
    kind = opt.widget
    if kind == "url":
        return
    if choices is not None:
        choices = list(choices)
        if kind == "radio":
            where.radio(label, choices, key=key, disabled=disabled, **fmt, **kw)
        elif kind == "segmented":
            where.segmented_control(label, choices, key=key, disabled=disabled, **fmt, **kw)
        elif kind == "select_slider":
            where.select_slider(label, choices, key=key, disabled=disabled, **fmt, **kw)
        else:
            where.selectbox(label, choices, key=key, disabled=disabled, **fmt, **kw)
    elif isinstance(value, bool):
        (where.checkbox if kind == "checkbox" else where.toggle)(label, key=key, disabled=disabled, **kw)
    elif isinstance(value, (int, float)):
        lo, hi = (type(value)(opt.lo), type(value)(opt.hi)) if opt.lo is not None else (None, None)
        step = kw.pop("step", None) or opt.step  # the widget's increment (Option.step: also the link's levels)
        step = type(value)(step) if step is not None else None
        if kind == "number":
            where.number_input(label, lo, hi, step=step, key=key, disabled=disabled, **kw)
        else:
            where.slider(label, lo, hi, step=step, key=key, disabled=disabled, **kw)
    elif kind == "textarea":
        where.text_area(label, key=key, disabled=disabled, max_chars=opt.max_len, **kw)
    else:
        where.text_input(label, key=key, disabled=disabled, max_chars=opt.max_len, **kw)
