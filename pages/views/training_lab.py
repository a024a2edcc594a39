"""Training lab: small models trained side by side through the server's queue, each with one choice of the recipe
changed, each measured by the exact bound of what it trained for against its floor (dlm_core/studies/training_lab)."""

import streamlit as st

from dlm_core.render import study_figures
from dlm_core.studies import compare, training_lab
from pages import from_query, glossary_popover, md_escape, to_query, url_notices
from pages.jobs_ui import job_queue, refresh_every, session_id, show_waiting, started_since

PRESETS = training_lab.PRESETS
WORDS = ["DLM (diffusion language model)", "toy language", "training step", "loss", "NELBO", "entropy H",
         "bits per unit", "masked (absorbing) diffusion", "autoregressive model", "loss weighting", "time input",
         "schedule α_t", "noise", "[MASK]", "t (noise level)", "instruction tuning", "prompt", "epoch",
         "training set", "learn by heart (overfitting)", "validity", "seed", "cross-entropy", "MDLM", "MD4", "RADD",
         "LLaDA", "unbiased estimate", "sample", "causal mask", "pre-training", "token / unit"]

st.title("Training lab: how a diffusion LM is trained")
st.caption("Each run changes one choice of the recipe; every curve is the exact bound of what it trained for, "
           "measured on the whole toy language, minus the floor no model can beat. The runs wait their turn in the "
           "server's shared line.")
glossary_box, notice_box = st.container(), st.container()

s = st.session_state
lab = s.get("lab_runs")  # {"preset": key, "jobs": [LabJob]}
busy = lab is not None and any(j.running for j in lab["jobs"])
from_query("lab_preset", next(iter(PRESETS)), choices=list(PRESETS))
key = st.segmented_control("Preset", list(PRESETS), key="lab_preset", required=True,
                           format_func=lambda k: PRESETS[k].title, disabled=busy)
preset = PRESETS[key]
st.markdown(f"**The point (the article, section 3).** {preset.point}")
st.markdown(compare.markdown_table([
    {"run": r.label, "model": r.variant,
     "its choices": ", ".join(f"{k} = {v}" for k, v in {**preset.base, **r.overrides}.items()) or "the recipe"}
    for r in preset.runs]))
c1, c2, _ = st.columns([1, 1, 3])
from_query("lab_steps", preset.steps, int, lo=20, hi=3000)
steps = c1.number_input("Steps per run", 20, 3000, step=20, key="lab_steps", disabled=busy,
                        help=f"The preset's own: {preset.steps}. Fewer steps finish sooner and stop further from "
                             "the floor.")
from_query("lab_seed", 0, int, lo=0, hi=10**6)
seed = c2.number_input("Seed", 0, 10**6, key="lab_seed", disabled=busy)
to_query(["lab_preset", "lab_steps", "lab_seed"])
url_notices(notice_box)
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
    rows = []
    for j in jobs:
        f = j.final
        if f is None:
            state = "waiting" if j.waiting else "training" if j.running else (j.error and "failed") or "stopped"
            rows.append({"run": j.label, "bound − floor (bits/unit)": state, "given the subject (bits/unit)": "",
                         "training loss (bits/unit)": "", "valid from nothing": "", "valid given the subject": "",
                         "wall time": ""})
            continue
        loss = f"{f['train_loss_bits']:.3f}" + ("" if f["loss_is_bound"] else " (not a bound)")
        rows.append({"run": j.label, "bound − floor (bits/unit)": f"{f['gap_bits']:+.4f} ({f['floor_name']})",
                     "given the subject (bits/unit)": f"{f['given_gap_bits']:+.4f} (H(response | subject))",
                     "training loss (bits/unit)": loss, "valid from nothing": f"{f['validity']:.1%}",
                     "valid given the subject": f"{f['validity_given_subject']:.1%}",
                     "wall time": f"{j.result.wall_time_s:.0f} s"})
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
