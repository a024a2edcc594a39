"""Train: watch a toy diffusion model learn the toy language, live."""

import streamlit as st

from dlm_core import figures, training
from dlm_core.toy_language import entropy_bits_per_unit
from dlm_core.variants import VARIANTS
from pages import add_session_model, from_query, glossary_popover, to_query, url_notices

LEARNING_RATES = [3e-4, 1e-3, 2e-3, 4e-3]
WIDTHS = [32, 64, 128]
WORDS = ["DLM (diffusion language model)", "toy language", "forward process", "denoiser", "entropy H", "variant",
         "masked (absorbing) diffusion", "uniform diffusion", "Gaussian diffusion", "training step", "learning rate",
         "width (model size)", "seed", "loss", "t (noise level)", "low-discrepancy sampling", "token / unit",
         "p_θ(x | z_t)", "unbiased estimate", "NELBO", "MDLM", "Monte Carlo", "bits per unit", "z_t (noisy sequence)"]

H = entropy_bits_per_unit()
st.title("Train a toy diffusion model, live")
st.caption(
    "Training draws sentences from the exact toy language, corrupts them and teaches the denoiser to undo it. "
    "The curve should fall towards the entropy H, the floor no honest model can beat."
)
glossary_popover(WORDS)

job = st.session_state.get("train_job")
busy = job is not None and job.running
with st.form("train_settings", border=True):
    cols = st.columns(5)
    from_query("train_variant", next(iter(VARIANTS)), choices=list(VARIANTS))
    variant = cols[0].selectbox("Variant", list(VARIANTS), key="train_variant")
    from_query("train_steps", 600, int, lo=50, hi=5000)
    steps = cols[1].number_input("Steps", 50, 5000, step=50, key="train_steps")
    from_query("train_lr", 2e-3, float, choices=LEARNING_RATES)
    lr = cols[2].select_slider("Learning rate", LEARNING_RATES, key="train_lr")
    from_query("train_width", 64, int, choices=WIDTHS)
    width = cols[3].select_slider("Width", WIDTHS, key="train_width")
    from_query("train_seed", 0, int, lo=0, hi=10**6)
    seed = cols[4].number_input("Seed", 0, 10**6, key="train_seed")
    start = st.form_submit_button("Start training", type="primary", icon=":material/model_training:", disabled=busy)

to_query(["train_variant", "train_steps", "train_lr", "train_width", "train_seed"])
url_notices()
if start:
    cfg = training.default_config(variant, steps=int(steps), lr=float(lr), d_model=int(width), seed=int(seed),
                                  d_ff=4 * int(width))
    st.session_state.train_job = training.TrainingJob(cfg, eval_every=max(25, int(steps) // 12)).start()
    st.session_state.train_registered = False
    st.rerun()

with st.expander("How? The loss"):
    st.markdown(
        "Masked: $t \\sim U(\\epsilon, 1)$ (low-discrepancy), each unit masked with probability $t$, loss "
        "$= \\frac{1}{t}\\sum_{\\text{masked}} -\\log p_\\theta(x^i \\mid z_t)$, an unbiased estimate of the "
        "continuous-time NELBO (MDLM). The orange points are the NELBO measured on the whole language "
        "(exactly for masked, by Monte Carlo for uniform and Gaussian)."
    )

if job is None:
    st.info("Pick the settings and press **Start training**. Training runs in the background: the page, and "
            "everyone else's, stays responsive.")
    st.stop()


@st.fragment(run_every=1.0 if job.running else None)
def live() -> None:
    snap = job.snapshot()
    done_steps = snap["losses"][-1][0] if snap["losses"] else 0
    st.progress(done_steps / snap["steps"], text=f"{job.cfg.variant}: step {done_steps} / {snap['steps']} "
                                                 f"({snap['elapsed_s']:.0f} s)")
    if snap["running"]:
        if st.button("Stop", icon=":material/stop:", key="train_stop"):
            job.stop()
    st.plotly_chart(figures.training_figure(snap["losses"], snap["nelbo"], H), key="train_curve")
    st.caption("What to notice: the loss falls fast and then levels off; the orange NELBO points come down towards "
               "the dashed entropy line H, but an honest model never goes below it.")
    if snap["error"]:
        st.error(f"Training failed: {snap['error']}")
    elif snap["done"] and not snap["running"]:
        result = job.result
        label = (f"trained here: {job.cfg.variant}, {result.steps_done} steps, width {job.cfg.d_model}, "
                 f"seed {job.cfg.seed}")
        if not st.session_state.get("train_registered"):
            add_session_model(label, job.cfg.variant, result.model)
            st.session_state.train_registered = True
        last = snap["nelbo"][-1][1] if snap["nelbo"] else float("nan")
        st.success(f"{'Stopped' if snap['stopped'] else 'Done'} after {result.steps_done} steps in "
                   f"{result.wall_time_s:.1f} s: NELBO {last:.3f} bits/unit against H = {H:.3f} "
                   f"({last / H:.3f} × H). Pick **{label}** on the Reverse page.")
        if st.session_state.get("train_rerun_done") is not job:
            st.session_state.train_rerun_done = job
            st.rerun()  # a full rerun re-enables the settings


live()
