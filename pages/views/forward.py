"""Forward process: corrupt a sentence with each variant's noise, from t = 0 (data) to t = 1 (noise).

The stage sweeps t in the browser (scrub, play, keys); the views below follow the t it reports."""

from dataclasses import dataclass

import streamlit as st

from dlm_core.classroom.glossary import terms_in, verdict_words
from dlm_core.render import svg_figures
from dlm_core.render.stage import stage_data
from dlm_core.schedules import SCHEDULES
from dlm_core.studies import forward
from dlm_core.toy_language import decode, encode, validity_reason
from dlm_core.variants.registry import VARIANTS
from pages import PageState, glossary_popover, setting, shipped_model, show_html, stage

LEVELS = 20  # the sweep shows t = 0, 1/20, ..., 1
WORDS = ["autoregressive model", "forward process", "noise", "t (noise level)", "variant",
         "masked (absorbing) diffusion", "uniform diffusion", "Gaussian diffusion", "toy language", "token / unit",
         "[PAD]", "schedule α_t", "seed", "z_t (noisy sequence)", "scrub"]


@dataclass
class ForwardSettings:
    """What the Forward page shows, each in its link."""

    variant: str = setting(next(iter(VARIANTS)), label="Variant", choices=tuple(VARIANTS), url="fwd_variant")
    sentence: str = setting(forward.PRESETS[0], label="Sentence", choices=forward.PRESETS, url="fwd_sentence",
                            help="The first three are the article's examples; every preset is a sentence of the "
                                 "toy language.")
    schedule: str = setting("linear", label="Schedule α_t", choices=SCHEDULES, url="fwd_schedule",
                            help="Which schedules apply depends on the variant.")
    seed: int = setting(0, label="Seed (which corruption is drawn)", lo=0, hi=10**6, step=1, widget="number",
                        url="fwd_seed")
    present: bool = setting(False, widget="url", in_link=False)  # presenter mode (also F on the stage)
    t: float = setting(0.5, lo=0.0, hi=1.0, step=1 / LEVELS, widget="url", url="fwd_t")  # the noise level shown


@st.cache_data(max_entries=64, show_spinner=False)
def sweep(variant: str, sentence: str, seed: int, schedule: str):
    model = shipped_model(variant) if VARIANTS[variant].needs_model_for_forward() else None
    return forward.forward_sweep(variant, encode(sentence), seed, schedule, model, LEVELS)


st.title("Forward process: how each kind of noise destroys a sentence")
st.caption("Training teaches a model to undo exactly this corruption. Scrub or play t from 0 (data) to 1 "
           "(pure noise): the same random draws are used at every t, so you see the noise grow.")
glossary_box = st.container()  # filled at the end, when the page knows what it said
notice_box = st.container()

view = PageState(ForwardSettings)
with st.sidebar:
    st.header("Corruption")
    variant = VARIANTS[view.widget("variant")]
    view.widget("sentence")
    view.widget("schedule", disabled=len(variant.forward_schedules) < 2)
    view.widget("seed")
    view.bind("present")

schedule = view.schedule if view.schedule in variant.forward_schedules else "linear"
view.bind("t")
x0 = encode(view.sentence)
traj, states, ts = sweep(variant.name, view.sentence, int(view.seed), schedule)
data = stage_data(traj, title=f"{variant.name} noise on “{view.sentence}”", start=round(float(view.t) * LEVELS),
                  interval_s=0.3, present=bool(view.present), words=forward.FORWARD_WORDS, step_name="noise level",
                  states=states)
k = stage(data, key="fwd_stage")
st.caption("What to notice: the closer t gets to 1, the fewer positions still show the sentence's own unit (blue); "
           "at t = 1 nothing of the sentence is left, except by chance.")
t = round(float(ts[k]), 6)
view.set("t", t)
view.finish(notice_box)

model = shipped_model(variant.name) if variant.needs_model_for_forward() else None
noisy = forward.forward_view(variant.name, x0, t, seed=view.seed, schedule=schedule, model=model)
st.markdown(f"**Clean:** `{decode(x0)}` · **t = {t:.2f}** (noise level {k} of {LEVELS})")
draw_caption = (f"One draw of z_t at t = {t:.2f} (seed {view.seed})"
                + ("" if variant.mask_id is not None else
                   f"; as a sentence it is {verdict_words(validity_reason(noisy['tokens']))}")
                + (". Each position is shown as the unit nearest to z_t / α." if "units_2d" in noisy else "."))
st.caption(draw_caption)

left, right = st.columns([3, 2])
with left:
    if "units_2d" in noisy:
        st.subheader("Embedding space (2-D projection)")
        show_html(svg_figures.forward_embedding_svg(noisy, x0, list(variant.vocab)))
        st.caption("Diamonds: the 13 units' embeddings. Circles: the six noisy positions drifting away "
                   "from their units (dotted lines) as t grows.")
    else:
        st.subheader("Per-position distribution of z_t")
        show_html(svg_figures.marginals_html(noisy["marginals"], x0, noisy["marginal_labels"]))
        st.caption("q(z_t^i | x^i) for each position: " + variant.text.forward_marginals)
with right:
    st.subheader("Schedule")
    curve = forward.schedule_curve(variant.name, schedule, model)
    show_html(svg_figures.schedule_svg(curve, t))
    st.caption("The noise level over time, with a marker at the chosen t.")
with st.expander("How? The equation"):
    st.markdown(variant.text.forward_how)
said = " ".join([variant.text.forward_how, variant.text.forward_marginals, draw_caption, *curve["curves"]])
views = ["embedding", "2-D projection"] if "units_2d" in noisy else ["probability distribution", "forward process"]
glossary_popover(WORDS + views + terms_in(said), where=glossary_box)
