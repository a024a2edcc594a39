"""Training lab: small models trained side by side through the server's queue, each with one choice of the recipe
changed, each measured by the exact bound of what it trained for against its floor (dlm_core/studies/training_lab)."""

from dataclasses import dataclass

import streamlit as st

from dlm_core.render import study_figures
from dlm_core.studies import compare, training_lab
from pages import PageState, glossary_popover, md_escape, setting
from pages.jobs_ui import job_queue, refresh_every, session_id, show_waiting, started_since

PRESETS = training_lab.PRESETS
WORDS = ["DLM (diffusion language model)", "toy language", "training step", "loss", "NELBO", "entropy H",
         "bits per unit", "masked (absorbing) diffusion", "autoregressive model", "loss weighting", "time input",
         "schedule α_t", "noise", "[MASK]", "t (noise level)", "instruction tuning", "prompt", "epoch",
         "training set", "learn by heart (overfitting)", "validity", "seed", "cross-entropy", "MDLM", "MD4", "RADD",
         "LLaDA", "unbiased estimate", "sample", "causal mask", "pre-training", "token / unit"]



@dataclass
class LabView:
    """The preset shown and its settings, in the link."""

    preset: str = setting(next(iter(PRESETS)), label="Preset", choices=tuple(PRESETS), widget="segmented",
                          show=lambda k: PRESETS[k].title, url="lab_preset")
    steps: int = setting(400, label="Steps per run", lo=20, hi=3000, widget="number", url="lab_steps")  # the preset's
    seed: int = setting(0, label="Seed", lo=0, hi=10**6, step=1, widget="number", url="lab_seed")


view = PageState(LabView)
st.title("Training lab: how a diffusion LM is trained")
st.caption("Each run changes one choice of the recipe; every curve is the exact bound of what it trained for, "
           "measured on the whole toy language, minus the floor no model can beat. The runs wait their turn in the "
           "server's shared line.")
glossary_box, notice_box = st.container(), st.container()

s = st.session_state
lab = s.get("lab_runs")  # {"preset": key, "jobs": [LabJob]}
busy = lab is not None and any(j.running for j in lab["jobs"])
key = view.widget("preset", required=True, disabled=busy)
preset = PRESETS[key]
st.markdown(f"**The point (the article, section 3).** {preset.point}")
st.markdown(compare.markdown_table(training_lab.preset_rows(preset)))
c1, c2, _ = st.columns([1, 1, 3])
steps = view.widget("steps", c1, default=preset.steps, step=20, disabled=busy,
                    help=f"The preset's own: {preset.steps}. Fewer steps finish sooner and stop further from the "
                         "floor.")
seed = view.widget("seed", c2, disabled=busy)
view.finish(notice_box)
if st.button(f"Train the {len(preset.runs)} runs", type="primary", icon=":material/model_training:",
             key="lab_start", disabled=busy):
    for old in (lab or {}).get("jobs", []):
        old.stop()
    s.lab_runs = {"preset": key, "jobs": training_lab.start(preset, int(steps), int(seed), owner=session_id(),
                                                            queue=job_queue())}
    st.rerun()

with st.expander("How? The bound each run is measured with"):
    st.markdown(
        "The masked loss is a weighted cross-entropy on the masked units. With exactly $k$ of $m$ units masked and "
        "weight $m/k$ (RADD), or with $t$ drawn, each unit masked with probability $1-\\alpha_t$ and weight "
        "$-\\alpha'_t/(1-\\alpha_t)$ ($1/t$ for the linear schedule: MDLM, MD4), its expectation is the NELBO, "
        "an upper bound on $-\\log p_\\theta(x)$. Weight 1 (unweighted) or BERT's fixed 15 % learn the same "
        "predictions but their loss is **not a bound**: it can sit below the entropy. Every curve here is the "
        "exact NELBO over all 216 sentences (the 63 masked sets of each; with a time input, the integral over the "
        "noise level by quadrature); the autoregressive twin's is its exact likelihood. Instruction runs never "
        "mask the subject and are measured by the NELBO of the response given the subject, against "
        "$H(\\text{response}\\mid\\text{subject}) = H - H(\\text{subject})$. See docs/maths.md, section 10.")

if lab is None or lab["preset"] != key:
    st.info("Pick a preset and press the button: its runs train one after another in the server's line, and their "
            "curves appear here as they learn.")
    glossary_popover(WORDS, where=glossary_box)
    st.stop()

jobs = lab["jobs"]
active = next((j for j in jobs if j.running), None)
refresh = None if active is None else refresh_every(active)


@st.fragment(run_every=refresh)
def live() -> None:
    if active is not None and started_since(active, refresh):
        st.rerun()  # the line moved: a full rerun makes the view refresh every second
    waiting = next((j for j in jobs if j.waiting), None)
    if waiting is not None and not any(j.running and not j.waiting for j in jobs):
        show_waiting(waiting.job)
    if any(j.running for j in jobs) and st.button("Stop", icon=":material/stop:", key="lab_stop",
                                                  help="Stop every run of this preset (what is done stays)."):
        for j in jobs:
            j.stop()
        st.rerun()
    by_epoch = preset.by_epoch
    curves = []
    for j in jobs:
        snap = j.snapshot()
        floor = training_lab.masked_objectives.floor_bits(j.cfg.task)
        xs = [training_lab.epochs_of(j.cfg, step) if by_epoch else step for step, _ in snap["nelbo"]]
        curves.append((j.label, xs, [v - floor for _, v in snap["nelbo"]]))
    st.plotly_chart(study_figures.lab_figure(curves, "epochs over the training set" if by_epoch else "training step"),
                    key="lab_curves")
    st.caption("What to notice: every curve is measured the same way (the exact bound minus its floor, log scale), "
               "so the runs compare directly; a curve that rises again has started to learn its few sentences by "
               "heart.")
    done = [j for j in jobs if j.final is not None]
    rows = training_lab.result_rows(jobs)
    st.markdown(compare.markdown_table(rows))
    tasks = len({j.cfg.task for j in jobs}) > 1  # pre-training against instruction: compare both given the subject
    for j in done:
        st.markdown(f"**{md_escape(j.label)}.** " + md_escape(training_lab.reading(
            j.cfg, j.final, j.result.wall_time_s, j.snapshot()["nelbo"], given=tasks)))
    for j in jobs:
        if j.error:
            st.error(f"{md_escape(j.label)} failed: {md_escape(j.error)}")
    if len(done) == len(jobs):
        gap = "given_gap_bits" if tasks else "gap_bits"  # one footing for every run of the preset
        st.success(training_lab.verdict([(j.label, j.final[gap]) for j in done])
                   + (" (Both measured given the subject, against H(response | subject).)" if tasks else ""))
        if s.get("lab_rerun_done") is not lab:
            s.lab_rerun_done = lab
            st.rerun()  # a full rerun ends this fragment's refreshing and re-enables the settings


live()
glossary_popover(WORDS, where=glossary_box)
