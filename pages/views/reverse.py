"""Reverse process: step through the denoising of one toy sentence, for any registered variant.

The sampler's controls come from the variant's declared options, the legend from the
trajectory; nothing here depends on which variant it is."""

import streamlit as st

from dlm_core import figures
from dlm_core.toy_language import L, validity_reason
from dlm_core.variants import VARIANTS
from pages import from_query, player, sampler_controls, session_models, shipped_model, to_query, variant_picker

SHIPPED = "shipped checkpoint"


@st.cache_data(max_entries=128, show_spinner="Sampling a trajectory ...")
def get_trajectory(variant, model_label, _model, steps, seed, options: dict):
    """Cached per settings and model label; scrubbing and playing only read it."""
    return VARIANTS[variant].trajectory(_model, steps, seed, **options)


st.title("Reverse process: from noise to a sentence")

with st.sidebar:
    st.header("Sampler")
    variant = variant_picker("variant")
    trained = session_models(variant.name)
    if st.session_state.get("model_label") not in [SHIPPED, *trained]:
        st.session_state.model_label = SHIPPED
    st.selectbox("Model", [SHIPPED, *trained], key="model_label",
                 help="Models trained on the Train page stay available for this session.")
    from_query("steps", variant.default_steps, int)
    st.slider("Steps T", 1, 100, key="steps")
    options, option_keys = sampler_controls(variant.config_class)
    from_query("seed", 0, int)
    st.number_input("Seed", 0, 10**6, key="seed", step=1)
    to_query(["variant", "steps", *option_keys, "seed"])

st.caption(variant.text.intro + " Press play, or scrub the slider: every step is already computed, nothing is "
                                "re-run.")
s = st.session_state
model = shipped_model(variant.name) if s.model_label == SHIPPED else trained[s.model_label]
try:
    traj = get_trajectory(variant.name, s.model_label, model, s.steps, s.seed, options)
except ValueError as e:
    st.error(f"These settings don't work together: {e}")
    st.stop()
legend = figures.legend_states(traj)
projection = variant.embedding_projection(model)


def render(k: int) -> None:
    st.markdown(figures.sequence_html(traj, k), unsafe_allow_html=True)
    if k == traj.n_steps:
        reason = validity_reason(traj.final)
        if reason == "valid":
            st.success("A valid sentence of the toy language.")
        else:
            st.warning(f"Not a sentence of the toy language: **{reason.replace('_', ' ')}** error.")
    st.plotly_chart(figures.trajectory_grid(traj, k), key="grid", theme=None)
    st.markdown(figures.legend_html(legend, pinned=bool(traj.fixed)), unsafe_allow_html=True)
    with st.expander("How? The token × step grid"):
        st.markdown(variant.text.reverse_how)
    left, right = st.columns(2)
    with left:
        st.subheader("What the model predicts")
        pos = st.selectbox("Position", list(range(1, L + 1)), key="position") - 1
        if k == 0:
            st.info("Step 0 is the start (pure noise); move to step 1 or later to see a prediction.")
        else:
            st.plotly_chart(figures.distribution_bar(traj, k, pos), key="dist")
            st.caption(f"Position {pos + 1}: {variant.text.prediction.format(k=k)}; outlined: the unit after "
                       "the step.")
    with right:
        if traj.mask_id is not None:  # an absorbing state: each position is committed once
            st.subheader("Unmasking order")
            st.plotly_chart(figures.order_figure(traj, k), key="order")
            st.plotly_chart(figures.confidence_figure(traj, k), key="conf")
            st.caption("Which step committed each position, and the score each committed unit had.")
        else:
            st.subheader("Self-correction")
            st.plotly_chart(figures.changes_figure(traj, k), key="changes")
            st.caption("How many positions changed their unit at each step.")
    if projection is not None:
        st.subheader("Paths in embedding space")
        st.plotly_chart(figures.embedding_paths_figure(traj, k, *projection), key="paths")
        st.caption("A 2-D projection (the two principal axes of E) of each position's z_s, from noise to a unit.")


player("rev", traj.n_steps, render)
st.download_button("Export trajectory (JSON)", traj.to_json(), file_name="trajectory.json", mime="application/json")
