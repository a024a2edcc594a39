"""Compare variants: the same footing for all three (exact entropy, same steps, same seeds)."""

from dataclasses import dataclass

import streamlit as st

from dlm_core.classroom.glossary import verdict_words
from dlm_core.render import chips, plotly_figures, study_figures
from dlm_core.studies import compare  # light: the table is drawn before torch is imported
from dlm_core.toy_language import support_size, validity_reason
from pages import PageState, glossary_popover, session_models, setting, shipped_model, show_html

WORDS = ["entropy H", "standard error", "sample", "bits per unit", "plug-in KL", "KL (divergence)", "steps T",
         "variant", "masked (absorbing) diffusion", "uniform diffusion", "Gaussian diffusion", "NELBO", "NELBO − H",
         "validity", "error reasons", "coverage", "support", "forward KL", "KL valid", "TV (total variation)",
         "p, p_model", "empirical distribution", "Monte Carlo", "ancestral", "sampler", "strategy", "random (strategy)",
         "low-confidence", "margin", "entropy (strategy)", "confidence (score)", "schedule α_t", "ReMDM remasking η",
         "seed", "reverse process", "token / unit", "[PAD]", "[MASK]", "commit", "self-correction", "checkpoint",
         "noise", "confidence threshold", "forward pass", "fixed-count sampler", "autoregressive model",
         "temperature"]

RECOMPUTE_GUESS_S = 55.0  # the quick settings (2,000 samples per cell) here, before the queue has timed one
SECTION_NAMES = ("Quality against steps", "Strategies and schedules", "Threshold decoding", "One seed, every variant")


@dataclass
class CompareView:
    """What the Compare page shows, each in its link (a section's settings are read when it shows)."""

    T: int = setting(24, label="Steps T for the table", widget="select_slider", url="cmp_T")  # T of the results
    section: str = setting(SECTION_NAMES[0], label="Show", choices=SECTION_NAMES, widget="segmented", url="cmp_view",
                           help="One comparison at a time; the table above stays.")
    strategy_T: int = setting(6, label="Steps", widget="radio", url="cmp_strategy_T")  # T of the strategy cells
    seed: int = setting(0, label="Seed", lo=0, hi=10**6, step=1, widget="number", url="cmp_seed")
    seed_steps: int = setting(6, label="Steps", choices=(3, 6, 12, 24), widget="select_slider", url="cmp_seed_steps")
    full: bool = setting(False, label="Full settings (20,000 samples per cell; about 15 minutes here)",
                         url="cmp_full")

st.title("Compare the variants honestly")
st.caption("Same data, same step budgets, same seeds, the exact entropy H as the floor. "
           "Sampled numbers carry their standard error; exact ones say so.")
glossary_popover(WORDS)
notice_box = st.container()


@st.cache_data(show_spinner=False)
def shipped_results():
    return compare.load_results()


@st.cache_data(show_spinner="Measuring threshold and fixed-count decoding on the toy language (seconds) ...")
def threshold_study(_model):
    """Measured once per server for the shipped masked model and shared by every session."""
    from dlm_core.studies import threshold_decoding

    return threshold_decoding.study(_model)


@st.cache_data(max_entries=32, show_spinner=False)
def same_seed_trajectories(seed: int, steps: int):
    from dlm_core.variants.registry import VARIANTS

    # a variant that needs more steps (the autoregressive one: one per unit) takes its fewest
    return {name: v.trajectory(shipped_model(name), max(steps, v.min_steps), seed) for name, v in VARIANTS.items()}


view = PageState(CompareView)
results = st.session_state.get("compare_results") or shipped_results()
if results is None:
    st.error("No results file (assets/compare_results.json). Run `python -m dlm_core compare --json --out "
             "assets/compare_results.json` or press Recompute.")
    st.stop()

n_cell = results["settings"]["n_samples"]
st.markdown(f"Computed by `{results['command']}` on **{results['computed_at'][:10]}** "
            f"({n_cell:,} samples per cell, {results['wall_time_s']:.0f} s). "
            f"H = **{results['entropy_bits_per_unit']:.4f} bits/unit**; the plug-in KL of {n_cell:,} "
            f"exact samples would already be about {results['plugin_kl_bias_bits']:.4f} bits.")
steps_list = [int(k) for k in next(iter(results["variants"].values()))["by_steps"]]
T = view.widget("T", choices=steps_list, default=24 if 24 in steps_list else steps_list[-1])
st.markdown(compare.markdown_table(compare.summary_rows(results, T)))
st.caption(
    "**What the columns mean** (↑ higher is better, ↓ lower is better):  \n"
    "**variant**: the kind of noise (masked, uniform or Gaussian).  \n"
    "**NELBO − H** ↓: how far the model's training bound is above the entropy floor H, in bits per unit.  \n"
    "**validity** ↑: the share of samples that are sentences of the language (± its standard error).  \n"
    "**error reasons**: why the invalid samples are wrong; other means none of the simple fixes (padding, "
    "agreement, predicate number) makes them valid.  \n"
    f"**coverage** ↑: the share of the language's {support_size()} sentences that turned up at least once.  \n"
    "**forward KL** ↓: how badly the model misses sentences the language often writes (exact, masked only).  \n"
    "**KL valid** ↓: whether the valid samples come in the language's own proportions.  \n"
    "**TV** ↓: how different the samples are from the language overall, invalid ones included (0 to 1).")
with st.expander("How? The columns"):
    st.markdown(
        "NELBO − H: the gap between each model's bound and the entropy, bits per unit (exact for masked: 63 "
        "masks per sentence; Monte Carlo with its standard error otherwise). Validity: the fraction of samples "
        "that are sentences of the language (masked: also the exact valid mass of the ancestral sampler). "
        "Coverage: distinct valid sentences / 216. Forward KL(p‖p_model): exact, masked only. KL valid: "
        "KL(empirical valid ‖ p). TV: total variation between the samples and p, invalid mass included.")


def quality_section():
    c1, c2 = st.columns(2)
    with c1:
        st.subheader("Validity against steps")
        st.plotly_chart(plotly_figures.quality_vs_steps_figure(results, "validity"), key="cmp_valid")
        st.caption("What to notice: validity climbs as the number of steps T grows; with a single step almost no "
                   "sample is a sentence.")
    with c2:
        st.subheader("Coverage against steps")
        st.plotly_chart(plotly_figures.quality_vs_steps_figure(results, "coverage_fraction"), key="cmp_cov")
        st.caption("What to notice: near 1, every sentence of the language turns up; a curve falls when a model "
                   "keeps writing the same few sentences.")
    st.caption("Few steps means many units decided in parallel, independently: that is where the variants differ "
               "most.")


def masked_section():
    st.header("Masked: strategies and schedules")
    c1, c2 = st.columns(2)
    with c1:
        options = [int(k) for k in results["strategies"]]
        sT = view.widget("strategy_T", choices=options, default=options[-1], horizontal=True)
        st.plotly_chart(plotly_figures.strategy_figure(results, sT), key="cmp_strat")
        st.caption("What to notice: up and to the right is best (valid and diverse); each dot is one strategy.")
        st.markdown(compare.markdown_table(compare.strategy_rows(results, sT)))
        st.caption("Confidence ordering (low-confidence) raises validity but collapses diversity: coverage and KL "
                   "get worse than random order.")
    with c2:
        st.plotly_chart(plotly_figures.schedule_compare_figure(results), key="cmp_sched")
        st.caption("Exact validity of the T-step ancestral sampler: the cosine schedule reveals few units first.")
        st.subheader(f"ReMDM remasking ({results['remdm']['steps']} steps)")
        st.plotly_chart(plotly_figures.remdm_figure(results), key="cmp_remdm")
        st.caption("η caps the probability σ_t = min(η, (1 − α_s)/α_t) that a revealed unit is masked again "
                   "(Wang et al. 2025): revealed units can be corrected.")


def threshold_section():
    st.header("Masked: confidence-threshold decoding against a fixed count")
    from dlm_core.studies import threshold_decoding  # loads torch: only when this section is shown

    study = threshold_study(shipped_model("masked"))
    st.plotly_chart(study_figures.threshold_figure(study), key="cmp_threshold")
    st.caption("What to notice: up and to the left is best (valid with few forward passes). "
               + threshold_decoding.study_summary(study) + " A fixed count pays for fewer passes with more invalid "
               "sentences; the threshold strategy (Fast-dLLM) only commits a unit early when the model is sure of it.")
    with st.expander("How? Forward passes per sentence"):
        st.markdown(
            f"Each point: {study['settings']['n_samples']:,} toy sentences at temperature "
            f"{study['settings']['temperature']:g}, measured ({study['wall_time_s']:.0f} s, shared by every session). "
            "A fixed-count run with T steps makes T forward passes. The threshold strategy commits, at each step, "
            "every masked unit whose confidence (the probability of its drawn unit) is at least the threshold, and "
            "always the most confident one, so its passes differ from sentence to sentence: the mean over the "
            "sentences is shown, each counted until it has nothing masked. An autoregressive model needs one pass "
            "per unit.")


def same_seed_section():
    from dlm_core.variants.registry import VARIANTS

    st.header("One seed, one click: every variant side by side")
    c1, _ = st.columns([1, 3])
    seed = view.widget("seed", c1)
    steps = view.widget("seed_steps", c1)
    trajs = same_seed_trajectories(int(seed), int(steps))
    cols = st.columns(len(trajs))
    for col, (v, traj) in zip(cols, trajs.items(), strict=True):
        with col:
            st.markdown(f"**{v}** ({traj.n_steps} steps) — {verdict_words(validity_reason(traj.final))}")
            show_html(chips.sequence_html(traj, traj.n_steps, big=False))
            fig = plotly_figures.trajectory_grid(traj, traj.n_steps, max_text_steps=13, compact=True)
            st.plotly_chart(fig, key=f"cmp_grid_{v}", theme=None)
            st.caption(VARIANTS[v].text.notice)


# One section at a time: a rerun builds only the figures it shows (every figure costs the one shared
# server CPU on every rerun, which a class of thirty feels), and a link can open any section.
SECTIONS = dict(zip(SECTION_NAMES, (quality_section, masked_section, threshold_section, same_seed_section),
                    strict=True))
SECTIONS[view.widget("section", required=True)]()

st.header("Recompute")
from dlm_core.variants.registry import VARIANTS  # noqa: E402 (loads torch: after the table and the section are drawn)

missing = compare.missing_variants(results, VARIANTS)
if missing:  # computed before these variants were added: say so instead of an eleven-minute recompute
    notice_box.info(f"This results file has no row for the {', '.join(missing)} variant{'s' * (len(missing) > 1)} "
                    "yet: it was computed before "
                    f"{'they were' if len(missing) > 1 else 'it was'} added. Press **Recompute** at the bottom of the "
                    "page to include every variant (quick settings: about a minute).", icon=":material/info:")
trained = {v: session_models(v) for v in VARIANTS}
picked = {}
cols = st.columns(len(VARIANTS))
for col, v in zip(cols, VARIANTS, strict=True):
    picked[v] = col.selectbox(f"{v} model", ["shipped", *trained[v]], key=f"cmp_model_{v}")
full = view.widget("full")
view.finish(notice_box)
if st.button("Recompute", icon=":material/refresh:", key="cmp_recompute"):
    from pages.jobs_ui import keep_recomputed, queued

    models = {v: trained[v][p] for v, p in picked.items() if p != "shipped"}
    settings = compare.CompareSettings() if full else compare.CompareSettings.quick()
    job = queued(lambda report: compare.compute(settings, progress=report, models=models), kind="compare",
                 cost=settings.n_samples, label="recompute the comparison", key="cmp_stop",
                 hint_s=RECOMPUTE_GUESS_S * settings.n_samples / 2000,
                 stop_help="Stop recomputing (the numbers shown stay).")
    keep_recomputed(job, "compare_results")
