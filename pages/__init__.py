"""Widgets shared by several pages: the transport bar, URL query-parameter syncing, the
sampler controls drawn from a variant's declared options, and the one place models come
from (the shipped checkpoints, shared by every session, and the models trained in this
session). Only layout and session state here; all computation is in dlm_core."""

from __future__ import annotations

import streamlit as st

SPEEDS = {"slow (1.5 s/step)": 1.5, "normal (0.8 s/step)": 0.8, "fast (0.3 s/step)": 0.3}


def from_query(key: str, default, cast=str, choices=None):
    """Initialise session_state[key] from the URL (?key=value) once, else from `default`."""
    if key not in st.session_state:
        value = default
        if key in st.query_params:
            try:
                value = cast(st.query_params[key])
            except (TypeError, ValueError):
                value = default
        if choices is not None and value not in choices:
            value = default
        st.session_state[key] = value
    return st.session_state[key]


def _bool(text: str) -> bool:
    if str(text).lower() in ("1", "true", "yes", "on"):
        return True
    if str(text).lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def to_query(keys) -> None:
    """Write the current settings to the URL so a link reproduces this view."""
    for k in keys:
        if k in st.session_state:
            st.query_params[k] = str(st.session_state[k])


def _go(prefix: str, k: int) -> None:
    st.session_state[f"{prefix}_step"] = k
    st.session_state[f"{prefix}_playing"] = False


def _toggle(prefix: str, n_steps: int) -> None:
    playing = not st.session_state[f"{prefix}_playing"]
    if playing and st.session_state[f"{prefix}_step"] >= n_steps:
        st.session_state[f"{prefix}_step"] = 0  # play again from the start
    st.session_state[f"{prefix}_playing"] = playing


def player(prefix: str, n_steps: int, render) -> None:
    """Transport bar (first, previous, play/pause, next, last, speed) + step slider over a
    cached trajectory. `render(k)` draws every view of step k; it never runs a model."""
    step_key, play_key, speed_key = f"{prefix}_step", f"{prefix}_playing", f"{prefix}_speed"
    st.session_state.setdefault(play_key, False)
    st.session_state.setdefault(speed_key, "normal (0.8 s/step)")
    if st.session_state.get(step_key, 0) > n_steps:
        st.session_state[step_key] = n_steps
    st.session_state.setdefault(step_key, n_steps)
    k = st.session_state[step_key]
    playing = st.session_state[play_key]

    cols = st.columns([1, 1, 1.3, 1, 1, 3])
    cols[0].button("First", icon=":material/first_page:", key=f"{prefix}_first", on_click=_go, args=(prefix, 0),
                   width="stretch")
    cols[1].button("Prev", icon=":material/chevron_left:", key=f"{prefix}_prev", on_click=_go,
                   args=(prefix, max(k - 1, 0)), width="stretch")
    cols[2].button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
                   key=f"{prefix}_play", on_click=_toggle, args=(prefix, n_steps), type="primary", width="stretch")
    cols[3].button("Next", icon=":material/chevron_right:", key=f"{prefix}_next", on_click=_go,
                   args=(prefix, min(k + 1, n_steps)), width="stretch")
    cols[4].button("Last", icon=":material/last_page:", key=f"{prefix}_last", on_click=_go, args=(prefix, n_steps),
                   width="stretch")
    cols[5].selectbox("Speed", list(SPEEDS), key=speed_key, label_visibility="collapsed")

    interval = SPEEDS[st.session_state[speed_key]] if playing else None

    @st.fragment(run_every=interval)
    def _frame():
        if st.session_state[play_key]:
            nxt = st.session_state[step_key] + 1
            if nxt >= n_steps:
                st.session_state[step_key] = n_steps
                st.session_state[play_key] = False
                st.rerun()  # full rerun: stops the timer and relabels the play button
            st.session_state[step_key] = nxt
        st.slider("Step", 0, n_steps, key=step_key, help="0 = the start (all noise); scrubbing never reruns the model")
        render(st.session_state[step_key])

    _frame()


# ----------------------------------------------------------------------------- models


@st.cache_resource(show_spinner="Loading the shipped checkpoint ...")
def shipped_model(variant: str):
    """The shipped toy model of a variant: loaded once per server and shared by every session."""
    from dlm_core import training

    return training.load_checkpoint(training.default_checkpoint(variant))[0]


def session_models(variant: str) -> dict:
    """The models of one variant trained on the Train page in this session: {label: model}."""
    return {label: m for label, (v, m) in st.session_state.get("session_models", {}).items() if v == variant}


def add_session_model(label: str, variant: str, model) -> None:
    st.session_state.setdefault("session_models", {})[label] = (variant, model)


# -------------------------------------------------------------------- sampler controls


def variant_picker(key: str):
    """A selectbox over the registered variants, kept in the URL under `key`; returns the Variant."""
    from dlm_core.variants import VARIANTS

    from_query(key, next(iter(VARIANTS)), choices=list(VARIANTS))
    st.selectbox("Variant", list(VARIANTS), key=key)
    return VARIANTS[st.session_state[key]]


def sampler_controls(config_class) -> tuple[dict, list[str]]:
    """Draw the options a sampler config declares (dlm_core.sampler.option), each kept in the
    URL under its short name. Returns (the options for the sampler, the URL keys used).
    A setting that does not apply (Option.when) is drawn disabled and passes its off value."""
    from dlm_core.sampler import UNSET, option_active

    declared = config_class.options()
    values, keys = {}, []
    for name, opt, default in declared:
        key = opt.url or name
        start = default if opt.page_default is UNSET else opt.page_default
        disabled = not option_active(opt, values)
        if opt.choices is not None:
            cast = type(next(c for c in opt.choices if c is not None))
            from_query(key, start, cast, choices=opt.choices)
            st.selectbox(opt.label, opt.choices, key=key, disabled=disabled, help=opt.help or None)
        elif isinstance(default, bool):
            from_query(key, start, _bool)
            st.toggle(opt.label, key=key, disabled=disabled, help=opt.help or None)
        else:
            from_query(key, float(start), float)
            st.slider(opt.label, float(opt.lo), float(opt.hi), step=opt.step, key=key, disabled=disabled,
                      help=opt.help or None)
        values[name] = st.session_state[key]
        keys.append(key)
    options = {}
    for name, opt, default in declared:
        off = default if opt.off_value is UNSET else opt.off_value
        options[name] = values[name] if option_active(opt, values) else off
    return options, keys
