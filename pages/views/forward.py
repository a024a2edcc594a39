"""Forward process: corrupt a sentence with each variant's noise, from t = 0 (data) to t = 1 (noise).

The stage sweeps t in the browser (scrub, play, keys); the views below follow the t it reports."""

import streamlit as st

from dlm_core.classroom.glossary import terms_in, verdict_words
from dlm_core.render import svg_figures
from dlm_core.render.stage import stage_data
from dlm_core.schedules import SCHEDULES
from dlm_core.studies import forward
from dlm_core.toy_language import decode, encode, validity_reason
from dlm_core.variants.registry import VARIANTS
from pages import (
    from_query,
    glossary_popover,
    shipped_model,
    show_html,
    stage,
    to_query,
    url_bool,
    url_notices,
    variant_picker,
)

LEVELS = 20  # the sweep shows t = 0, 1/20, ..., 1
WORDS = ["autoregressive model", "forward process", "noise", "t (noise level)", "variant",
         "masked (absorbing) diffusion", "uniform diffusion", "Gaussian diffusion", "toy language", "token / unit",
         "[PAD]", "schedule α_t", "seed", "z_t (noisy sequence)", "scrub"]


@st.cache_data(max_entries=64, show_spinner=False)
def sweep(variant: str, sentence: str, seed: int, schedule: str):
    model = shipped_model(variant) if VARIANTS[variant].needs_model_for_forward() else None
    return forward.forward_sweep(variant, encode(sentence), seed, schedule, model, LEVELS)


st.title("Forward process: how each kind of noise destroys a sentence")
st.caption("Training teaches a model to undo exactly this corruption. Scrub or play t from 0 (data) to 1 "
           "(pure noise): the same random draws are used at every t, so you see the noise grow.")
glossary_box = st.container()  # filled at the end, when the page knows what it said
notice_box = st.container()

with st.sidebar:
    st.header("Corruption")
    variant = variant_picker("fwd_variant")
    from_query("fwd_sentence", forward.PRESETS[0], choices=forward.PRESETS)
    st.selectbox("Sentence", forward.PRESETS, key="fwd_sentence",
                 help="The first three are the article's examples; every preset is a sentence of the toy language.")
    from_query("fwd_schedule", "linear", choices=SCHEDULES)
    st.selectbox("Schedule α_t", SCHEDULES, key="fwd_schedule", disabled=len(variant.forward_schedules) < 2,
                 help="Which schedules apply depends on the variant.")
    from_query("fwd_seed", 0, int, lo=0, hi=10**6)
    st.number_input("Seed (which corruption is drawn)", 0, 10**6, key="fwd_seed")
    from_query("present", False, url_bool)

s = st.session_state
schedule = s.fwd_schedule if s.fwd_schedule in variant.forward_schedules else "linear"
from_query("fwd_t", 0.5, float, lo=0.0, hi=1.0, step=1 / LEVELS)
x0 = encode(s.fwd_sentence)
traj, states, ts = sweep(variant.name, s.fwd_sentence, int(s.fwd_seed), schedule)
data = stage_data(traj, title=f"{variant.name} noise on “{s.fwd_sentence}”", start=round(float(s.fwd_t) * LEVELS),
                  interval_s=0.3, present=bool(s.present), words=forward.FORWARD_WORDS, step_name="noise level",
                  states=states)
k = stage(data, key="fwd_stage")
st.caption("What to notice: the closer t gets to 1, the fewer positions still show the sentence's own unit (blue); "
           "at t = 1 nothing of the sentence is left, except by chance.")
t = round(float(ts[k]), 6)
s.fwd_t = t
to_query(["fwd_variant", "fwd_sentence", "fwd_schedule", "fwd_seed", "fwd_t"])
url_notices(notice_box)

model = shipped_model(variant.name) if variant.needs_model_for_forward() else None
view = forward.forward_view(variant.name, x0, t, seed=s.fwd_seed, schedule=schedule, model=model)
st.markdown(f"**Clean:** `{decode(x0)}` · **t = {t:.2f}** (noise level {k} of {LEVELS})")
draw_caption = (f"One draw of z_t at t = {t:.2f} (seed {s.fwd_seed})"
                + ("" if variant.mask_id is not None else
                   f"; as a sentence it is {verdict_words(validity_reason(view['tokens']))}")
                + (". Each position is shown as the unit nearest to z_t / α." if "units_2d" in view else "."))
st.caption(draw_caption)

left, right = st.columns([3, 2])
with left:
    if "units_2d" in view:
        st.subheader("Embedding space (2-D projection)")
        show_html(svg_figures.forward_embedding_svg(view, x0, list(variant.vocab)))
        st.caption("Diamonds: the 13 units' embeddings. Circles: the six noisy positions drifting away "
                   "from their units (dotted lines) as t grows.")
    else:
        st.subheader("Per-position distribution of z_t")
        show_html(svg_figures.marginals_html(view["marginals"], x0, view["marginal_labels"]))
        st.caption("q(z_t^i | x^i) for each position: " + variant.text.forward_marginals)
with right:
    st.subheader("Schedule")
    curve = forward.schedule_curve(variant.name, schedule, model)
    show_html(svg_figures.schedule_svg(curve, t))
    st.caption("The noise level over time, with a marker at the chosen t.")
with st.expander("How? The equation"):
    st.markdown(variant.text.forward_how)
said = " ".join([variant.text.forward_how, variant.text.forward_marginals, draw_caption, *curve["curves"]])
views = ["embedding", "2-D projection"] if "units_2d" in view else ["probability distribution", "forward process"]
glossary_popover(WORDS + views + terms_in(said), where=glossary_box)
