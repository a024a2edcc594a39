"""Widgets shared by several pages: the stage (the browser player), exports and imports, the glossary,
the one place HTML is drawn, and the one place models come from (the shipped checkpoints, shared by
every session, and the models trained in this session). A page's settings and its link are its typed
page state (pages/state.py). Only layout and session state here; all computation is in dlm_core."""

from __future__ import annotations

import streamlit as st

from pages.state import PageState, md_escape, setting

__all__ = ["PageState", "md_escape", "setting"]  # re-exported: every page imports them from here

SPEEDS = {"slow (1.5 s/step)": 1.5, "normal (0.8 s/step)": 0.8, "fast (0.3 s/step)": 0.3,
          "very fast (0.15 s/step)": 0.15}


def show_html(markup, where=None) -> None:
    """The only place the app draws HTML: `dlm_core.safe_html.Markup`, whose every value was escaped.
    Anything else is refused, so no text from a user, a model, a file or a URL becomes live HTML."""
    from dlm_core.render.safe_html import Markup

    if not isinstance(markup, Markup):
        raise TypeError("show_html draws only dlm_core.safe_html.Markup (build it with html_of)")
    (where or st).markdown(markup, unsafe_allow_html=True)


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


@st.cache_resource(show_spinner=False, max_entries=2)
def real_model(name: str = "", trust_remote_code: bool = False):
    """A real masked LM (dlm_core.variants.hf_adapter; "" = the embedded one), loaded once per server, shared by
    every session and never mutated. Raises hf_adapter.ModelLoadError with one sentence."""
    from dlm_core.variants import hf_adapter

    return hf_adapter.load(name or None, hf_adapter.LoadOptions(trust_remote_code=trust_remote_code))


def shipped_models() -> dict:
    """Every toy variant's shipped model, and "real": a function that loads the embedded real model (the
    lessons' questions and figures call it only where they show it)."""
    from dlm_core.variants.registry import VARIANTS

    return {**{name: shipped_model(name) for name in VARIANTS}, "real": real_model}


@st.cache_data(max_entries=64, show_spinner="Working out the answer from the models ...")
def computed_answer(question_id: str):
    """A lesson question's answer from the shipped models and the exact maths (dlm_core.classroom.questions),
    computed once per server and shared by every student."""
    from dlm_core.classroom.questions import QUESTIONS

    return QUESTIONS[question_id].answer(shipped_models())


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


def switch_variant(view, steps: str | None = None) -> None:
    """After the variant setting changed: `steps` (a setting of the page) takes the new variant's own
    default number of steps."""
    from dlm_core.variants.registry import VARIANTS

    if steps:
        view.set(steps, VARIANTS[view.variant].default_steps)


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
    not a valid trajectory gets one sentence (dlm_core.trajectory_file) and the page keeps what it shows; its
    text is never drawn as HTML."""
    from dlm_core import trajectory_file

    with st.sidebar.expander("Open a shared trajectory"):
        up = st.file_uploader("Trajectory (JSON)", type=["json"], key=key,
                              help="A file exported with “Trajectory (JSON)”: it replays here as it was.")
    if up is None:
        return None
    try:
        traj = trajectory_file.load(up.getvalue())
    except trajectory_file.TrajectoryFileError as e:
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
