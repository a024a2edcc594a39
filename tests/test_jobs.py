"""The server-wide job queue (dlm_core.jobs): order, worker limit, place and estimate, cancelling,
failures, the watchdog of owners; trainings and real-model generations through it."""

import os
import threading
import time

import pytest

from dlm_core.serving import jobs
from dlm_core.serving.jobs import JobQueue


@pytest.fixture
def queue():
    queues = []

    def make(**kw):
        q = JobQueue(**kw)
        queues.append(q)
        return q

    yield make
    for q in queues:
        q.shutdown()


def blocker(gate: threading.Event, log: list | None = None, name=None):
    """A job that waits for `gate` (checking for cancellation), then records its name."""
    def fn(job):
        while not gate.wait(0.01):
            job.check()
        if log is not None:
            log.append(name)
        return name
    return fn


def test_first_in_first_out_with_one_worker(queue):
    q = queue(workers=1)
    gate, log = threading.Event(), []
    js = [q.submit(blocker(gate, log, i), kind="t") for i in range(6)]
    gate.set()
    assert all(j.wait(10) for j in js)
    assert log == list(range(6))
    assert [j.result for j in js] == list(range(6)) and all(j.state == jobs.DONE for j in js)


def test_the_worker_limit_is_honoured(queue):
    q = queue(workers=2)
    lock, now, peak = threading.Lock(), [0], [0]

    def fn(job):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.1)
        with lock:
            now[0] -= 1

    js = [q.submit(fn) for _ in range(8)]
    time.sleep(0.05)
    assert q.stats()["running"] == 2 and q.stats()["waiting"] == 6
    assert all(j.wait(10) for j in js)
    assert peak[0] == 2


def test_place_and_estimate(queue):
    q = queue(workers=1)
    gate = threading.Event()
    a = q.submit(blocker(gate), kind="train", cost=100, hint_s=10.0)
    b = q.submit(blocker(gate), kind="train", cost=100, hint_s=10.0)
    c = q.submit(blocker(gate), kind="train", cost=50, hint_s=5.0)
    while not a.running:
        time.sleep(0.01)
    assert (a.place(), b.place(), c.place()) == (0, 1, 2)
    start_b, end_b = b.estimate()
    assert 9 < start_b <= 10 and 19 < end_b <= 20  # a's 10 s (less what it has run), then its own 10 s
    start_c, end_c = c.estimate()
    assert 19 < start_c <= 20 and 24 < end_c <= 25
    assert "number 2 in line (1 ahead of you)" in jobs.describe_wait(c) and "Starts in about 20 s" in \
        jobs.describe_wait(c)
    gate.set()
    for j in (a, b, c):
        j.wait(10)
    assert a.place() is None and a.estimate() == (0.0, 0.0)
    # with jobs measured, the estimate follows their seconds per unit of cost, not the guess
    rate = q.run_estimate("train", 1.0)
    assert rate is not None and rate < 0.01 and q.run_estimate("train", 100, hint_s=99.0) < 1.0
    assert q.run_estimate("never-seen", 10, hint_s=3.0) == 3.0


def test_an_unknown_duration_is_said_plainly(queue):
    q = queue(workers=1)
    gate = threading.Event()
    a = q.submit(blocker(gate), kind="x")  # no hint, nothing measured
    b = q.submit(blocker(gate), kind="x")
    while not a.running:
        time.sleep(0.01)
    assert b.estimate() == (None, None)
    assert "next in line" in jobs.describe_wait(b) and "Estimating" in jobs.describe_wait(b)
    gate.set()


def test_cancel_a_waiting_job(queue):
    q = queue(workers=1)
    gate, log = threading.Event(), []
    a = q.submit(blocker(gate, log, "a"))
    b = q.submit(blocker(gate, log, "b"))
    c = q.submit(blocker(gate, log, "c"))
    assert b.cancel() is True
    assert b.state == jobs.CANCELLED and b.finished and b.wait(0) and b.place() is None
    assert c.place() == (2 if a.waiting else 1)  # b's place is given up
    gate.set()
    assert c.wait(10) and a.wait(10)
    assert log == ["a", "c"]  # b never ran
    assert b.cancel() is False  # already finished
    assert q.stats()["cancelled"] == 1


def test_cancel_a_running_job_promptly(queue):
    q = queue(workers=1)
    gate = threading.Event()
    a = q.submit(blocker(gate))
    after = q.submit(lambda job: "next")
    while not a.running:
        time.sleep(0.01)
    t0 = time.monotonic()
    a.cancel("stopped")
    assert a.wait(2) and time.monotonic() - t0 < 1
    assert a.state == jobs.CANCELLED and a.cancel_reason == "stopped" and a.result is None
    assert after.wait(5) and after.result == "next"  # the worker is free again


def test_an_exception_in_a_job_is_reported_not_lost(queue):
    q = queue(workers=1)

    def boom(job):
        raise RuntimeError("the model fell over")

    bad = q.submit(boom, kind="t")
    good = q.submit(lambda job: 42, kind="t")
    assert bad.wait(5) and good.wait(5)
    assert bad.state == jobs.FAILED and bad.error == "RuntimeError: the model fell over"
    assert isinstance(bad.exception, RuntimeError) and "RuntimeError" in bad.traceback
    assert good.state == jobs.DONE and good.result == 42  # the worker survived it
    assert q.stats()["failed"] == 1 and q.stats()["done"] == 1


def test_default_workers_from_the_environment(monkeypatch):
    monkeypatch.setenv("DLM_WORKERS", "3")
    assert jobs.default_workers() == 3
    monkeypatch.setenv("DLM_WORKERS", "0")
    assert jobs.default_workers() == 1
    monkeypatch.setenv("DLM_WORKERS", "lots")
    assert jobs.default_workers() >= 1
    monkeypatch.delenv("DLM_WORKERS")
    assert jobs.default_workers() >= 1


def test_the_watchdog_cancels_the_jobs_of_a_session_that_has_gone(queue):
    sessions = {"alice", "bob"}
    q = queue(workers=1, owner_alive=lambda owner: owner in sessions, watch_every=0.1, grace_s=0.3)
    gate = threading.Event()
    running = q.submit(blocker(gate), owner="alice")
    queued = q.submit(blocker(gate), owner="alice")
    bobs = q.submit(blocker(gate), owner="bob")
    unknown = q.submit(blocker(gate), owner=None)
    while not running.running:
        time.sleep(0.01)
    time.sleep(0.5)
    assert not running.cancelled  # alice is still there
    t0 = time.monotonic()
    sessions.discard("alice")  # alice closes her tab
    assert running.wait(3) and queued.wait(3)
    assert time.monotonic() - t0 < 2
    assert running.state == queued.state == jobs.CANCELLED and running.cancel_reason == "its session has gone"
    assert not bobs.cancelled and not unknown.cancelled
    gate.set()
    assert bobs.wait(5) and unknown.wait(5) and bobs.state == jobs.DONE


def test_the_watchdog_waits_for_a_reconnect_and_keeps_jobs_it_cannot_judge(queue):
    state = {"alice": False}
    q = queue(workers=1, owner_alive=lambda owner: state.get(owner), grace_s=10)
    gate = threading.Event()
    a = q.submit(blocker(gate), owner="alice")
    b = q.submit(blocker(gate), owner="who-knows")  # owner_alive says None: cannot tell, kept
    now = time.monotonic()
    assert q.check_owners(now) == 0
    state["alice"] = True  # back within the grace period: forgotten
    assert q.check_owners(now + 5) == 0
    state["alice"] = False
    assert q.check_owners(now + 6) == 0 and q.check_owners(now + 15) == 0  # missing again: a new grace period
    assert q.check_owners(now + 16.1) == 1 and a.cancelled and not b.cancelled
    gate.set()


def test_finished_jobs_are_not_kept_by_the_queue(queue):
    import gc
    import weakref

    q = queue(workers=1)

    class Big:
        pass

    refs = []

    def make(job):
        obj = Big()
        refs.append(weakref.ref(obj))
        return obj

    js = [q.submit(make) for _ in range(20)]
    assert all(j.wait(5) for j in js)
    del js
    gc.collect()
    assert all(r() is None for r in refs)  # results live only as long as their Job, which the page holds


# ----------------------------------------------------- trainings and generations


@pytest.mark.parametrize("in_worker_process", [True, False])
def test_a_training_in_the_queue_can_be_stopped_waiting_or_running(queue, in_worker_process):
    from dlm_core.studies import training

    q = queue(workers=1)
    first = training.TrainingJob(training.default_config("masked", steps=5000), eval_every=1000, queue=q,
                                 in_worker_process=in_worker_process).start()
    second = training.TrainingJob(training.default_config("masked", steps=50), eval_every=25, queue=q).start()
    while not first.snapshot()["losses"]:
        time.sleep(0.02)
    snap = second.snapshot()
    assert snap["waiting"] and snap["running"] and not snap["done"]
    second.stop()  # leaves the line at once
    assert second.wait(1) and second.snapshot()["cancelled"] and second.result is None
    t0 = time.monotonic()
    first.stop()  # stops after the current step, with the model trained so far
    assert first.wait(5) and time.monotonic() - t0 < 3
    assert first.result.stopped and first.result.steps_done < 5000 and first.snapshot()["stopped"]
    assert first.job.state == jobs.DONE


def test_a_long_generation_is_cancelled_within_a_few_steps(queue):
    from dlm_core.sampling.masked_sampler import MaskedSamplerConfig
    from dlm_core.variants import hf_adapter

    lm = hf_adapter.load(None)
    q = queue(workers=1)
    steps_seen = []

    def generate(job):
        def on_step(rec, sampler, text):
            steps_seen.append(rec.step)
            job.progress = (rec.step, sampler.config.steps, text)
            job.check()
        return hf_adapter.generate(lm, "to be", 256, MaskedSamplerConfig(steps=256, block_length=256),
                                   on_step=on_step)

    job = q.submit(generate, kind="generate")
    while job.progress is None or job.progress[0] < 2:
        assert not job.finished, job.error
        time.sleep(0.01)
    t0 = time.monotonic()
    job.cancel("stopped")
    assert job.wait(10)
    assert time.monotonic() - t0 < 5 and job.state == jobs.CANCELLED and job.result is None
    assert max(steps_seen) < 256


def die(send, cancelled, code: int):
    """Run in a worker process: it dies at once."""
    os._exit(code)


def test_a_failure_in_a_worker_process_is_reported_not_lost(queue):
    q = queue(workers=1)
    bad = q.submit(lambda job: job.run_in_process("dlm_core.studies.training:train_in_worker",
                                                  {"config": {"steps": 0}, "eval_every": 1}))
    crash = q.submit(lambda job: job.run_in_process("test_jobs:die", {"code": 3}))  # the process dies
    after = q.submit(lambda job: job.run_in_process("dlm_core.studies.training:train_in_worker",
                                                    {"config": {"steps": 3}, "eval_every": 3}))
    assert bad.wait(120) and crash.wait(60) and after.wait(120)
    assert bad.state == jobs.FAILED and bad.error == "ValueError: training needs at least 1 step"
    assert isinstance(bad.exception, ValueError)  # a setting that does not work stays a ValueError
    assert "Traceback" in bad.exception.__cause__.child_traceback
    assert crash.state == jobs.FAILED and ("exit code 3" in crash.error or "has gone" in crash.error)
    assert after.state == jobs.DONE and after.result["steps_done"] == 3  # a new process took over


def test_the_training_lesson_trains_through_the_queue_and_stops():
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from dlm_core.classroom.lesson_plan import LESSONS

    lesson, step = next((li, si) for li, lesson in enumerate(LESSONS, 1)
                        for si, s in enumerate(lesson.steps, 1) if s.view.kind == "train")
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "app.py"), default_timeout=60)
    at.query_params.update({"lesson": str(lesson), "step": str(step)})
    at.switch_page("pages/views/lessons.py")
    at.run()
    if LESSONS[lesson - 1].steps[step - 1].question:  # the training follows the guess
        at.radio(key=f"guess-{lesson}-{step}").set_value(at.radio(key=f"guess-{lesson}-{step}").options[0]).run()
        next(b for b in at.button if b.key == "lesson_reveal").click().run()
    next(b for b in at.button if b.key == "lesson_train").click().run()
    assert not at.exception, at.exception
    job = at.session_state["lesson_job"]
    assert job.job is not None and job.job.kind == "train" and job.owner  # queued, owned by this session
    deadline = time.monotonic() + 60
    while not job.snapshot()["losses"] and time.monotonic() < deadline:
        time.sleep(0.05)
    at.run()
    next(b for b in at.button if b.key == "lesson_stop").click().run()
    assert job.wait(30) and job.result.stopped and job.result.steps_done < 400
    at.run()
    assert not at.exception and not any(b.key == "lesson_stop" for b in at.button)


def test_a_session_keeps_its_last_three_trained_models():
    from streamlit.testing.v1 import AppTest

    def script():
        from pages import add_session_model

        for i in range(5):
            add_session_model(f"model {i}", "masked", object())
        add_session_model("model 3", "masked", object())  # the same label again: the newest

    at = AppTest.from_function(script)
    at.run()
    assert not at.exception, at.exception
    assert list(at.session_state["session_models"]) == ["model 2", "model 4", "model 3"]


def test_a_real_page_branch_runs_in_the_queue():
    """Continue-as-a-branch on the Real page is a queued job like a generation, and its result is the branch
    hf_adapter.branch makes with the same edits and seed."""
    import json
    from pathlib import Path

    from conftest import generate_on_the_real_page

    from dlm_core.sampling.branching import Edits
    from dlm_core.variants import hf_adapter

    at = generate_on_the_real_page(str(Path(__file__).resolve().parent.parent / "app.py"))
    parent = at.session_state["real_traj"]
    pos = parent.gen_start + 2
    stage = json.loads(at.get("bidi_component")[0].proto.json)
    at.session_state[f"real_stage-{stage['id']}"] = {"step": 3}  # the player paused at step 3 ...
    at.session_state["real_stage_pick"] = {"lane": 0, "pos": pos, "step": 3}  # ... and a click on a cell
    at.run()
    assert not at.exception, at.exception
    at.radio(key="real_edit_action").set_value("remask").run()
    before = dict(jobs.default_queue().counts)
    submitted = []
    real_submit = jobs.JobQueue.submit

    def spy(self, fn, kind="job", **kw):
        job = real_submit(self, fn, kind, **kw)
        submitted.append(job)
        return job

    jobs.JobQueue.submit = spy
    try:
        next(b for b in at.button if b.key == "real_edit_go").click().run()
    finally:
        jobs.JobQueue.submit = real_submit
    assert not at.exception, at.exception
    assert [(j.kind, j.label, j.state) for j in submitted] == [("generate", "branch from step 3", jobs.DONE)]
    assert jobs.default_queue().counts[jobs.DONE] == before[jobs.DONE] + 1
    branch = at.session_state["real_branches"]["runs"][-1]
    seed = branch.branch["seed"]  # the seed the panel offered (the run's seed + the number of runs)
    from dlm_core.variants.real import VARIANT as REAL

    lm = hf_adapter.load()
    expect = REAL.branch(lm, parent, 3, Edits(remask=(pos,)), seed)
    assert branch.branch == expect.branch and seed == parent.settings["seed"] + 1
    assert branch.final == expect.final and branch.branch["from_step"] == 3 and branch.branch["remasked"] == [pos]
