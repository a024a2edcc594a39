"""Forward process: corrupt a sentence to time t with each variant's noise."""

import streamlit as st

from dlm_core import figures, forward
from dlm_core.schedules import SCHEDULES
from dlm_core.toy_language import decode, encode, validity_reason
from pages import from_query, shipped_model, to_query, variant_picker

st.title("Forward process: how each kind of noise destroys a sentence")
st.caption("Training teaches a model to undo exactly this corruption. Move t from 0 (data) to 1 (pure noise).")

with st.sidebar:
    st.header("Corruption")
    variant = variant_picker("fwd_variant")
    from_query("fwd_sentence", forward.PRESETS[0], choices=forward.PRESETS)
    st.selectbox("Sentence", forward.PRESETS, key="fwd_sentence",
                 help="The first three are the article's examples; every preset is a sentence of the toy language.")
    from_query("fwd_schedule", "linear", choices=SCHEDULES)
    st.selectbox("Schedule α_t", SCHEDULES, key="fwd_schedule", disabled=len(variant.forward_schedules) < 2,
                 help="Which schedules apply depends on the variant.")
    from_query("fwd_seed", 0, int)
    st.number_input("Seed (which corruption is drawn)", 0, 10**6, key="fwd_seed")
    to_query(["fwd_variant", "fwd_sentence", "fwd_schedule", "fwd_seed"])

s = st.session_state
schedule = s.fwd_schedule if s.fwd_schedule in variant.forward_schedules else "linear"
from_query("fwd_t", 0.5, float)
t = st.slider("t", 0.0, 1.0, step=0.01, key="fwd_t", help="0 = the clean sentence, 1 = pure noise")
to_query(["fwd_t"])
x0 = encode(s.fwd_sentence)
model = shipped_model(variant.name) if variant.needs_model_for_forward() else None
view = forward.forward_view(variant.name, x0, t, seed=s.fwd_seed, schedule=schedule, model=model)
absorbing = variant.mask_id is not None

st.markdown(f"**Clean:** `{decode(x0)}`")
shown = [variant.vocab[u] for u in view["tokens"]]
st.markdown(figures.chips_html(shown, view["states"]), unsafe_allow_html=True)
legend = ["mask" if absorbing else "changed", "committed_earlier"]
st.markdown(figures.legend_html(legend, pinned=False), unsafe_allow_html=True)
st.caption(f"One draw of z_t at t = {t:.2f} (seed {s.fwd_seed})"
           + ("" if absorbing else f"; as a sentence it is: {validity_reason(view['tokens'])}")
           + (". Each position is shown as the unit nearest to z_t / α." if "units_2d" in view else "."))

left, right = st.columns([3, 2])
with left:
    if "units_2d" in view:
        st.subheader("Embedding space (2-D projection)")
        st.plotly_chart(figures.forward_embedding_figure(view, x0, list(variant.vocab)), key="fwd_embed")
        st.caption("Diamonds: the 13 units' embeddings. Circles: the six noisy positions drifting away "
                   "from their units (dotted lines) as t grows.")
    else:
        st.subheader("Per-position distribution of z_t")
        st.plotly_chart(figures.marginals_figure(view["marginals"], x0, view["marginal_labels"]), key="fwd_marg")
        st.caption("q(z_t^i | x^i) for each position: " + variant.text.forward_marginals)
with right:
    st.subheader("Schedule")
    curve = forward.schedule_curve(variant.name, schedule, model)
    st.plotly_chart(figures.schedule_figure(curve, t), key="fwd_sched")
    st.caption("The noise level over time, with a marker at the chosen t.")
with st.expander("How? The equation"):
    st.markdown(variant.text.forward_how)
