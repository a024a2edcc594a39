"""Infill: pin units at some positions, let a toy model fill in the rest, and hold its completions against the
toy language's exact answer.

Thin: every number comes from dlm_core.infill_run.run_infill, which `python -m dlm_core infill` also calls; the
page shows that command for its settings. The pins live in the URL as ?pins=2:our,4:is (positions from 1),
so another page can link here with ?variant=...&pins=...."""

from dataclasses import dataclass

import streamlit as st

from dlm_core.classroom.glossary import terms_in
from dlm_core.render import study_figures
from dlm_core.studies import infill, infill_run
from dlm_core.toy_language import UNITS, L
from dlm_core.variants.registry import VARIANTS
from pages import PageState, glossary_popover, md_escape, options_text, setting, shipped_model

FREE = "free"
NO_PINS = "none"  # ?pins=none: every position free
STEP_CHOICES = ("auto", *range(1, 101))
WORDS = ["autoregressive model", "toy language", "pin", "infill",
         "token / unit", "[PAD]", "[MASK]", "prompt", "variant", "masked (absorbing) diffusion",
         "uniform diffusion", "Gaussian diffusion", "sampler", "strategy", "random (strategy)", "steps T", "seed",
         "sample", "checkpoint", "p, p_model", "empirical distribution", "support", "validity", "error reasons",
         "standard error", "TV (total variation)", "KL (divergence)", "KL valid", "forward KL", "plug-in KL",
         "bits per unit", "commit", "probability distribution", "p_θ(x | z_t)", "canvas", "temperature"]


def steps_value(raw):
    """?steps=auto or a number of steps."""
    return "auto" if str(raw) == "auto" else int(raw)


def pins_value(raw) -> str:
    """?pins=2:our,4:is (or none), read and written back in its canonical form (a ValueError if malformed)."""
    return infill.pins_text(infill.parse_pins("" if str(raw) == NO_PINS else str(raw))) or NO_PINS


@dataclass
class InfillView:
    """What the Infill page computes, each in its link (and the variant's sampler options)."""

    pins: str = setting(NO_PINS, parse=pins_value, widget="url")  # ?pins=2:our,4:is (positions from 1)
    variant: str = setting(next(iter(VARIANTS)), label="Variant", choices=tuple(VARIANTS))
    steps: object = setting("auto", label="Steps T", choices=STEP_CHOICES, parse=steps_value,
                            help="auto: one step per free position for the masked variant (one unit per step), the "
                                 "variant's default otherwise.")
    n: int = setting(2000, label="Completions sampled (n)", lo=100, hi=20000, widget="number",
                     help="More completions: smaller standard errors, slower.")
    seed: int = setting(0, label="Seed", lo=0, hi=10**6, step=1, widget="number")


@st.cache_data(max_entries=256, show_spinner="Sampling the completions ...")
def compute(variant: str, pins: tuple, steps, n: int, seed: int, options: tuple) -> infill_run.InfillResult:
    """Cached per settings across sessions; the model is the shipped checkpoint (what the CLI loads)."""
    settings = infill_run.InfillSettings.make(variant, dict(pins), steps, n, seed, **dict(options))
    return infill_run.run_infill(shipped_model(variant), settings)


@st.cache_data(max_entries=64, show_spinner="Sampling every variant and strategy ...")
def compute_all(pins: tuple, n: int, seed: int) -> list:
    return infill_run.infill_by_variant(shipped_model, dict(pins), n, seed)


st.title("Infill, checked against the truth")
st.caption("A diffusion model can fill in any positions given the others. Pin units at some positions; the model "
           "writes the rest. Beside its completions stands the toy language's exact answer: every sentence that "
           "has those units there, with its probability.")
glossary_box = st.container()
notice_box = st.container()
s = st.session_state
view = PageState(InfillView)

# ---------------------------------------------------------------------------- the pins
st.subheader("Pin some positions")
view.bind("pins")
current = infill.parse_pins("" if s.pins == NO_PINS else s.pins)  # canonical by now: never raises
cols = st.columns(L)
for i in range(L):
    key = f"pin{i + 1}"
    if key not in s or view.link_followed:  # from the link (or the session's last pins); the widget owns it then
        s[key] = UNITS[current[i]] if i in current else FREE
    cols[i].selectbox(f"Position {i + 1}", [FREE, *UNITS], key=key)
pins = {i: UNITS.index(s[f"pin{i + 1}"]) for i in range(L) if s[f"pin{i + 1}"] != FREE}
s.pins = infill.pins_text(pins) or NO_PINS
st.caption("Each position is free (the model writes it) or pinned to a unit (held fixed while the model writes "
           "the others, as a prompt is).")

with st.sidebar:
    st.header("Sampler")
    variant = VARIANTS[view.widget("variant")]
    auto = infill.infill_steps(variant, pins)
    view.widget("steps", format_func=lambda v: f"auto ({auto})" if v == "auto" else str(v))
    exact = infill_run.INFILL_DEFAULT_STRATEGY  # the strategy whose infill is known exactly, where a variant has it
    options = view.sampler(variant.config_class,
                           {"strategy": exact} if exact in getattr(variant.config_class, "strategies", ()) else {})
    view.widget("n", step=500)
    view.widget("seed")

words = WORDS + terms_in(options_text(variant.config_class) + " " + variant.text.intro)


def finish() -> None:
    view.finish(notice_box)
    glossary_popover(words, where=glossary_box)


steps = None if s.steps == "auto" else int(s.steps)
try:
    settings = infill_run.InfillSettings.make(variant.name, pins, steps, int(s.n), int(s.seed), **options)
except ValueError as e:
    st.error(f"These settings don't work together: {md_escape(e)}")
    finish()
    st.stop()
try:
    infill.language_conditional(pins)
except infill.ImpossiblePins as e:
    st.warning(f"Nothing to sample: {md_escape(e)}. Free a position or pick another unit: the model would only "
               "be asked to write something the language never says.", icon=":material/block:")
    finish()
    st.stop()

result = compute(settings.variant, settings.pins, settings.steps, settings.n, settings.seed, settings.options)
d, e = result.sampled, result.exact
strategy = settings.option_dict.get("strategy")
label = variant.name + (f", {strategy}" if strategy else "")

# ---------------------------------------------------------------------------- distances
st.subheader(f"How close the {label} model comes ({result.steps} steps, {settings.n:,} completions)")
st.markdown(f"**{result.conditional_size}** sentence(s) of the language have "
            f"{md_escape(infill.describe_pins(settings.pins))}: their probabilities, renormalised, are the exact "
            "answer p.")
c = st.columns(3)
c[0].metric("TV (sampled)", infill_run.pm(d.tv, d.tv_se), help="Total variation between the completions and p, invalid "
            "completions counting in full; ± a bootstrap standard error.")
c[1].metric("KL valid (sampled)", infill_run.pm(d.kl_valid_bits, d.kl_valid_se) + " bits",
            help="KL(valid completions ‖ p): are the valid completions in the language's proportions? "
                 "± a bootstrap standard error.")
c[2].metric("validity (sampled)", infill_run.pm(d.valid_mass, d.valid_mass_se),
            help="Share of the completions that are sentences of the language; ± its standard error.")
noise = (f"Even {settings.n:,} draws from p itself would come out at about {d.tv_floor:.4f} in TV"
         + ("" if d.kl_valid_bias_bits is None else f" and {d.kl_valid_bias_bits:.4f} bits in KL valid (the plug-in "
            "KL's bias)") + ": that much is the luck of the draw.")
if e is not None:
    c = st.columns(4)
    c[0].metric("TV (exact)", f"{e.tv:.4f}")
    c[1].metric("KL valid (exact)", f"{e.kl_valid_bits:.4f} bits")
    c[2].metric("forward KL (exact)", f"{e.forward_kl_bits:.4f} bits",
                help="KL(p ‖ p_model): how badly the model misses sentences the language writes.")
    c[3].metric("validity (exact)", f"{e.valid_mass:.4f}")
    st.caption("Exact: the masked model's own infill distribution p_model (random order, one unit per step), "
               "computed without sampling. The sampled validity and shares should agree with it within a few "
               f"standard errors. {noise} So the sampled TV and KL sit above the exact ones by about that much.")
else:
    st.caption(f"{noise} No exact model column: {md_escape(result.exact_why_not)}.")

# ---------------------------------------------------------------------------- completions
st.plotly_chart(study_figures.infill_figure(result), key="infill_bars")
st.caption("The most likely completions (✗: not a sentence of the language), and at the bottom all the "
           "completions that are not sentences, together. What to notice: grey is the truth; the model's bars should "
           "match it, within their error bars.")
rows = infill_run.completion_rows(result)
st.dataframe(rows, hide_index=True, column_config={k: st.column_config.NumberColumn(format="%.4f")
                                                   for k in list(rows[0])[2:]} if rows else None)
st.caption(f"The {len(rows)} most likely completions of {len(result.rows)} (the language's and the model's).")
st.markdown("**The same numbers from the command line:**")
st.code(result.command, language="bash", wrap_lines=True)

with st.expander("All variants and strategies on these pins"):
    st.caption(f"Each at its default steps, {settings.n:,} completions, seed {settings.seed}.")
    if st.button("Compute the table", key="infill_all") or s.get("infill_all_for") == (settings.pins, settings.n,
                                                                                       settings.seed):
        s.infill_all_for = (settings.pins, settings.n, settings.seed)
        res = compute_all(settings.pins, settings.n, settings.seed)
        st.dataframe(infill_run.variant_rows(res), hide_index=True)
        st.code(settings.all_command(), language="bash", wrap_lines=True)

with st.expander("How? The exact answer and the model's exact infill"):
    st.markdown(
        "**The language's answer.** With the pinned positions $P$ fixed to the units $u_P$, the exact conditional "
        "is $p(x \\mid x_P = u_P) = p(x)\\,\\mathbb{1}[x_P = u_P] \\,/\\, \\sum_{x'} p(x')\\,\\mathbb{1}[x'_P = u_P]$ "
        "over the 216 sentences.\n\n"
        "**The model's exact infill** (masked, random strategy, one unit per step): each step commits one "
        "uniformly random masked position and draws its unit from $p_\\theta(\\cdot \\mid$ canvas$)$, so over the "
        "$m$ free positions $F$: $f(\\emptyset) = 1$, "
        "$f(S) = \\sum_{i \\in S} f(S \\setminus i)\\, p_\\theta(x^i \\mid u_P, x_{S \\setminus i}) / (m - |S| + 1)$, "
        "$p_{\\text{model}}(x_F \\mid u_P) = f(F)$.\n\n"
        "**Distances** (as on the Compare page): TV $= \\tfrac12 \\sum_x |\\hat q(x) - p(x)|$ with invalid "
        "completions counting in full; KL valid $= \\sum_x \\hat q_{\\text{valid}}(x) \\log_2 "
        "\\frac{\\hat q_{\\text{valid}}(x)}{p(x)}$, the valid completions renormalised (the other direction is "
        "infinite as soon as one sentence is never drawn); forward KL $= \\sum_x p \\log_2 (p / p_{\\text{model}})$, "
        "exact only. Standard errors: binomial for shares and validity, a bootstrap over the n completions "
        "for TV and KL. docs/maths.md section 7.")

finish()
