"""Reverse process: step through the denoising of one toy sentence."""

import streamlit as st

from dlm_core import figures, masked, training
from dlm_core.sampler import STRATEGIES
from dlm_core.schedules import SCHEDULES
from dlm_core.toy_language import L, validity_reason
from pages import from_query, player, to_query


@st.cache_resource(show_spinner="Loading the shipped checkpoint ...")
def load_model(variant: str):
    return training.load_checkpoint(training.default_checkpoint(variant))


SHIPPED = "shipped checkpoint"


@st.cache_data(max_entries=128, show_spinner="Sampling a trajectory ...")
def get_trajectory(variant, model_label, _model, steps, strategy, temperature, block_length, schedule, seed):
    """Cached per settings (and per model label); scrubbing only reads it."""
    return masked.trajectory(_model, steps, seed, strategy=strategy, temperature=temperature,
                             block_length=block_length, schedule=schedule)


st.title("Reverse process: from noise to a sentence")
st.caption(
    "A masked diffusion model starts from six [MASK] tokens and, step by step, commits units. "
    "Press play, or scrub the slider: every step is already computed, nothing is re-run."
)

BLOCKS = [b for b in range(1, L + 1) if L % b == 0]
with st.sidebar:
    st.header("Sampler")
    st.selectbox("Variant", ["masked"], key="variant", help="The uniform and Gaussian variants come next.")
    session_models = {k: m for k, (v, m) in st.session_state.get("session_models", {}).items()
                      if v == st.session_state.variant}
    st.selectbox("Model", [SHIPPED] + list(session_models), key="model_label",
                 help="Models trained on the Train page stay available for this session.")
    from_query("strategy", "low-confidence", choices=STRATEGIES)
    st.selectbox("Strategy", STRATEGIES, key="strategy",
                 help="ancestral: MDLM's reverse step; the others commit a fixed number of units per step, "
                      "chosen at random or by the model's confidence (LLaDA / Dream).")
    from_query("steps", 6, int)
    st.slider("Steps T", 1, 24, key="steps")
    from_query("temperature", 1.0, float)
    st.slider("Temperature", 0.0, 2.0, step=0.1, key="temperature", help="0 = always the most likely unit")
    ancestral = st.session_state.strategy == "ancestral"
    from_query("block_length", L, int, choices=BLOCKS)
    st.selectbox("Block length (semi-autoregressive)", BLOCKS, key="block_length", disabled=ancestral,
                 help="Blocks are filled left to right; the steps must divide evenly among the blocks.")
    from_query("schedule", "linear", choices=SCHEDULES)
    st.selectbox("Schedule α_t", SCHEDULES, key="schedule", disabled=not ancestral,
                 help="Used by the ancestral strategy's reveal probabilities.")
    from_query("seed", 0, int)
    st.number_input("Seed", 0, 10**6, key="seed", step=1)
    to_query(["strategy", "steps", "temperature", "block_length", "schedule", "seed"])

s = st.session_state
block = None if ancestral else s.block_length
model = load_model(s.variant)[0] if s.model_label == SHIPPED else session_models[s.model_label]
try:
    traj = get_trajectory(s.variant, s.model_label, model, s.steps, s.strategy, s.temperature, block, s.schedule,
                          s.seed)
except ValueError as e:
    st.error(f"These settings don't work together: {e}")
    st.stop()


def render(k: int) -> None:
    st.markdown(figures.sequence_html(traj, k), unsafe_allow_html=True)
    if k == traj.n_steps:
        reason = validity_reason(traj.final)
        if reason == "valid":
            st.success("A valid sentence of the toy language.")
        else:
            st.warning(f"Not a sentence of the toy language: **{reason.replace('_', ' ')}** error.")
    st.plotly_chart(figures.trajectory_grid(traj, k), key="grid", theme=None)
    legend = figures.legend_html(["mask", "committed_now", "committed_earlier"], pinned=bool(traj.fixed))
    st.markdown(legend, unsafe_allow_html=True)
    with st.expander("How? The token × step grid"):
        st.markdown(
            "Column *k* shows the sequence after *k* reverse steps. A masked position is revealed with "
            "probability $\\frac{\\alpha_s-\\alpha_t}{1-\\alpha_t}$ (ancestral, MDLM) or, in LLaDA's "
            "fixed-count sampler, the $k_j$ highest-scoring masked positions are committed at step $j$. "
            "Once revealed, a unit never changes (absorbing state)."
        )
    left, right = st.columns(2)
    with left:
        st.subheader("What the model predicts")
        pos = st.selectbox("Position", list(range(1, L + 1)), key="position") - 1
        if k == 0:
            st.info("Step 0 is the all-[MASK] start; move to step 1 or later to see a prediction.")
        else:
            st.plotly_chart(figures.distribution_bar(traj, k, pos), key="dist")
            st.caption(f"p_θ(x^{pos + 1} | z_t) at step {k}, before its update; outlined: the unit after it.")
        with st.expander("How? SUBS"):
            st.markdown(
                "The denoiser outputs a softmax over the 13 real units only: the [MASK] logit is $-\\infty$ "
                "(SUBS, Sahoo et al. 2024), so a model never predicts [MASK]."
            )
    with right:
        st.subheader("Unmasking order")
        st.plotly_chart(figures.order_figure(traj, k), key="order")
        st.plotly_chart(figures.confidence_figure(traj, k), key="conf")
        st.caption("Which step committed each position, and the score each committed unit had.")
        with st.expander("How? Scores"):
            st.markdown(
                "low-confidence: $p_\\theta(\\hat x_0^i)$; margin: top-1 − top-2 probability; "
                "entropy: $-H(p_\\theta(\\cdot))$; random: a uniform number (Nie et al. 2025; Ye et al. 2025)."
            )


player("rev", traj.n_steps, render)
st.download_button("Export trajectory (JSON)", traj.to_json(), file_name="trajectory.json", mime="application/json")
