"""Widgets shared by several pages: the stage (the browser player), URL query-parameter syncing, the
sampler controls drawn from a variant's declared options, and the one place models come
from (the shipped checkpoints, shared by every session, and the models trained in this
session). Only layout and session state here; all computation is in dlm_core."""

from __future__ import annotations

import streamlit as st

SPEEDS = {"slow (1.5 s/step)": 1.5, "normal (0.8 s/step)": 0.8, "fast (0.3 s/step)": 0.3,
          "very fast (0.15 s/step)": 0.15}


def md_escape(text: str) -> str:
    """Text from a URL, a file or a model, safe inside Markdown (no links, no HTML, no formatting)."""
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-.!|~$" else c for c in str(text))


def _note(key: str, raw, value, why: str) -> None:
    notes = st.session_state.setdefault("_url_notes", [])
    notes.append(f"{md_escape(key)} = {md_escape(repr(str(raw))[:60])} {why}: using {md_escape(value)}")


def _page_id() -> str:
    """The page this script run draws (its script hash), or "" outside a page run."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return getattr(ctx, "page_script_hash", "") if ctx is not None else ""


def from_query(key: str, default, cast=str, choices=None, lo=None, hi=None, step=None, max_len=None):
    """Initialise session_state[key] from the URL (?key=value) once, else from `default`.

    A value that cannot be read falls back to the default, a number out of [lo, hi] is clamped,
    one between the levels `step` apart (from lo) is rounded to the nearest, a text longer than
    `max_len` is cut and an unknown choice falls back; each such change is noted for
    `url_notices()` to say.

    A value kept by another page under the same name (Reverse's `step` is not a lesson's step)
    is read afresh, so pages never see each other's settings."""
    owners = st.session_state.setdefault("_url_key_page", {})
    page = _page_id()
    if key in st.session_state and owners.get(key, page) != page:
        del st.session_state[key]
    owners[key] = page
    if key not in st.session_state:
        value = default
        if key in st.query_params:
            raw = st.query_params[key]
            try:
                value = cast(raw)
                if isinstance(value, float) and value != value:  # NaN
                    raise ValueError(raw)
            except (TypeError, ValueError, OverflowError):
                value = default
                _note(key, raw, value, "is not a valid value")
            else:
                if lo is not None and value < lo:
                    value = lo
                    _note(key, raw, value, f"is below the smallest allowed value ({lo})")
                elif hi is not None and value > hi:
                    value = hi
                    _note(key, raw, value, f"is above the largest allowed value ({hi})")
                if step is not None:
                    snapped = round((lo or 0) + round((value - (lo or 0)) / step) * step, 10)
                    if abs(snapped - value) > 1e-9:
                        value = snapped
                        _note(key, raw, value, f"is not one of the levels {step:g} apart")
                if max_len is not None and len(value) > max_len:
                    value = value[:max_len]
                    _note(key, raw, f"its first {max_len} characters", "is too long")
                if choices is not None and value not in choices:
                    value = default
                    _note(key, raw, value, "is not one of the choices")
        st.session_state[key] = value
    return st.session_state[key]


def url_notices(where=None) -> None:
    """Say which values of the link were changed (once), instead of failing or resetting silently.
    Call it after the page has read all its settings; `where`: a container placed near the top."""
    notes = st.session_state.pop("_url_notes", [])
    if notes:
        (where or st).info("Some settings in the link were changed: " + "; ".join(notes) + ".",
                           icon=":material/link:")


def show_html(markup, where=None) -> None:
    """The only place the app draws HTML: `dlm_core.safe_html.Markup`, whose every value was escaped.
    Anything else is refused, so no text from a user, a model, a file or a URL becomes live HTML."""
    from dlm_core.render.safe_html import Markup

    if not isinstance(markup, Markup):
        raise TypeError("show_html draws only dlm_core.safe_html.Markup (build it with html_of)")
    (where or st).markdown(markup, unsafe_allow_html=True)


def url_bool(text: str) -> bool:
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


# ----------------------------------------------------------------------------- models


@st.cache_resource(show_spinner="Loading the shipped checkpoint ...")
def _shipped_model(variant: str):
    from dlm_core.studies import training

    return training.load_checkpoint(training.default_checkpoint(variant))[0]


def shipped_model(variant: str):
    """The shipped toy model of a variant: loaded once per server and shared by every session. A
    missing or broken checkpoint stops the page with a message naming the file and how to restore it
    (every page that does not need it keeps working)."""
    from dlm_core.studies import training

    try:
        return _shipped_model(variant)
    except training.CheckpointError as e:
        st.error(f"The shipped {md_escape(variant)} model cannot be loaded: {md_escape(e)}. "
                 f"{training.restore_hint(variant)}", icon=":material/broken_image:")
        st.stop()


def session_models(variant: str) -> dict:
    """The models of one variant trained on the Train page in this session: {label: model}."""
    return {label: m for label, (v, m) in st.session_state.get("session_models", {}).items() if v == variant}


SESSION_MODELS_KEPT = 3  # a session keeps its last three trained models: memory stays flat in a long class


def add_session_model(label: str, variant: str, model) -> None:
    """Offer a model trained in this session on the other pages; only the last SESSION_MODELS_KEPT are kept."""
    models = st.session_state.setdefault("session_models", {})
    models.pop(label, None)  # the same label again: it becomes the newest
    models[label] = (variant, model)
    while len(models) > SESSION_MODELS_KEPT:
        models.pop(next(iter(models)))


# -------------------------------------------------------------------- sampler controls


def variant_picker(key: str, steps_key: str | None = None):
    """A selectbox over the registered variants, kept in the URL under `key`; returns the Variant.
    Switching variant sets `steps_key` (if given) to the new variant's own default number of steps."""
    from dlm_core.variants.registry import VARIANTS

    def _switched():
        if steps_key:
            st.session_state[steps_key] = VARIANTS[st.session_state[key]].default_steps

    from_query(key, next(iter(VARIANTS)), choices=list(VARIANTS))
    st.selectbox("Variant", list(VARIANTS), key=key, on_change=_switched)
    return VARIANTS[st.session_state[key]]


def sampler_controls(config_class) -> tuple[dict, list[str]]:
    """Draw the options a sampler config declares (dlm_core.sampler.option), each kept in the
    URL under its short name. Returns (the options for the sampler, the URL keys used).
    A setting that does not apply (Option.when) is drawn disabled and passes its off value."""
    from dlm_core.sampling.sampler import UNSET, option_active

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
            from_query(key, start, url_bool)
            st.toggle(opt.label, key=key, disabled=disabled, help=opt.help or None)
        else:
            from_query(key, float(start), float, lo=float(opt.lo), hi=float(opt.hi))
            st.slider(opt.label, float(opt.lo), float(opt.hi), step=opt.step, key=key, disabled=disabled,
                      help=opt.help or None)
        values[name] = st.session_state[key]
        keys.append(key)
    options = {}
    for name, opt, default in declared:
        off = default if opt.off_value is UNSET else opt.off_value
        options[name] = values[name] if option_active(opt, values) else off
    return options, keys


# ------------------------------------------------------------------------ the stage

_PLAYER = {}


def _player_component():
    """The browser player (assets/player), registered once per server."""
    if "renderer" not in _PLAYER:
        from dlm_core.render.exports_html import player_assets

        js, css = player_assets()
        _PLAYER["renderer"] = st.components.v2.component("dlm_stage", js=js, css=css)
    return _PLAYER["renderer"]


def stage(data: dict, key: str) -> int:
    """Draw a trajectory on the browser player (dlm_core.stage.stage_data). Scrubbing and playing
    run in the browser; the step it shows is reported back when playback is paused. Returns it.
    A cell the user clicks (to edit it) is kept in session_state[key + "_pick"]: {lane, pos, step}."""
    result = _player_component()(key=f"{key}-{data['id']}", data=data, default={"step": data["start"]},
                                 on_step_change=lambda: None, on_pick_change=lambda: None, height="content")
    get = result.get if hasattr(result, "get") else lambda name: getattr(result, name, None)
    pick = get("pick")
    if isinstance(pick, dict) and {"lane", "pos", "step"} <= set(pick):
        st.session_state[f"{key}_pick"] = {k: int(pick[k]) for k in ("lane", "pos", "step")}
    step = get("step")
    return data["start"] if step is None else max(0, min(int(step), data["T"]))


# -------------------------------------------------------------------- export and import


def export_buttons(traj, k: int, name: str) -> None:
    """Downloads for slides, from any trajectory: GIF of the stage, standalone HTML player, PNG of
    step k, JSON. The files are made when a button is pressed."""
    from dlm_core.render import exports
    from dlm_core.render.exports_html import standalone_html

    st.caption("Export for slides: the animation (GIF), a player that works offline (HTML), this step (PNG), "
               "or the data (JSON, which opens again here).")
    c = st.columns(4)
    c[0].download_button("Animated GIF", lambda: exports.trajectory_gif(traj), file_name=f"{name}.gif",
                         mime="image/gif", icon=":material/gif_box:", key=f"{name}_gif", on_click="ignore")
    c[1].download_button("Offline player (HTML)", lambda: standalone_html(traj, title=name),
                         file_name=f"{name}.html", mime="text/html", icon=":material/html:", key=f"{name}_html",
                         on_click="ignore")
    c[2].download_button(f"Step {k} (PNG)", lambda: exports.step_png(traj, k), file_name=f"{name}-step{k}.png",
                         mime="image/png", icon=":material/image:", key=f"{name}_png", on_click="ignore")
    c[3].download_button("Trajectory (JSON)", traj.to_json(), file_name=f"{name}.json", mime="application/json",
                         icon=":material/data_object:", key=f"{name}_json", on_click="ignore")


def import_trajectory(key: str):
    """A trajectory JSON someone shared, to replay on the stage (None: none opened). A file that is
    not a valid trajectory gets a clear message; its text is never drawn as HTML."""
    from dlm_core.trajectory import Trajectory

    with st.sidebar.expander("Open a shared trajectory"):
        up = st.file_uploader("Trajectory (JSON)", type=["json"], key=key,
                              help="A file exported with “Trajectory (JSON)”: it replays here as it was.")
    if up is None:
        return None
    try:
        traj = Trajectory.load(up.getvalue())
    except ValueError as e:
        st.error(f"{md_escape(up.name)} could not be opened: {md_escape(e)}")
        return None
    st.info(f"Showing the trajectory from {md_escape(up.name)} ({traj.n_steps} steps). Remove the file in the "
            "sidebar to go back to the sampler.", icon=":material/upload_file:")
    return traj


# ------------------------------------------------------------------------ glossary

GLOSSARY_LABEL = "Words on this page"


def options_text(config_class) -> str:
    """What the sampler controls of a config class say (labels, help, choices), for glossary.terms_in."""
    return " ".join(f"{opt.label}: {opt.help} {', '.join(map(str, opt.choices or ()))}."
                    for _, opt, _ in config_class.options())


def glossary_popover(terms, where=None) -> None:
    """'Words on this page': the plain-language definition (dlm_core.glossary) of each term given, one
    click away, in `where` (a container; default: here). The definitions are escaped: drawn as text,
    never as links, HTML or formatting. A term missing from the glossary is an error."""
    from dlm_core.classroom.glossary import definitions

    entries = definitions(terms)
    with (where or st).popover(GLOSSARY_LABEL, icon=":material/help:",
                               help="Plain meanings of the words and symbols this page uses; the “How?” "
                                    "sections have the equations."):
        st.markdown("\n".join(f"- **{md_escape(term)}**: {md_escape(text)}" for term, text in entries.items()))
