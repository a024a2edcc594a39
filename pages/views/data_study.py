"""Data-constrained: autoregression against masked diffusion on few sentences for many epochs, on the larger toy
language (dlm_core/studies/data_study.py). Opens on the shipped results; Recompute runs in the server's queue."""

from dataclasses import asdict

import streamlit as st

from dlm_core.render import study_figures
from dlm_core.studies import compare, data_study
from pages import from_query, glossary_popover, md_escape, to_query, url_bool, url_notices

WORDS = ["data-constrained", "larger toy language", "autoregressive model", "masked (absorbing) diffusion", "epoch",
         "training set", "held-out loss", "learn by heart (overfitting)", "entropy H", "NELBO", "standard error",
         "cross-entropy", "Monte Carlo", "validity", "sample", "causal mask", "token / unit", "seed",
         "training step", "[MASK]", "parameters"]
RECOMPUTE_GUESS_S = 60.0  # the quick settings here, before the queue has timed one

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
    from_query("ds_u", us[len(us) // 2], int, choices=us)
    unique = st.select_slider("Unique training sentences U", us, key="ds_u")
    st.plotly_chart(study_figures.data_study_figure(results, unique), key="ds_curves")
    st.caption("What to notice: the autoregressive loss (exact) falls fast, bottoms out and climbs again as it learns "
               "its few sentences by heart; the diffusion bound falls more slowly and for longer. Both can never go "
               "below the dashed entropy H.")
    st.markdown(compare.markdown_table([
        {"U": f"{r['unique_sentences']:,}", "AR: lowest (epoch)": f"{r['ar_best_bits']:.2f} ({r['ar_best_epoch']})",
         "AR: then": f"{r['ar_rise_after_best']:+.2f}",
         "diffusion: lowest ± SE (epoch)": f"{r['dlm_best_bits']:.2f} ± {r['dlm_best_stderr']:.2f} "
                                           f"({r['dlm_best_epoch']})",
         "diffusion: then": f"{r['dlm_rise_after_best']:+.2f}",
         "diffusion below AR from epoch": r["dlm_overtakes_at_epoch"] or "never"} for r in summary]))
    st.caption("Held-out losses in bits per sentence. 'then': the change from the lowest to the last epoch "
               "(up means learning by heart).")
    runs = [r for r in results["runs"] if r["unique_sentences"] == unique]
    st.markdown(compare.markdown_table([
        {"epoch": e, **{f"valid samples: {'AR' if r['family'] == 'ar' else 'diffusion'}": f"{r['validity'][j]:.1%}"
                        for r in runs}} for j, e in enumerate(runs[0]["epochs"])]))
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
from_query("ds_full", False, url_bool)
full = st.toggle("Full settings (about 20 to 30 minutes here)", key="ds_full",
                 help="Off: the quick settings (smaller models, U = 40, 120, 360, three epochs): about a minute, a "
                      "check of the pipeline rather than of the finding.")
to_query(["ds_u", "ds_full"])
url_notices(notice_box)
if st.button("Recompute", icon=":material/refresh:", key="ds_recompute"):
    from dlm_core.serving import jobs
    from pages.jobs_ui import follow_or_cancel, job_queue, session_id

    settings = data_study.DataStudySettings() if full else data_study.DataStudySettings.quick()
    command = data_study.COMMAND if full else "python -m dlm_core data-study --json --quick"

    def study_job(job):  # in the server's job queue (a class's recomputations take turns), in a worker process
        def progress(message):
            job.progress = message

        return job.run_in_process("dlm_core.studies.data_study:compute_in_worker",
                                  {"settings": asdict(settings), "command": command}, on_message=progress)

    job = job_queue().submit(study_job, kind="data-study", owner=session_id(), cost=1.0 if not full else 30.0,
                             label="recompute the data-constrained study",
                             hint_s=RECOMPUTE_GUESS_S * (30.0 if full else 1.0))
    stop_box, bar = st.empty(), st.empty()
    stop_box.button("Stop", icon=":material/stop:", key="ds_stop", help="Stop recomputing (the numbers shown stay).")

    def show_progress() -> None:
        if job.progress is not None:
            bar.progress(*job.progress)

    follow_or_cancel(job, bar, on_progress=show_progress)
    stop_box.empty()
    bar.empty()
    if job.state == jobs.DONE:
        st.session_state.data_study_results = job.result
        st.rerun()
    elif job.state == jobs.FAILED:
        st.error(f"Recomputing failed: {md_escape(job.error)}")
    else:
        st.info("Recomputing stopped; the numbers shown are unchanged.", icon=":material/stop:")
glossary_popover(WORDS, where=glossary_box)
