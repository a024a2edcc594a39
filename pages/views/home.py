"""Home: what a diffusion language model is, the three variants, the colour legend."""

import streamlit as st

from dlm_core import toy_language
from dlm_core.render import chips
from pages import glossary_popover, show_html

WORDS = ["DLM (diffusion language model)", "pin", "autoregressive model", "token / unit", "noise", "forward process",
         "reverse process", "toy language", "[PAD]", "entropy H", "bits per unit", "validity", "sample",
         "masked (absorbing) diffusion", "[MASK]", "uniform diffusion", "Gaussian diffusion", "self-correction",
         "embedding", "vector", "commit", "ReMDM remasking η", "prompt", "confidence (score)", "viridis",
         "variant", "NELBO", "infill", "data-constrained",
         "D3PM", "Diffusion-LM", "CDCD", "Plaid", "MDLM", "MD4", "RADD", "LLaDA", "Dream", "UDLM"]

st.title("Seeing how diffusion language models write")
glossary_popover(WORDS)
st.markdown(
    """
An autoregressive language model writes left to right, one token at a time. A **diffusion language
model (DLM)** starts from pure noise over the *whole* sequence and removes the noise in a few
steps, revising many positions in parallel. Training teaches it to undo a **forward process** that
corrupts sentences; generation runs the **reverse process** from noise to text.

Every page of this tool uses one small, exact **toy language**: 13 units
(`we you they our your their cat dog friend is are s [PAD]`), sentences of exactly six units such as
`dog s are our friend s`. It is small enough that the tool computes its exact entropy and checks every
sample for validity, so every model can be scored honestly.
"""
)
H = toy_language.entropy_bits_per_unit()
c1, c2, c3 = st.columns(3)
c1.metric("Sentences in the language", toy_language.support_size())
c2.metric("Exact entropy H", f"{H:.4f} bits/unit")
c3.metric("Units per sentence", toy_language.L)

st.header("Three kinds of diffusion language model")
cols = st.columns(3)
with cols[0]:
    st.subheader("Masked (absorbing)")
    st.markdown("`dog [MASK] are our [MASK] s`")
    st.markdown(
        "Noise is a `[MASK]` token. Like the panels of **Wheel of Fortune**: a blank panel is turned once "
        "and then stays. LLaDA and Dream are masked DLMs."
    )
with cols[1]:
    st.subheader("Uniform")
    st.markdown("`cat s is your friend we`")
    st.markdown(
        "Noise replaces a unit by a random unit. Like a **slot machine**: every reel keeps spinning and any "
        "unit may still change at a later step (self-correction)."
    )
with cols[2]:
    st.subheader("Gaussian")
    st.markdown("`d○g s ar● o●r fr○end s`")
    st.markdown(
        "Units become vectors in an embedding space and Gaussian noise **blurs** them; at the end each "
        "vector is rounded to its nearest unit (Diffusion-LM, CDCD, Plaid)."
    )

st.header("Colours")
st.markdown("The same colours and marks mean the same thing on every page (the marks tell the states apart "
            "without colour):")
show_html(chips.legend_html())
st.caption("Confidence and probability always use one sequential scale (viridis).")

st.header("Where to go")
ROOMS = [  # every room of the app, in the order a newcomer would take them
    ("lessons.py", "Lessons: the whole article in short steps, each asking you to predict first", "school"),
    ("forward.py", "Forward process: how each kind of noise destroys a sentence", "fast_forward"),
    ("reverse.py", "Reverse process: watch a model write a sentence, step by step", "fast_rewind"),
    ("infill.py", "Infill: pin some units and let a model fill the rest", "edit_note"),
    ("compare.py", "Compare variants: the honest numbers, side by side", "compare_arrows"),
    ("order_study.py", "Unmasking order: which positions a model commits first", "format_list_numbered"),
    ("train.py", "Train: watch a toy model learn, live", "model_training"),
    ("training_lab.py", "Training lab: change one choice of the recipe and see its bound", "science"),
    ("data_study.py", "Data-constrained: autoregressive against diffusion on few sentences", "dataset"),
    ("real.py", "Real model: a masked diffusion LM writing Shakespeare-like text", "menu_book"),
    ("poll.py", "Class poll: a room code, the class answers, the tally on the projector", "how_to_vote"),
]
for file, label, icon in ROOMS:
    st.page_link(f"pages/views/{file}", label=label, icon=f":material/{icon}:")
st.caption(
    "References: Austin et al. 2021 (D3PM); Li et al. 2022 (Diffusion-LM); Dieleman et al. 2023 (CDCD); "
    "Sahoo et al. 2024 (MDLM); Shi et al. 2024 (MD4); Ou et al. 2024 (RADD); Nie et al. 2025 (LLaDA); "
    "Ye et al. 2025 (Dream); Wang et al. 2025 (ReMDM); Schiff et al. 2025 (UDLM)."
)
