"""One server-wide queue for the heavy work (trainings, real-model generations); no Streamlit.

A class shares one small machine: thirty students pressing "Start training" must not start thirty
trainings on two cores. Every heavy job goes through one `JobQueue`, first in first out, run by a
small, fixed number of worker threads (`DLM_WORKERS`, default `max(1, cores // 2)`), so the rest
of the server (everyone scrubbing, stepping, answering) keeps the other cores. A worker thread can
hand its job's computation to a Python process of its own (`Job.run_in_process`, `WorkerProcess`):
the trainings and the small models' generations run there, so their thousands of small operations
do not hold the server's interpreter lock, which every session's script run needs.

A job is a function `fn(job)` submitted with its kind ("train", "generate"), its owner (the
session that asked; None: nobody to watch) and its cost (steps, tokens x steps: whatever its
duration is proportional to). While it waits, `job.place()` says where it stands in the line and
`job.estimate()` when it should start and finish, from the seconds per unit of cost of the
recent jobs of its kind (`hint_s` until there are any).

Cancellation is cooperative: `job.cancel()` takes a waiting job out of the line at once; a running
one sees `job.cancelled` become true and stops at its next check (`job.check()` raises
`Cancelled`: the sampler's on_step callback and the training callback call it every step). A
job whose owner has gone is cancelled by the queue's watchdog: every `watch_every` seconds it asks
`owner_alive(owner)` (the pages install one that asks Streamlit's runtime whether the session is
still connected; None means "cannot tell", and the job is kept) and cancels the jobs of an owner
missing for `grace_s` seconds in a row (a reconnecting browser comes back within that).

An exception in a job is kept on the job (`job.error`, `job.traceback`, state "failed") and
logged, never lost. Finished jobs are not kept by the queue: only their durations are, in a short
history per kind, so memory stays flat however long the class.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from statistics import median
from typing import Any

from dlm_core.serving.worker_process import Cancelled, WorkerError, WorkerProcess

LOG = logging.getLogger(__name__)

WAITING, RUNNING, DONE, FAILED, CANCELLED = "waiting", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


def default_workers() -> int:
    """`DLM_WORKERS` if set (at least 1), else half the machine's cores (at least 1)."""
    raw = os.environ.get("DLM_WORKERS", "").strip()
    if raw:
        try:
            return max(1, int(raw))
        except ValueError:
            LOG.warning("DLM_WORKERS=%r is not a number; using the default", raw)
    return max(1, (os.cpu_count() or 2) // 2)


class Job:
    """One unit of heavy work in a `JobQueue`. Made by `JobQueue.submit`."""

    def __init__(self, queue: JobQueue, fn: Callable[[Job], Any], kind: str, owner: str | None, cost: float,
                 label: str, hint_s: float | None):
        self.id = next(queue._ids)
        self.queue = queue
        self.fn = fn
        self.kind = kind
        self.owner = owner
        self.cost = max(float(cost), 1e-9)
        self.label = label
        self.hint_s = hint_s  # a guess of the run time before the queue has measured any job of this kind
        self.state = WAITING
        self.result: Any = None
        self.error: str | None = None
        self.exception: BaseException | None = None
        self.traceback: str | None = None
        self.cancel_reason: str | None = None
        self.progress: Any = None  # what the job reports while it runs (set by fn), for its page to show
        self.submitted_at = time.monotonic()
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()

    # --------------------------------------------------------------- state
    @property
    def cancelled(self) -> bool:
        """Whether cancellation was asked for (a running job stops at its next check)."""
        return self._cancel.is_set()

    @property
    def waiting(self) -> bool:
        return self.state == WAITING

    @property
    def running(self) -> bool:
        return self.state == RUNNING

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def check(self) -> None:
        """Raise `Cancelled` if the job has been cancelled: call it at every step of the work."""
        if self._cancel.is_set():
            raise Cancelled(self.cancel_reason or "cancelled")

    def cancel(self, reason: str = "stopped") -> bool:
        """Cancel: a waiting job leaves the line now; a running one stops at its next check.
        Returns False when the job had already finished."""
        return self.queue._cancel(self, reason)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (True) or `timeout` seconds have passed (False)."""
        return self._done.wait(timeout)

    def run_in_process(self, target: str, kwargs: dict, on_message: Callable[[Any], None] | None = None) -> Any:
        """Run `target` ("module:function") in this worker's own Python process (`WorkerProcess`) and return
        what it returns; its messages go to `on_message` as they come, and a cancel reaches it at once. Only
        from inside the job's fn."""
        process = self.queue._worker_process()
        return process.call(target, kwargs, cancelled=lambda: self.cancelled, on_message=on_message)

    # ------------------------------------------------------ where it stands
    def place(self) -> int | None:
        """1 for the next job to start, 2 for the one after ...; 0 while running; None once finished."""
        return self.queue.place(self)

    def estimate(self) -> tuple[float | None, float | None]:
        """(seconds until it starts, seconds until it finishes) from now; None where unknown."""
        return self.queue.estimate(self)

    def elapsed(self) -> float:
        """Seconds it has run (0 while waiting)."""
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.monotonic()) - self.started_at

    def __repr__(self) -> str:
        return f"Job({self.id}, {self.kind}, {self.state}, owner={self.owner!r})"


class JobQueue:
    """First in, first out, `workers` jobs at a time, each in a worker thread of this process."""

    def __init__(self, workers: int | None = None, owner_alive: Callable[[str], bool | None] | None = None,
                 watch_every: float = 1.0, grace_s: float = 3.0, history: int = 20):
        self.workers = max(1, int(workers if workers is not None else default_workers()))
        self.owner_alive = owner_alive
        self.watch_every = watch_every
        self.grace_s = grace_s
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._waiting: deque[Job] = deque()
        self._running: set[Job] = set()
        self._rates: dict[str, deque[float]] = {}  # kind -> recent seconds per unit of cost
        self._history = history
        self._missing_since: dict[str, float] = {}  # owner -> when the watchdog first missed it
        self._threads: list[threading.Thread] = []
        self._watchdog: threading.Thread | None = None
        self._closed = False
        self._local = threading.local()  # each worker thread's own WorkerProcess, made on first use
        self._processes: list[WorkerProcess] = []
        self.counts = {DONE: 0, FAILED: 0, CANCELLED: 0}

    # ------------------------------------------------------------- submit
    def submit(self, fn: Callable[[Job], Any], kind: str = "job", owner: str | None = None, cost: float = 1.0,
               label: str = "", hint_s: float | None = None) -> Job:
        """Queue `fn(job)`; its return value becomes `job.result`. Returns the Job at once."""
        job = Job(self, fn, kind, owner, cost, label, hint_s)
        with self._cond:
            if self._closed:
                raise RuntimeError("the job queue has been shut down")
            self._waiting.append(job)
            self._start_threads()
            self._cond.notify()
        return job

    def set_owner_check(self, owner_alive: Callable[[str], bool | None] | None) -> None:
        """Install the function the watchdog asks whether an owner is still there."""
        with self._cond:
            self.owner_alive = owner_alive
            self._start_threads()

    def _start_threads(self) -> None:  # holds self._cond
        while len(self._threads) < self.workers:
            t = threading.Thread(target=self._work, daemon=True, name=f"dlm-worker-{len(self._threads) + 1}")
            self._threads.append(t)
            t.start()
        if self._watchdog is None and self.owner_alive is not None:
            self._watchdog = threading.Thread(target=self._watch, daemon=True, name="dlm-job-watchdog")
            self._watchdog.start()

    # -------------------------------------------------------------- workers
    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                job.state = RUNNING
                job.started_at = time.monotonic()
                self._running.add(job)
            self._run(job)
            del job  # an idle worker holds no finished job (nor its result)

    def _run(self, job: Job) -> None:
        try:
            job.check()  # cancelled between leaving the line and starting
            result = job.fn(job)
        except Cancelled:
            state = CANCELLED
        except BaseException as e:  # noqa: BLE001 - kept on the job and logged, never lost
            state = FAILED
            job.exception = e
            job.error = str(e) if isinstance(e, WorkerError) else f"{type(e).__name__}: {e}"
            job.traceback = traceback.format_exc()
            if not isinstance(e, ValueError):  # a ValueError is a user's setting: said on the page, not logged
                LOG.error("job %s (%s) failed:\n%s", job.id, job.kind, job.traceback)
        else:
            state = DONE
            job.result = result
        with self._cond:
            job.finished_at = time.monotonic()
            job.state = state
            self._running.discard(job)
            self.counts[state] += 1
            if state == DONE and not job.cancelled:  # a stopped job's time says nothing about a whole one
                rates = self._rates.setdefault(job.kind, deque(maxlen=self._history))
                rates.append((job.finished_at - job.started_at) / job.cost)
            job.fn = None  # drop the closure (it may hold a page's objects)
        job._done.set()

    # --------------------------------------------------------------- cancel
    def _cancel(self, job: Job, reason: str) -> bool:
        with self._cond:
            if job.finished:
                return False
            if not job._cancel.is_set():
                job.cancel_reason = reason
                job._cancel.set()
            if job.state == WAITING:
                try:
                    self._waiting.remove(job)
                except ValueError:  # a worker took it meanwhile: it stops at its first check
                    return True
                job.state = CANCELLED
                job.finished_at = time.monotonic()
                job.fn = None
                self.counts[CANCELLED] += 1
                job._done.set()
        return True

    def cancel_owner(self, owner: str, reason: str = "its session has gone") -> int:
        """Cancel every unfinished job of one owner; returns how many."""
        with self._cond:
            jobs = [j for j in (*self._waiting, *self._running) if j.owner == owner]
        return sum(self._cancel(j, reason) for j in jobs)

    def _watch(self) -> None:
        while not self._closed:
            time.sleep(self.watch_every)
            try:
                self.check_owners()
            except Exception:  # noqa: BLE001 - the watchdog must keep watching
                LOG.exception("job watchdog")

    def check_owners(self, now: float | None = None) -> int:
        """One round of the watchdog: cancel the jobs of owners missing for grace_s. Returns how many."""
        check = self.owner_alive
        if check is None:
            return 0
        now = time.monotonic() if now is None else now
        with self._cond:
            owners = {j.owner for j in (*self._waiting, *self._running) if j.owner is not None}
        cancelled = 0
        for owner in owners:
            alive = check(owner)
            if alive is False:
                first = self._missing_since.setdefault(owner, now)
                if now - first >= self.grace_s:
                    cancelled += self.cancel_owner(owner)
            else:
                self._missing_since.pop(owner, None)
        for owner in list(self._missing_since):
            if owner not in owners:
                del self._missing_since[owner]
        return cancelled

    # --------------------------------------------------- place and estimate
    def place(self, job: Job) -> int | None:
        with self._cond:
            if job.state == RUNNING:
                return 0
            if job.state != WAITING:
                return None
            for i, j in enumerate(self._waiting):
                if j is job:
                    return i + 1
        return None

    def run_estimate(self, kind: str, cost: float, hint_s: float | None = None) -> float | None:
        """Seconds a job of this kind and cost should run: the median recent rate x cost, else hint_s."""
        rates = self._rates.get(kind)
        if rates:
            return median(rates) * cost
        return hint_s

    def estimate(self, job: Job) -> tuple[float | None, float | None]:
        """(seconds until `job` starts, seconds until it finishes), simulating the line on the workers."""
        with self._cond:
            if job.finished:
                return 0.0, 0.0
            now = time.monotonic()
            own = self.run_estimate(job.kind, job.cost, job.hint_s)
            if job.state == RUNNING:
                left = None if own is None else max(0.0, own - (now - job.started_at))
                return 0.0, left
            free = []  # when each worker is next free
            for r in self._running:
                est = self.run_estimate(r.kind, r.cost, r.hint_s)
                if est is None:
                    return None, None
                free.append(max(0.0, est - (now - r.started_at)))
            free += [0.0] * (self.workers - len(free))
            for j in self._waiting:
                if j is job:
                    break
                est = self.run_estimate(j.kind, j.cost, j.hint_s)
                if est is None:
                    return None, None
                free.sort()
                free[0] += est
            start = min(free)
            return start, None if own is None else start + own

    def stats(self) -> dict:
        """What the queue holds now, for pages and benchmarks."""
        with self._cond:
            return {"workers": self.workers, "waiting": len(self._waiting), "running": len(self._running),
                    **self.counts}

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing waits or runs (True) or `timeout` seconds have passed (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._cond:
                if not self._waiting and not self._running:
                    return True
            time.sleep(0.05)
        return False

    def _worker_process(self) -> WorkerProcess:
        process = getattr(self._local, "process", None)
        if process is None or not process.alive():
            process = self._local.process = WorkerProcess()
            with self._cond:
                self._processes = [p for p in self._processes if p.alive()] + [process]
        return process

    def shutdown(self, cancel: bool = True) -> None:
        """Stop the workers (after cancelling every job, unless cancel=False) and their processes. For tests."""
        with self._cond:
            jobs = list(self._waiting) + list(self._running)
        if cancel:
            for j in jobs:
                j.cancel("the queue was shut down")
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            processes, self._processes = self._processes, []
        for p in processes:
            p.close()


_QUEUE: JobQueue | None = None
_QUEUE_LOCK = threading.Lock()


def default_queue() -> JobQueue:
    """The one queue of this server process (made on first use, `DLM_WORKERS` workers)."""
    global _QUEUE
    with _QUEUE_LOCK:
        if _QUEUE is None:
            _QUEUE = JobQueue()
        return _QUEUE


def describe_wait(job: Job) -> str:
    """A plain sentence: where a job stands, and roughly when it starts and ends."""
    place = job.place()
    if place is None:
        return ""
    start, end = job.estimate()
    if place == 0:
        return "Running" + ("" if end is None else f", about {_dur(end)} left") + "."
    ahead = "next in line" if place == 1 else f"number {place} in line ({place - 1} ahead of you)"
    if start is None:
        when = "Estimating how long the jobs ahead take."
    else:
        when = f"Starts in about {_dur(start)}" + ("." if end is None else f", done in about {_dur(end)}.")
    n = job.queue.workers
    return (f"Waiting: {ahead}. This server runs {n} training{'s' if n != 1 else ''} or generation"
            f"{'s' if n != 1 else ''} at a time, for everyone. {when}")


def _dur(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{max(s, 1)} s"
    return f"{s // 60} min {s % 60:02d} s"
