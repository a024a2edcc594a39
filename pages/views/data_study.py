"""Data-constrained: autoregression against masked diffusion on few sentences for many epochs, on the larger toy
language (dlm_core/studies/data_study.py). Opens on the shipped results; Recompute runs in the server's queue."""

from dataclasses import asdict, dataclass

import streamlit as st

from dlm_core.render import study_figures
from dlm_core.studies import compare, data_study
from pages import PageState, glossary_popover, setting

WORDS = ["data-constrained", "larger toy language", "autoregressive model", "masked (absorbing) diffusion", "epoch",
         "training set", "held-out loss", "learn by heart (overfitting)", "entropy H", "NELBO", "standard error",
         "cross-entropy", "Monte Carlo", "validity", "sample", "causal mask", "token / unit", "seed",
         "training step", "[MASK]", "parameters"]
RECOMPUTE_GUESS_S = 30.0  # the quick settings here, before the queue has timed one



@dataclass
class DataStudyView:
    """What the page shows, in its link."""

    unique: int = setting(300, label="Unique training sentences U", widget="select_slider", url="ds_u")
    full: bool = setting(False, label="Full settings (about 20 to 30 minutes here)", url="ds_full",
                         help="Off: the quick settings (smaller models, U = 40, 120, 360, three epoch counts): about "
                              "half a minute, a check of the pipeline rather than of the finding.")


view = PageState(DataStudyView)
st.title("Data-constrained: when does diffusion beat autoregression?")
st.caption("An autoregressive model and a masked diffusion model of the same size learn from the same few sentences "
           "for up to hundreds of epochs; both are measured against the whole larger toy language, whose entropy "
           "is known exactly.")
glossary_box, notice_box = st.container(), st.container()


@st.cache_data(show_spinner=False)
def shipped_results():
    return data_study.load_results()


results = st.session_state.get("data_study_results") or shipped_results()
if results is None:
    st.error("No results file (assets/data_study.json). Run `python -m dlm_core data-study --json --out "
             "assets/data_study.json` or press Recompute below.")
else:
    s = results["settings"]
    st.markdown(f"Computed by `{results['command']}` on **{results['computed_at'][:10]}** "
                f"({results['wall_time_s']:.0f} s on one thread): {results['parameters']:,} parameters per model, U = "
                f"{', '.join(f'{u:,}' for u in s['unique'])} unique sentences of the language's "
                f"{results['language']['support_size']:,}, measured after {', '.join(map(str, s['epochs']))} epochs. "
                f"H = **{results['entropy_bits_per_sentence']:.3f} bits per sentence**.")
    summary = data_study.summarise(results)
    for sentence in data_study.findings({**results, "summary": summary}):
        st.info(sentence, icon=":material/insights:")
    us = [int(u) for u in s["unique"]]
    if st.session_state.get("ds_u") not in us:  # a recomputed study may have other U
        st.session_state.pop("ds_u", None)
    unique = view.widget("unique", choices=us, default=us[len(us) // 2])
    st.plotly_chart(study_figures.data_study_figure(results, unique), key="ds_curves")
    st.caption("What to notice: the autoregressive loss (exact) falls fast, bottoms out and climbs again as it learns "
               "its few sentences by heart; the diffusion bound falls more slowly and for longer. Both can never go "
               "below the dashed entropy H.")
    st.markdown(compare.markdown_table(data_study.summary_rows(summary)))
    st.caption("Held-out losses in bits per sentence. 'then': the change from the lowest to the last epoch "
               "(up means learning by heart).")
    st.markdown(compare.markdown_table(data_study.validity_rows(results, unique)))
    st.caption(f"At U = {unique:,}: the share of {s['n_samples']} sampled sentences that are sentences of the language "
               "(AR left to right; diffusion in random order, one unit per step).")
    with st.expander("How? What is measured"):
        st.markdown(
            "Both models are the same transformer (the autoregressive one with a causal mask), trained with AdamW on "
            "U sentences drawn from the language, epoch after epoch. **AR**: the exact held-out cross-entropy "
            "$\\sum_x p(x)\\,(-\\log_2 q(x))$ over all 61,809 sentences, the loss on endless fresh sentences. "
            "**Diffusion**: its NELBO $\\mathbb E_{x\\sim p}\\,\\mathbb E_{k,M}\\,\\frac{L}{k}\\sum_{i\\in M}"
            "-\\log_2 q(x^i\\mid x_{\\setminus M})$ by Monte Carlo over one fixed set of draws shared by every run "
            "(± its standard error). The NELBO is an upper bound on the likelihood of diffusion's random-order "
            "sampler, so a diffusion number below AR's is a conservative win; its exact likelihood would need the "
            "4,095 masked sets of every sentence, so it is not computed here. See docs/maths.md, section 11.")

st.header("Recompute")
full = view.widget("full")
view.finish(notice_box)
if st.button("Recompute", icon=":material/refresh:", key="ds_recompute"):
    from pages.jobs_ui import keep_recomputed, queued

    settings = data_study.DataStudySettings() if full else data_study.DataStudySettings.quick()
    command = data_study.COMMAND if full else "python -m dlm_core data-study --json --quick"
    job = queued(lambda report: report.job.run_in_process(  # in a worker process of its own, off the server's lock
        "dlm_core.studies.data_study:compute_in_worker", {"settings": asdict(settings), "command": command},
        on_message=lambda m: report(*m)), kind="data-study", cost=30.0 if full else 1.0,
        label="recompute the data-constrained study", hint_s=RECOMPUTE_GUESS_S * (30.0 if full else 1.0),
        key="ds_stop", stop_help="Stop recomputing (the numbers shown stay).")
    keep_recomputed(job, "data_study_results")
glossary_popover(WORDS, where=glossary_box)
