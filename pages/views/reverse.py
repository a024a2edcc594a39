"""Reverse process: step through the denoising of one toy sentence, for any registered variant.

The sampler's controls come from the variant's declared options, the legend from the
trajectory; nothing here depends on which variant it is. The stage (sentence, grid, legend,
transport) plays in the browser; the views below it follow the step it reports when paused."""

from dataclasses import dataclass
from urllib.parse import quote

import streamlit as st

from dlm_core.classroom.glossary import terms_in
from dlm_core.render import palette, svg_figures
from dlm_core.render.stage import stage_data
from dlm_core.studies import threshold_decoding
from dlm_core.toy_language import REASON_WORDS, UNITS, validity_reason, writes_units
from dlm_core.variants.registry import VARIANTS
from pages import (
    SPEEDS,
    PageState,
    export_buttons,
    glossary_popover,
    import_trajectory,
    md_escape,
    options_text,
    session_models,
    setting,
    shipped_model,
    show_html,
    stage,
    switch_variant,
)
from pages.branch_ui import branches, edit_panel, run_picker

SHIPPED = "shipped checkpoint"
SPEED_NAMES = {v: k for k, v in SPEEDS.items()}


@dataclass
class ReverseSettings:
    """What the Reverse page shows, each in its link (and the variant's sampler options, declared by its
    config class)."""

    variant: str = setting(next(iter(VARIANTS)), label="Variant", choices=tuple(VARIANTS))
    model: str = setting(SHIPPED, label="Model", help="Models trained on the Train page stay available for this "
                                                      "session.")
    steps: int = setting(6, label="Steps T", lo=1, hi=100)  # default: the variant's own default_steps
    seed: int = setting(0, label="Seed", lo=0, hi=10**6, step=1, widget="number")
    speed: float = setting(0.8, label="Speed", choices=tuple(SPEEDS.values()), show=SPEED_NAMES.get,
                           help="How long each step stays on the stage when playing (the player's own menu too).")
    present: bool = setting(False, widget="url", in_link=False)  # presenter mode (also F on the stage)
    step: int = setting(0, lo=0, widget="url")  # the step shown; up to the run's number of steps
    pos: int = setting(1, label="Position", lo=1)  # the position whose prediction is shown


WORDS = ["autoregressive model", "reverse process", "pin", "branch", "prompt", "infill",
         "noise", "variant", "masked (absorbing) diffusion", "uniform diffusion",
         "Gaussian diffusion", "checkpoint", "steps T", "sampler", "seed", "stage (player)", "scrub", "trajectory",
         "JSON", "HTML", "token × step grid", "toy language", "token / unit", "[PAD]"]


@st.cache_data(max_entries=128, show_spinner="Sampling a trajectory ...")
def get_trajectory(variant, model_label, _model, steps, seed, options: dict):
    """Cached per settings and model label; scrubbing and playing only read it."""
    return VARIANTS[variant].trajectory(_model, steps, seed, **options)


def likely_units(run, k: int, pos: int) -> list[int]:
    """The units a pin offers at position pos: the model's most likely at step k + 1 first."""
    rec = run.records[k] if k < run.n_steps else None
    first = [i for i in (rec.topk_ids[pos] if rec is not None and rec.topk_ids else []) if i < len(UNITS)]
    return first + [i for i in range(len(UNITS)) if i not in first]


def make_branch(model, run, k: int, edits, seed: int):
    try:
        return VARIANTS[run.variant].branch(model, run, k, edits, seed)
    except ValueError as e:
        st.error(f"This branch cannot be made: {md_escape(e)}")
        return None


def infill_link(variant_name: str, edits) -> str:
    pins = ",".join(f"{i + 1}:{UNITS[u]}" for i, u in sorted(edits.pins.items()))
    return f"infill?variant={variant_name}&pins={quote(pins)}"


st.title("Reverse process: from noise to a sentence")

view = PageState(ReverseSettings)
with st.sidebar:
    st.header("Sampler")
    view.widget("variant", on_change=switch_variant, args=(view, "steps"))
    variant = VARIANTS[view.variant]
    trained = session_models(variant.name)
    view.bind("model")
    if view.model not in [SHIPPED, *trained]:
        st.warning(f"The link names a model trained in another session (“{md_escape(view.model[:80])}”); "
                   "it is not available here, so the shipped checkpoint is shown.")
        view.set("model", SHIPPED)
    view.widget("model", choices=[SHIPPED, *trained])
    view.widget("steps", default=variant.default_steps)
    options = view.sampler(variant.config_class)
    view.widget("seed")
    view.widget("speed")
    view.bind("present")

s = st.session_state
st.caption(variant.text.intro + " Press play, or scrub: every step is already computed, nothing is re-run.")
glossary_box = st.container()  # filled once the page knows which views it shows
notice_box = st.container()
words = WORDS + terms_in(" ".join([variant.text.intro, variant.text.reverse_how, variant.text.prediction,
                                   variant.text.notice, variant.text.pin, options_text(variant.config_class),
                                   *(palette.STATES[state][2] for state in variant.legend)]))
model = shipped_model(variant.name) if s.model == SHIPPED else trained[s.model]
try:
    traj = get_trajectory(variant.name, s.model, model, s.steps, s.seed, options)
except ValueError as e:
    st.error(f"These settings don't work together: {md_escape(e)}")
    view.finish(notice_box)
    glossary_popover(words, where=glossary_box)
    st.stop()
imported = import_trajectory("rev_import")
if imported is not None:
    traj = imported
view.bind("step", default=traj.n_steps, hi=traj.n_steps)
s.step = min(max(int(s.step), 0), traj.n_steps)
# branches made on this page (edit and continue) of this very run; an imported file replays alone
run_id = repr((variant.name, s.model, s.steps, s.seed, sorted(options.items())))
runs = [traj] + (branches("rev", run_id) if imported is None else [])
title = f"{traj.variant}: {traj.n_steps} steps, seed {s.seed}"  # (threshold: the steps it took)
data = stage_data(traj, title=title if imported is None else "imported",
                  start=s.step, interval_s=s.speed, present=bool(s.present), branches=runs[1:],
                  picked=s.get("rev_stage_pick"))
k = stage(data, key="rev_stage")
st.caption(VARIANTS.get(traj.variant, variant).text.notice)
s.step = k
j = run_picker("rev", runs)
if imported is None:
    edit_panel("rev", runs, j, k, list(range(traj.length)), unit_choices=likely_units,
               make_branch=lambda run, at, edits, seed: make_branch(model, run, at, edits, seed),
               pin_meaning=variant.text.pin, infill_link=lambda edits: infill_link(variant.name, edits))
traj = runs[j]  # the views and downloads below follow the chosen run
s.pos = min(max(int(view.bind("pos", hi=traj.length)), 1), traj.length)

if k == traj.n_steps and writes_units(traj.vocab, traj.final):  # the toy language's verdict (toy runs only)
    reason = validity_reason(traj.final)
    if reason == "valid":
        st.success("A valid sentence of the toy language.")
    else:
        st.warning(f"Not a sentence of the toy language: {REASON_WORDS[reason]}.")
    words += ["validity" if reason == "valid" else "error reasons"]
if traj.mask_id is not None:  # what the run cost: its forward passes, beside a fixed-count and an autoregressive run
    passes = threshold_decoding.passes_note(traj)
    st.caption(passes)
    words += terms_in(passes)
with st.expander("How? The token × step grid"):
    st.markdown(variant.text.reverse_how)
left, right = st.columns(2)
with left:
    st.subheader(f"What the model predicts at step {k}")
    pos = view.widget("pos", choices=list(range(1, traj.length + 1)), hi=traj.length) - 1
    if k == 0:
        st.info("Step 0 is the start (pure noise); move to step 1 or later to see a prediction.")
    else:
        show_html(svg_figures.distribution_html(traj, k, pos))
        st.caption(f"Position {pos + 1}: {variant.text.prediction.format(k=k)}; outlined: the unit after the step.")
with right:
    if traj.mask_id is not None:  # an absorbing state: each position is committed once
        st.subheader("Unmasking order")
        show_html(svg_figures.order_html(traj, k))
        st.caption("Which step committed each position. What to notice: a diffusion model's order is rarely left to "
                   "right (it may well write the end of the sentence first); an autoregressive model's always is.")
        show_html(svg_figures.confidence_svg(traj, k))
        st.caption("The score each committed unit had. What to notice: a low dot is a guess the model was unsure "
                   "of; a confidence strategy commits the surest position first, a random or ancestral one does not.")
    else:
        st.subheader("Self-correction")
        show_html(svg_figures.changes_svg(traj, k))
        st.caption("How many positions changed their unit at each step.")
projection = variant.embedding_projection(model) if imported is None else None
if projection is not None and traj.records and traj.records[0].state is not None:
    st.subheader("Paths in embedding space")
    show_html(svg_figures.embedding_paths_svg(traj, k, *projection))
    st.caption("A 2-D projection (the two principal axes of E) of each position's z_s, from noise to a unit.")

export_buttons(traj, k, "trajectory")
view.finish(notice_box)
views = ["[MASK]", "commit", "confidence (score)", "SUBS"] if traj.mask_id is not None else ["self-correction"]
if projection is not None:
    views += ["embedding", "2-D projection", "z_t (noisy sequence)"]
glossary_popover(words + views, where=glossary_box)
