"""Reverse process: step through the denoising of one toy sentence, for any of the three variants."""

import streamlit as st

from dlm_core import figures, gaussian, training
from dlm_core.sampler import STRATEGIES
from dlm_core.schedules import SCHEDULES
from dlm_core.toy_language import L, validity_reason
from pages import from_query, player, to_query

SHIPPED = "shipped checkpoint"
BLOCKS = [b for b in range(1, L + 1) if L % b == 0]
INTRO = {
    "masked": "A masked diffusion model starts from six [MASK] tokens and, step by step, commits units that never "
              "change again (the Wheel of Fortune).",
    "uniform": "A uniform diffusion model starts from six random units; at every step any position may change "
               "(the slot machine): watch the self-corrections in vermillion.",
    "gaussian": "A Gaussian diffusion model starts from pure noise vectors; each step moves them towards the "
                "embeddings of units. The grid shows each position's nearest unit.",
}


@st.cache_resource(show_spinner="Loading the shipped checkpoint ...")
def load_model(variant: str):
    return training.load_checkpoint(training.default_checkpoint(variant))


@st.cache_data(max_entries=128, show_spinner="Sampling a trajectory ...")
def get_trajectory(variant, model_label, _model, steps, seed, options: dict):
    """Cached per settings and model label; scrubbing and playing only read it."""
    return training.variant_module(variant).trajectory(_model, steps, seed, **options)


st.title("Reverse process: from noise to a sentence")

with st.sidebar:
    st.header("Sampler")
    from_query("variant", "masked", choices=training.VARIANTS)
    st.selectbox("Variant", training.VARIANTS, key="variant")
    variant = st.session_state.variant
    session_models = {k: m for k, (v, m) in st.session_state.get("session_models", {}).items() if v == variant}
    if st.session_state.get("model_label") not in [SHIPPED, *session_models]:
        st.session_state.model_label = SHIPPED
    st.selectbox("Model", [SHIPPED, *session_models], key="model_label",
                 help="Models trained on the Train page stay available for this session.")
    from_query("steps", 6 if variant == "masked" else 24, int)
    st.slider("Steps T", 1, 100, key="steps")
    options = {}
    if variant == "masked":
        from_query("strategy", "low-confidence", choices=STRATEGIES)
        st.selectbox("Strategy", STRATEGIES, key="strategy",
                     help="ancestral: MDLM's reverse step; the others commit a fixed number of units per step, "
                          "chosen at random or by the model's confidence (LLaDA / Dream).")
        from_query("temperature", 1.0, float)
        st.slider("Temperature", 0.0, 2.0, step=0.1, key="temperature", help="0 = always the most likely unit")
        ancestral = st.session_state.strategy == "ancestral"
        from_query("block_length", L, int, choices=BLOCKS)
        st.selectbox("Block length (semi-autoregressive)", BLOCKS, key="block_length", disabled=ancestral,
                     help="Blocks are filled left to right; the steps must divide evenly among the blocks.")
        from_query("schedule", "linear", choices=SCHEDULES)
        st.selectbox("Schedule α_t", SCHEDULES, key="schedule", disabled=not ancestral,
                     help="Used by the ancestral strategy's reveal probabilities.")
        from_query("eta", 0.0, float)
        st.slider("ReMDM remasking η", 0.0, 0.5, step=0.05, key="eta", disabled=not ancestral,
                  help="Ancestral only: a revealed unit is masked again with probability σ_t = min(η, (1 − α_s)/α_t) "
                       "(Wang et al. 2025), so early mistakes can be corrected.")
        options = dict(strategy=st.session_state.strategy, temperature=float(st.session_state.temperature),
                       block_length=None if ancestral else st.session_state.block_length,
                       schedule=st.session_state.schedule, remask_eta=float(st.session_state.eta) if ancestral else 0.0)
    elif variant == "gaussian":
        st.toggle("Clamp x̂ to the nearest embedding", key="clamp",
                  help="Diffusion-LM's clamping trick: raises validity a little, lowers diversity.")
        options = dict(clamp=bool(st.session_state.clamp))
    from_query("seed", 0, int)
    st.number_input("Seed", 0, 10**6, key="seed", step=1)
    to_query(["variant", "strategy", "steps", "temperature", "block_length", "schedule", "eta", "seed"])

st.caption(INTRO[variant] + " Press play, or scrub the slider: every step is already computed, nothing is re-run.")
s = st.session_state
model = load_model(variant)[0] if s.model_label == SHIPPED else session_models[s.model_label]
try:
    traj = get_trajectory(variant, s.model_label, model, s.steps, s.seed, options)
except ValueError as e:
    st.error(f"These settings don't work together: {e}")
    st.stop()
if variant == "masked":
    LEGEND = ["mask", "committed_now", "committed_earlier"] + (["remasked"] if options.get("remask_eta") else [])
else:
    LEGEND = ["mask", "changed", "committed_earlier"]


def render(k: int) -> None:
    st.markdown(figures.sequence_html(traj, k), unsafe_allow_html=True)
    if k == traj.n_steps:
        reason = validity_reason(traj.final)
        if reason == "valid":
            st.success("A valid sentence of the toy language.")
        else:
            st.warning(f"Not a sentence of the toy language: **{reason.replace('_', ' ')}** error.")
    st.plotly_chart(figures.trajectory_grid(traj, k), key="grid", theme=None)
    st.markdown(figures.legend_html(LEGEND, pinned=bool(traj.fixed)), unsafe_allow_html=True)
    with st.expander("How? The token × step grid"):
        if variant == "masked":
            st.markdown(
                "Column *k* shows the sequence after *k* reverse steps. A masked position is revealed with "
                "probability $\\frac{\\alpha_s-\\alpha_t}{1-\\alpha_t}$ (ancestral, MDLM) or, in LLaDA's "
                "fixed-count sampler, the $k_j$ highest-scoring masked positions are committed at step $j$. "
                "Once revealed, a unit never changes (absorbing state).")
        elif variant == "uniform":
            st.markdown(
                "Each step samples $z_s \\sim q(z_s \\mid z_t, x=x_\\theta(z_t, t))$, the posterior of the uniform "
                "forward process $q(z_t\\mid x) = \\alpha_t\\,\\mathrm{onehot}(x) + (1-\\alpha_t)/V$ (D3PM, UDLM): "
                "every position may move at every step. Vermillion cells changed at that step.")
        else:
            st.markdown(
                "VDM ancestral step: $z_s = (1-c)\\frac{\\alpha_s}{\\alpha_t} z_t + c\\,\\alpha_s \\hat x + "
                "\\sqrt{c(1-\\alpha_s^2)}\\,\\epsilon$, $c = -\\mathrm{expm1}(\\gamma_s-\\gamma_t)$, with "
                "$\\hat x = \\mathrm{softmax}(\\text{logits})\\,E$ (CDCD, Plaid). The grid shows the unit nearest "
                "to $z_s/\\alpha_s$.")
    left, right = st.columns(2)
    with left:
        st.subheader("What the model predicts")
        pos = st.selectbox("Position", list(range(1, L + 1)), key="position") - 1
        if k == 0:
            st.info("Step 0 is the start (pure noise); move to step 1 or later to see a prediction.")
        else:
            st.plotly_chart(figures.distribution_bar(traj, k, pos), key="dist")
            what = {"masked": "p_θ(x | z_t) at step {k}, before its update",
                    "uniform": "the model's belief about the clean unit (the s = 0 posterior) at step {k}",
                    "gaussian": "the denoiser's softmax at step {k}"}[variant]
            st.caption(f"Position {pos + 1}: {what.format(k=k)}; outlined: the unit after the step.")
    with right:
        if variant == "masked":
            st.subheader("Unmasking order")
            st.plotly_chart(figures.order_figure(traj, k), key="order")
            st.plotly_chart(figures.confidence_figure(traj, k), key="conf")
            st.caption("Which step committed each position, and the score each committed unit had.")
        else:
            st.subheader("Self-correction")
            st.plotly_chart(figures.changes_figure(traj, k), key="changes")
            st.caption("How many positions changed their unit at each step.")
    if variant == "gaussian":
        st.subheader("Paths in embedding space")
        units_2d, proj = gaussian.projection_2d(model)
        st.plotly_chart(figures.embedding_paths_figure(traj, k, units_2d, proj), key="paths")
        st.caption("A 2-D projection (the two principal axes of E) of each position's z_s, from noise to a unit.")


player("rev", traj.n_steps, render)
st.download_button("Export trajectory (JSON)", traj.to_json(), file_name="trajectory.json", mime="application/json")
