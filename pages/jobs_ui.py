"""The pages' side of the server-wide job queue (dlm_core.jobs): whose job it is (this session),
whether that session is still there (Streamlit's runtime), and how a waiting job is shown."""

from __future__ import annotations

import streamlit as st

from dlm_core.serving import jobs


def session_id() -> str | None:
    """The id of the browser session running this script (None outside a script run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    return None if ctx is None else ctx.session_id


def session_alive(owner: str) -> bool | None:
    """Whether a session is still connected to this server; None where that cannot be told (no
    runtime, e.g. under AppTest), and then its jobs are kept."""
    try:
        from streamlit.runtime import Runtime

        if not Runtime.exists():
            return None
        return Runtime.instance().is_active_session(owner)
    except Exception:  # noqa: BLE001 - an internal API that may change: never cancel on a doubt
        return None


def job_queue() -> jobs.JobQueue:
    """The server's one queue, watching that the sessions owning its jobs are still there."""
    q = jobs.default_queue()
    if q.owner_alive is None:
        q.set_owner_check(session_alive)
    return q


WAITING_REFRESH_S = 3.0  # a waiting job's place and estimate change slowly: its view refreshes every 3 s
RUNNING_REFRESH_S = 1.0  # a running job's live view: every second


def refresh_every(job) -> float | None:
    """The run_every of a fragment showing `job` (a Job or a TrainingJob): every 3 s while it waits
    (thirty waiting students cost the server a third of what a 1 s refresh would), every second while
    it runs, never once it has finished. Streamlit fixes run_every on a full run: a fragment drawn
    while its job waited calls st.rerun() when the job starts (`started_since`)."""
    if job.waiting:
        return WAITING_REFRESH_S
    return RUNNING_REFRESH_S if job.running else None


def started_since(job, refresh: float | None) -> bool:
    """Whether `job` has left the line since its fragment was set to refresh every `refresh` seconds."""
    return refresh == WAITING_REFRESH_S and not job.waiting


def show_waiting(job: jobs.Job, where=None) -> None:
    """Where a waiting job stands: its place in the line and an estimate of when it starts and ends."""
    (where or st).info(jobs.describe_wait(job), icon=":material/hourglass_top:")


def follow(job: jobs.Job, box, on_progress=None, poll_s: float = 0.1) -> None:
    """Hold this script run until `job` has finished, showing in `box` (an st.empty) its place while
    it waits; `on_progress()` (if given) is called every `poll_s` while it runs, to stream what it
    has done. Reading session_state lets Streamlit interrupt the wait at once for a rerun (a Stop
    button, any widget) or a closed tab; the job itself runs on in the queue's worker."""
    shown = None
    while not job.finished:
        if job.waiting:
            text = jobs.describe_wait(job)
            if text != shown:
                shown = text
                box.info(text, icon=":material/hourglass_top:")
        elif on_progress is not None:
            if shown is not None:
                box.empty()
                shown = None
            on_progress()
        st.session_state.get("_job_tick")  # a yield point: a pending rerun or stop interrupts here
        job.wait(poll_s)
    if shown is not None:
        box.empty()


def follow_or_cancel(job: jobs.Job, box, on_progress=None) -> None:
    """`follow(job, ...)` for a job whose result only this script run will collect: when the run is
    interrupted (Stop, another click, a closed tab), the job is cancelled instead of running on unseen."""
    try:
        follow(job, box, on_progress=on_progress)
    finally:
        if not job.finished:
            job.cancel("stopped")


def queued(compute, *, kind: str, cost: float, label: str, hint_s: float, key: str, stop_help: str = "") -> jobs.Job:
    """Run `compute(report)` in the server's queue and hold this script run until it has finished:
    its place while it waits, then a progress bar and a Stop button (key `key`). `report(fraction, text)`
    shows how far it is and is where a Stop, another click or a closed tab ends it. Returns the finished
    job (done, failed or cancelled): the page shows its result or its error."""

    def run(job):  # in the queue's worker
        def report(fraction: float, text: str) -> None:
            job.progress = (fraction, text)
            job.check()  # a cancel ends the work here

        report.job = job  # for work that runs in the job's own worker process (Job.run_in_process)
        return compute(report)

    job = job_queue().submit(run, kind=kind, owner=session_id(), cost=cost, label=label, hint_s=hint_s)
    stop_box, bar = st.empty(), st.empty()
    stop_box.button("Stop", icon=":material/stop:", key=key, help=stop_help or None)

    def show_progress() -> None:
        if job.progress is not None:
            fraction, text = job.progress
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=text)

    follow_or_cancel(job, bar, on_progress=show_progress)
    stop_box.empty()
    bar.empty()
    return job


def keep_recomputed(job: jobs.Job, results_key: str) -> None:
    """A finished Recompute job: its results replace the page's (kept under `results_key`, then one rerun
    draws them), or a line says why the numbers shown are unchanged."""
    from pages.state import md_escape

    if job.state == jobs.DONE:
        st.session_state[results_key] = job.result
        st.rerun()
    elif job.state == jobs.FAILED:
        st.error(f"Recomputing failed: {md_escape(job.error)}")
    else:
        st.info("Recomputing stopped; the numbers shown are unchanged.", icon=":material/stop:")


def _rerun_once(key: str, job) -> None:
    """One full rerun when `job` has finished (it re-enables the page's settings and ends the fragment's
    refreshing), never two for the same job."""
    if st.session_state.get(f"{key}_rerun_done") is not job:
        st.session_state[f"{key}_rerun_done"] = job
        st.rerun()


def live_training(job, key: str, entropy_bits_per_unit: float, caption: str, on_finished=None) -> None:
    """A training job (dlm_core.studies.training.TrainingJob), live: its place in the line while it waits
    (with a way out), then its progress, a Stop button and the loss and NELBO against the entropy H, every
    second; `on_finished(snap)` once it has finished without an error (e.g. to offer the model)."""
    from dlm_core.render import plotly_figures

    refresh = refresh_every(job)

    @st.fragment(run_every=refresh)
    def live() -> None:
        if started_since(job, refresh):
            st.rerun()  # it trains now: a full rerun makes the live view refresh every second
        snap = job.snapshot()
        if snap["waiting"]:  # in the server's line: its place, an estimate, and a way out
            show_waiting(job.job)
            if st.button("Stop", icon=":material/stop:", key=f"{key}_stop", help="Leave the line: nothing is trained."):
                job.stop()
                st.rerun()  # a full rerun re-enables the settings
            return
        if snap["cancelled"]:
            st.info("Stopped before it started: nothing was trained.", icon=":material/stop:")
            _rerun_once(key, job)
            return
        done_steps = snap["losses"][-1][0] if snap["losses"] else 0
        st.progress(done_steps / snap["steps"], text=f"{job.cfg.variant}: step {done_steps} / {snap['steps']} "
                                                     f"({snap['elapsed_s']:.0f} s)")
        if snap["running"] and st.button("Stop", icon=":material/stop:", key=f"{key}_stop"):
            job.stop()
        st.plotly_chart(plotly_figures.training_figure(snap["losses"], snap["nelbo"], entropy_bits_per_unit),
                        key=f"{key}_curve")
        st.caption(caption)
        if snap["error"]:
            st.error(f"Training failed: {snap['error']}")
        elif not snap["running"] and on_finished is not None:
            on_finished(snap)
        if not snap["running"]:
            _rerun_once(key, job)

    live()
