"""Train: watch a toy diffusion model learn the toy language, live."""

from dataclasses import dataclass

import streamlit as st

from dlm_core.studies import training
from dlm_core.toy_language import entropy_bits_per_unit
from dlm_core.variants.registry import VARIANTS
from pages import PageState, add_session_model, glossary_popover, setting
from pages.jobs_ui import job_queue, live_training, session_id

RECIPE = "recipe"  # the variant's own setting (training.default_config: TrainConfig and its train_defaults)
LEARNING_RATES = [RECIPE, 1e-3, 2e-3, 5e-3, 1e-2]
WIDTHS = [RECIPE, 32, 64, 128]
RECIPES = {v: training.default_config(v) for v in VARIANTS}
DEFAULT_STEPS = max(cfg.steps for cfg in RECIPES.values())  # enough for every variant's recipe
WORDS = ["DLM (diffusion language model)", "toy language", "forward process", "denoiser", "entropy H", "variant",
         "autoregressive model",
         "masked (absorbing) diffusion", "uniform diffusion", "Gaussian diffusion", "training step", "learning rate",
         "width (model size)", "seed", "loss", "t (noise level)", "low-discrepancy sampling", "token / unit",
         "p_θ(x | z_t)", "unbiased estimate", "NELBO", "MDLM", "RADD", "Monte Carlo", "bits per unit",
         "z_t (noisy sequence)", "noise", "checkpoint"]

H = entropy_bits_per_unit()


def _recipe_or(cast):
    """A URL value: the word `recipe`, or a number."""
    return lambda raw: RECIPE if raw == RECIPE else cast(raw)


def _show(value) -> str:
    return "recipe" if value == RECIPE else f"{value:g}"


@dataclass
class TrainSettings:
    """What the Train page trains, each in its link."""

    variant: str = setting(next(iter(VARIANTS)), label="Variant", choices=tuple(VARIANTS), url="train_variant")
    steps: int = setting(DEFAULT_STEPS, label="Steps", lo=50, hi=5000, step=50, widget="number", url="train_steps",
                         help="The recipes: " + ", ".join(f"{v} {c.steps}" for v, c in RECIPES.items()))
    lr: object = setting(RECIPE, label="Learning rate", choices=tuple(LEARNING_RATES), widget="select_slider",
                         show=_show, parse=_recipe_or(float), url="train_lr")
    width: object = setting(RECIPE, label="Width", choices=tuple(WIDTHS), widget="select_slider", show=_show,
                            parse=_recipe_or(int), url="train_width",
                            help="recipe: the variant's width and depth; a number: that width, 2 layers, "
                                 "feed-forward 4 × width")
    seed: int = setting(0, label="Seed", lo=0, hi=10**6, step=1, widget="number", url="train_seed")


def _shipped_time(variant: str) -> str:
    """' (12 s on one core)': how long the shipped checkpoint took to train, from its checkpoint.json."""
    import json

    try:
        meta = json.loads((training.default_checkpoint(variant) / "checkpoint.json").read_text())
        return f" ({meta['wall_time_s']:.0f} s on one core)" if meta["training"] == json.loads(
            json.dumps(RECIPES[variant].to_dict())) else ""
    except (OSError, ValueError, KeyError):
        return ""


st.title("Train a toy diffusion model, live")
st.caption(
    "Training draws sentences from the exact toy language, corrupts them and teaches the denoiser to undo it. "
    "The curve should fall towards the entropy H, the floor no honest model can beat."
)
glossary_popover(WORDS)

job = st.session_state.get("train_job")
busy = job is not None and job.running
view = PageState(TrainSettings)
with st.form("train_settings", border=True):
    cols = st.columns(5)
    variant = view.widget("variant", cols[0])
    steps = view.widget("steps", cols[1])
    lr = view.widget("lr", cols[2])
    width = view.widget("width", cols[3])
    seed = view.widget("seed", cols[4])
    start = st.form_submit_button("Start training", type="primary", icon=":material/model_training:", disabled=busy)
    st.caption("The recipes (what `python -m dlm_core train` uses to make the shipped models): "
               + "; ".join(f"{v} {c.steps} steps, learning rate {c.lr:g}, width {c.d_model} × {c.n_layers} layers"
                           + _shipped_time(v) for v, c in RECIPES.items())
               + ". Each reaches its NELBO target near the entropy H in the steps shown.")

view.finish()
if start:
    own = {} if lr == RECIPE else {"lr": float(lr)}
    if width != RECIPE:
        own.update(d_model=int(width), d_ff=4 * int(width), n_layers=2)
    cfg = training.default_config(variant, steps=int(steps), seed=int(seed), **own)
    st.session_state.train_job = training.TrainingJob(cfg, eval_every=max(25, int(steps) // 12),
                                                      owner=session_id(), queue=job_queue()).start()
    st.session_state.train_registered = False
    st.rerun()

with st.expander("How? The loss"):
    st.markdown(
        "Masked: $k$ of the 6 units are masked ($k$ spread evenly over 1..6 across the batch), loss "
        "$= \\frac{6}{k}\\sum_{\\text{masked}} -\\log p_\\theta(x^i \\mid z)$, an unbiased estimate of the "
        "continuous-time NELBO (MDLM, RADD). Because the toy language is known exactly, each masked unit is scored "
        "against every sentence that fits the visible units, weighted by its probability (the language's exact "
        "conditional), not only the sentence that was drawn: the same bound, estimated far more steadily. Uniform and "
        "Gaussian do the same given the noisy sentence. Each batch holds the sentences in "
        "proportion to their probabilities. The diamonds are the NELBO measured on the whole language "
        "(exactly for masked, by Monte Carlo for uniform and Gaussian)."
    )

if job is None:
    st.info("Pick the settings and press **Start training**. Training runs in the background, in one line shared "
            "by everyone on this server: the page, and everyone else's, stays responsive.")
    st.stop()


def offer_model(snap: dict) -> None:
    """Once trained: the model joins this session's models (the Reverse and Compare pages offer it)."""
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


live_training(job, "train", H, "What to notice: the loss falls fast and then levels off; the NELBO diamonds "
              "come down towards the dashed entropy line H, but an honest model never goes below it.",
              on_finished=offer_model)
