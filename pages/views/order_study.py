"""Unmasking order: which positions, roles and word classes a masked DLM commits first.

Thin: it draws assets/order_study.json (dlm_core/order_study.py computes it; `python -m dlm_core
order-study` rebuilds it). "Recompute" runs the study with the quick settings in the server's job queue,
once per server: the result is shared by every session that asks for the same settings."""

from dataclasses import dataclass

import streamlit as st

from dlm_core import ROOT
from dlm_core.classroom.glossary import terms_in
from dlm_core.render import order_figures
from dlm_core.studies import order_measures, order_study
from pages import PageState, glossary_popover, md_escape, real_model, setting, shipped_model

RECOMPUTE_GUESS_S = 75.0  # the quick settings here, before the queue has timed a run


@dataclass
class OrderView:
    """Which cells of the study are shown, in the link (the choices are the results' own)."""

    strategy: str = setting("low-confidence", label="Strategy", url="os_strategy",
                            help="ancestral: MDLM's reveal draw; random, low-confidence, margin, entropy: LLaDA / "
                                 "Dream's fixed-count sampler.")
    T: int = setting(6, label="Steps T", widget="radio", url="os_T")
    real_strategy: str = setting("low-confidence", label="Strategy for the step view", widget="radio",
                                 show=md_escape, url="os_real_strategy")


view = PageState(OrderView)

st.title("Unmasking order")
st.caption("In what order does a masked diffusion model commit its tokens? Which positions, which grammatical "
           "roles, which kinds of words come first, and how close is the order to left to right?")
glossary_box = st.container()
notice_box = st.container()
shown: list[str] = []  # the page's text, for the glossary popover


def say(text: str, how=st.markdown) -> None:
    """Draw Markdown written by this page (never file or model text unescaped) and remember it."""
    shown.append(text)
    how(text)


@st.cache_data(show_spinner=False, max_entries=4)
def read_results(path: str, mtime: float) -> dict:
    """The results file (re-read when it changes: mtime is part of the key)."""
    return order_study.load_results(path)


@st.cache_resource(show_spinner=False)
def shared_runs() -> dict:
    """Recomputed results shared by every session: settings key -> results."""
    return {}


def shown_path(path) -> str:
    """A path as the page shows it: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def shipped_results() -> tuple[dict | None, str | None]:
    path = order_measures.RESULTS
    try:
        return read_results(str(path), path.stat().st_mtime if path.exists() else -1.0), None
    except order_study.ResultsError as e:
        return None, str(e)


def recompute_section() -> None:
    st.header("Recompute")
    settings = order_measures.OrderStudySettings.quick(command="the Unmasking order page's Recompute button "
                                                            "(quick settings)")
    say(f"Runs the study again with the quick settings ({settings.toy_n:,} toy sentences per cell, "
        f"{settings.real_n} real generations per strategy; about a minute here). The result is shared: every "
        "visitor who presses the button gets the same run.", st.caption)
    if st.button("Recompute", icon=":material/refresh:", key="order_recompute"):
        from dlm_core.serving import jobs
        from pages.jobs_ui import queued

        runs, key = shared_runs(), settings.key()
        if key not in runs:
            toy_model, lm = shipped_model("masked"), real_model()
            job = queued(lambda report: order_study.compute(settings, progress=report, toy_model=toy_model, lm=lm),
                         kind="order-study", cost=settings.toy_n, label="recompute the order study",
                         hint_s=RECOMPUTE_GUESS_S, key="order_stop", stop_help="Stop (the results shown stay).")
            if job.state == jobs.FAILED:  # e.g. a model that cannot load
                st.error(f"The study could not run: {md_escape(job.error)}")
                return
            if job.state != jobs.DONE:
                st.info("Recompute stopped: the results shown are unchanged.", icon=":material/stop:")
                return
            runs[key] = job.result
        st.session_state["order_key"] = key
        st.rerun()


recomputed = shared_runs().get(st.session_state.get("order_key"))
results, problem = (recomputed, None) if recomputed is not None else shipped_results()
if results is None:
    st.error(f"The study's results could not be read: {md_escape(problem)}. Rebuild the file with "
             f"`{order_measures.COMMAND}` (about 10 minutes), or press Recompute below for a quick run.")
    recompute_section()
    view.finish(notice_box)
    st.stop()

# ----------------------------------------------------------------------------- findings

st.header("What the study finds")
for finding in results["findings"]:
    st.info(md_escape(finding), icon=":material/insights:")
    shown.append(finding)
toy, real = results["toy"], results["real"]
where = ("a run of the Recompute button" if recomputed is not None else
         f"{md_escape(shown_path(order_measures.RESULTS))}, made by {md_escape(results['command'])}")
say(f"From {where} on {md_escape(results['computed_at'][:10])} ({float(results['wall_time_s']):.0f} s): "
    f"{int(results['settings']['toy_n']):,} toy sentences per strategy and number of steps T"
    + (f", {int(next(iter(real['strategies'].values()))['n'])} real generations per strategy." if real else "."),
    st.caption)

# ---------------------------------------------------------------------------- toy model

st.header("Toy model: which position is committed when")
strategies = list(toy["strategies"])
steps_list = [int(T) for T in toy["steps"]]
for k, options in (("os_strategy", strategies), ("os_T", steps_list)):  # a recomputed run may have other choices
    if k in st.session_state and st.session_state[k] not in options:
        del st.session_state[k]
c1, c2 = st.columns([2, 3])
strategy = view.widget("strategy", c1, choices=strategies,
                       default="low-confidence" if "low-confidence" in strategies else strategies[0])
T = view.widget("T", c2, choices=steps_list, default=max(steps_list), horizontal=True)
cell = toy["cells"][strategy][str(T)]
exact = cell.get("P_exact") is not None
left, right = st.columns(2)
with left:
    say(f"**Position × step** ({md_escape(strategy)}, T = {T})")
    st.plotly_chart(order_figures.position_heatmap(cell), key="os_pos")
    say("What to notice: each row is one of the 6 positions, each column a reverse step; a cell is the share of "
        "sentences in which that position is committed at that step (each row sums to 1). "
        + ("This order does not depend on the model, so the numbers shown are exact; the hover also gives the "
           "sampled estimate." if exact else "Sampled, with the standard error in the hover."), st.caption)
with right:
    say(f"**Grammatical role × step** ({md_escape(strategy)}, T = {T})")
    st.plotly_chart(order_figures.role_heatmap(cell, toy["roles"]), key="os_role")
    say("What to notice: the roles come from the grammar (subject, verb, predicate, padding); a row is the share "
        "of units of that role committed at each step. "
        + ("Sampled: the order is blind to what is written, yet a role can still lean to some steps, because "
           "what a position becomes depends on what was committed before it (and units committed together are "
           "drawn independently)." if exact else "Confidence strategies commit the easy roles first."), st.caption)

def sampled_tau(c: dict) -> str:
    return order_study.format_mean(c["tau"]["mean"], c["tau"]["se"], signed=True) if c["tau"]["se"] is not None \
        else "—"


def tau_cell(c: dict) -> str:
    """The mean tau of a cell: exact where known (0 shown as 0), else sampled with its SE."""
    if c.get("tau_exact"):
        m = c["tau_exact"]["mean"]
        return ("0" if abs(m) < 1e-12 else f"{m:+.3f}") + " (exact)"
    return sampled_tau(c)


reference = toy["cells"].get("random", {}).get(str(T))
say(f"**Kendall's τ between commit step and position** ({md_escape(strategy)}, T = {T}): mean "
    + (f"{tau_cell(cell)}, sampled {sampled_tau(cell)}" if cell.get("tau_exact") else f"{sampled_tau(cell)}"))
st.plotly_chart(order_figures.tau_figure(cell, toy["tau_edges"], reference), key="os_tau")
say("What to notice: τ = +1 means strictly left to right, −1 right to left, 0 no tendency; a bar is the share of "
    "sentences with that τ, a diamond its exact probability where the order is model-independent, and the dotted "
    "line random order's exact distribution, symmetric around 0.", st.caption)


rows = ["| strategy | " + " | ".join(f"T = {t}" for t in steps_list) + " |", "|---|" + "---|" * len(steps_list)]
rows += [f"| {md_escape(s)} | " + " | ".join(tau_cell(toy["cells"][s][str(t)]) for t in steps_list) + " |"
         for s in strategies]
say("\n".join(rows))
say("Mean Kendall's τ (± its standard error) of every strategy and number of steps.", st.caption)

# ---------------------------------------------------------------------------- real model

st.header("Real model: which tokens are committed first")
if not real:
    say("This run has no real-model part.", st.info)
else:
    say(f"Model: {md_escape(real['model'])}. Each generation writes {int(real['gen_length'])} tokens in "
        f"{int(real['steps'])} steps after {int(real['prompt_tokens'])} tokens of held-out Shakespeare, at "
        f"temperature {float(real['temperature']):g}, as one block. A token's relative commit step is 0 when it "
        "is committed at the first step and 1 at the last.", st.caption)
    st.plotly_chart(order_figures.real_group_figure(real, "by_class", "word class"), key="os_class")
    say("What to notice: a bar below the dotted middle (0.5) means that word class is committed early on average. "
        "Word classes: punctuation; function words (a fixed list of about 150 English words); content words; subword "
        "continuations (pieces that continue a word).", st.caption)
    st.plotly_chart(order_figures.real_group_figure(real, "by_frequency", "frequency rank in the generated text"),
                    key="os_freq")
    say(f"What to notice: frequent tokens are written first. Frequency: {md_escape(real['frequency_source'])}.",
        st.caption)
    st.plotly_chart(order_figures.real_group_figure(real, "by_position", "generated positions"), key="os_relpos")
    say("What to notice: a bar rising from left to right means the positions next to the prompt are committed "
        "first (a left-to-right tendency).", st.caption)
    real_strategies = list(real["strategies"])
    if st.session_state.get("os_real_strategy", real_strategies[0]) not in real_strategies:
        del st.session_state["os_real_strategy"]
    rs = view.widget("real_strategy", choices=real_strategies, default=real_strategies[0], horizontal=True)
    st.plotly_chart(order_figures.real_step_heatmap(real, rs, "by_position"), key="os_real_heat")
    say("What to notice: each row is a stretch of generated positions, each column a group of reverse steps; a "
        "cell is the share of those tokens committed then (each row sums to 1).", st.caption)
    st.plotly_chart(order_figures.real_tau_figure(real), key="os_real_tau")
    say("What to notice: Kendall's τ of each generation; random order centres on 0, a confidence order that "
        "leans on the prompt sits to the right.", st.caption)
    ex = real.get("examples", {}).get("class", {})
    if ex:
        say("| word class | its most frequent tokens here |\n|---|---|\n" + "\n".join(
            f"| {md_escape(c)} | {' '.join('‘' + md_escape(t) + '’' for t in toks)} |" for c, toks in ex.items()))
        say("Tokens as the tokenizer writes them (## marks a piece that continues a word).", st.caption)
    for s, r in real["strategies"].items():
        st.caption(f"A {md_escape(s)} generation: {md_escape(r.get('sample', ''))}")

with st.expander("How? The exact orders, τ and the standard errors"):
    say(r"""
**Random order** (LLaDA's fixed-count sampler with uniform scores): step $j$ commits $c_j$ of the masked
positions (`spread_counts(6, T)`), chosen uniformly, so every position is committed at step $j$ with
probability $c_j / L$, whatever the model writes. **Ancestral** (MDLM): a masked position is revealed at step $k$
with probability $q_k = \frac{\alpha_s - \alpha_t}{1 - \alpha_t}$ ($q_T = 1$), independently, so its step is $j$
with probability $\pi_j = q_j \prod_{k<j} (1 - q_k)$, which is $1/T$ for the linear schedule. The exact
distribution of τ enumerates every assignment of steps to the 6 positions with its probability.

**Kendall's τ-b** between commit step and position: $\tau_b = \frac{C - D}{\sqrt{n_0 (n_0 - n_2)}}$ with
$n_0 = m(m-1)/2$ pairs, $C - D = \sum_{i<k} \operatorname{sign}(\text{step}_k - \text{step}_i)$ and $n_2$ the
pairs committed at the same step; it is undefined (left out) when every position is committed at once.

**Standard errors** of a share or a mean over units (roles, word classes) are clustered by sequence: the units of
one sentence are not independent.
""")

recompute_section()
view.finish(notice_box)
glossary_popover([t for t in terms_in(" ".join(shown))], glossary_box)
