"""Forward process: corrupt a sentence to time t with each variant's noise."""

import streamlit as st

from dlm_core import figures, forward, training
from dlm_core.schedules import SCHEDULES
from dlm_core.toy_language import MASK, UNITS, decode, encode, validity_reason
from pages import from_query, to_query

HOW = {
    "masked": "Each unit independently stays itself with probability $\\alpha_t$ and otherwise becomes "
              "`[MASK]`: $q(z_t^i \\mid x^i) = \\alpha_t\\,\\delta_{x^i} + (1-\\alpha_t)\\,\\delta_{[MASK]}$ "
              "(absorbing state; MDLM, MD4). Linear: $\\alpha_t = 1-t$; cosine: "
              "$\\alpha_t = 1-\\cos(\\tfrac{\\pi}{2}(1-t))$.",
    "uniform": "Each unit's one-hot vector is mixed with the uniform distribution: "
               "$q(z_t^i \\mid x^i) = \\alpha_t\\,\\mathrm{onehot}(x^i) + (1-\\alpha_t)\\,\\tfrac{1}{V}\\mathbf{1}$, "
               "$\\alpha_t = 1-t$ (D3PM, UDLM). At $t=1$ every unit is equally likely.",
    "gaussian": "Each unit is its embedding $E[x^i]$ (a fixed random unit vector, $d=16$) and Gaussian noise is "
                "added: $z_t = \\alpha\\,E[x] + \\sigma\\,\\epsilon$, $\\alpha^2 = \\mathrm{sigmoid}(-\\gamma)$, "
                "$\\sigma^2 = \\mathrm{sigmoid}(\\gamma)$, with a linear log-SNR $\\gamma(t)$ (VDM, Plaid). "
                "The points shown are $z_t/\\alpha$, whose nearest embedding is the unit a reader would guess.",
}


@st.cache_resource(show_spinner=False)
def gaussian_model():
    return training.load_checkpoint(training.default_checkpoint("gaussian"))[0]


st.title("Forward process: how each kind of noise destroys a sentence")
st.caption("Training teaches a model to undo exactly this corruption. Move t from 0 (data) to 1 (pure noise).")

with st.sidebar:
    st.header("Corruption")
    from_query("fwd_variant", "masked", choices=training.VARIANTS)
    st.selectbox("Variant", training.VARIANTS, key="fwd_variant")
    from_query("fwd_sentence", forward.PRESETS[0], choices=forward.PRESETS)
    st.selectbox("Sentence", forward.PRESETS, key="fwd_sentence",
                 help="The first three are the article's examples; every preset is a sentence of the toy language.")
    from_query("fwd_schedule", "linear", choices=SCHEDULES)
    st.selectbox("Schedule α_t", SCHEDULES, key="fwd_schedule", disabled=st.session_state.fwd_variant != "masked")
    from_query("fwd_seed", 0, int)
    st.number_input("Seed (which corruption is drawn)", 0, 10**6, key="fwd_seed")
    to_query(["fwd_variant", "fwd_sentence", "fwd_schedule", "fwd_seed"])

s = st.session_state
variant = s.fwd_variant
from_query("fwd_t", 0.5, float)
t = st.slider("t", 0.0, 1.0, step=0.01, key="fwd_t", help="0 = the clean sentence, 1 = pure noise")
to_query(["fwd_t"])
x0 = encode(s.fwd_sentence)
model = gaussian_model() if variant == "gaussian" else None
view = forward.forward_view(variant, x0, t, seed=s.fwd_seed, schedule=s.fwd_schedule, model=model)
vocab = list(UNITS) + [MASK]

st.markdown(f"**Clean:** `{decode(x0)}`")
shown = [vocab[u] for u in view["tokens"]]
st.markdown(figures.chips_html(shown, view["states"]), unsafe_allow_html=True)
legend = ["mask", "committed_earlier"] if variant == "masked" else ["changed", "committed_earlier"]
st.markdown(figures.legend_html(legend, pinned=False), unsafe_allow_html=True)
st.caption(f"One draw of z_t at t = {t:.2f} (seed {s.fwd_seed})"
           + ("" if variant == "masked" else f"; as a sentence it is: {validity_reason(view['tokens'])}")
           + (". For Gaussian, each position is shown as the unit nearest to z_t / α." if variant == "gaussian"
              else "."))

left, right = st.columns([3, 2])
with left:
    if variant == "gaussian":
        st.subheader("Embedding space (2-D projection)")
        st.plotly_chart(figures.forward_embedding_figure(view, x0, list(UNITS)), key="fwd_embed")
        st.caption("Diamonds: the 13 units' embeddings. Circles: the six noisy positions drifting away "
                   "from their units (dotted lines) as t grows.")
    else:
        st.subheader("Per-position distribution of z_t")
        st.plotly_chart(figures.marginals_figure(view["marginals"], x0, list(UNITS),
                                                 MASK if variant == "masked" else None), key="fwd_marg")
        st.caption("q(z_t^i | x^i) for each position: "
                   + ("the mass on [MASK] grows as 1 − α_t." if variant == "masked"
                      else "the one-hot flattens towards 1/13 for every unit."))
with right:
    st.subheader("Schedule")
    curve = forward.schedule_curve(variant, s.fwd_schedule, model)
    st.plotly_chart(figures.schedule_figure(curve, t), key="fwd_sched")
    st.caption("The noise level over time, with a marker at the chosen t.")
with st.expander("How? The equation"):
    st.markdown(HOW[variant])
