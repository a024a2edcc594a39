"""A department under load: students answering one poll through the balancer of deploy/department.py
(PostgreSQL, N replicas, HAProxy), one replica killed mid-run; and one replica alone, pinned to one core,
for how many students one core serves.

    PYTHONPATH=. .venv/bin/python bench/department_load.py [--students 90] [--replicas 3] [--think 2 6]
        [--kill-at 0.4] [--single 15,30,45,60] [--timeout 900]

Every student is a websocket client speaking Streamlit's protocol (bench/class_load.Session) through the
balancer, as a phone's browser tab would: it first gets its replica's cookie (DLM_REPLICA) with its
websocket, sends it on every reconnect, answers the poll fragment's auto-reruns every 3 s while it reads
(a refresh), and hands over its own voter token (what the page's JavaScript keeps in localStorage). At a
human pace (--think seconds between actions) each student opens the join link, answers, opens Reverse and
steps it, comes back to the poll and checks that its answer is shown; one in five then changes its answer.
Students arrive over the first 20 s. At --kill-at of the run (a fraction of the students having answered)
the replica serving the most students is killed with SIGKILL: its students' websockets close, and each
reconnects through the balancer (to another replica: a new session), reruns its page and goes on. A
teacher session on another replica watches the live tally (every 1.5 s) all along.

Checked: every student's answer is in the teacher's tally (read off the teacher's page, and in the
database), no student sees an error, every student of the killed replica reconnected, and which replica
served each student before and after. Printed: p50 / p95 / max per action (the time from the message to
the end of the script run it starts), and the reconnection times.

--single: the same students (no kill) against one replica alone, pinned to one core with taskset, for each
count in the list: the p95 of every action, and the largest count whose p95 stays within 0.5 s.

Bounded: at most 150 students; a deadline per action (bench/class_load.ACTION_TIMEOUT) and one for each run
(--timeout); everything on 127.0.0.1, started here and stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT / "deploy")]
from class_load import Session, Stats, pct  # noqa: E402
from department import Department  # noqa: E402
from serving import free_port  # noqa: E402

CHOICES = ["masked", "uniform", "gaussian"]
QUESTION = "never-changes"
MAX_STUDENTS = 150
POLL_REFRESH_S = 3.0  # pages/poll_ui.STUDENT_EVERY_S
TEACHER_REFRESH_S = 1.5
BAR = re.compile(r"<b>([^<]+)</b>: (\d+) \(")


class Student(Session):
    """A browser tab behind the balancer: its cookie, its replica, reconnection when its websocket closes."""

    def __init__(self, base: str, index: int, stats: Stats):
        super().__init__(base, index, stats, set())
        self.voter = f"bench-voter-{index:04d}-{os.getpid()}"
        self.cookie = ""
        self.replicas: list[str] = []  # the replica of each connection, in order
        self.closed = asyncio.Event()
        self.reconnect_s: list[float] = []

    async def connect(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        url = self.base.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = await connect(url, subprotocols=[Subprotocol("streamlit")], max_size=None, compression=None,
                                ping_interval=None, open_timeout=60,
                                additional_headers={"Cookie": self.cookie} if self.cookie else None)
        headers = self.ws.response.headers
        for c in headers.get_all("set-cookie"):
            if c.startswith("DLM_REPLICA="):
                self.cookie = c.split(";", 1)[0]
        self.replicas.append(headers.get("x-dlm-replica", "?"))
        self.closed.clear()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                self._handle(raw)
        except Exception:  # noqa: BLE001 - a closed connection: the replica went away
            pass
        finally:
            self.closed.set()
            self.finished.set()  # wake an action waiting for its run to end

    async def run(self, action, page=None, **kw):
        if page is not None:  # another page: its live fragments are not this one's (a browser stops them)
            self.auto = {}
        return await super().run(action, page=page, **kw)

    def expect(self, what: str, ok: bool) -> None:
        if not ok:
            self.stats.errors.append(f"student {self.index} on /{self.page} (replicas {self.replicas}): expected "
                                     f"{what}; the page says: {self.texts()[-240:]!r}")

    def voter_state(self):
        import json

        from streamlit.proto.WidgetStates_pb2 import WidgetState

        ids = [e.id for et, e in self.elements if et == "bidi_component" and "poll_voter_component" in e.id]
        return [WidgetState(id=ids[-1], json_value=json.dumps({"voter": self.voter}))] if ids else []

    async def act(self, action: str, **kw) -> None:
        """One action, timed; where the websocket closed, reconnect (through the balancer), rerun the page as
        the browser does, and do the action again."""
        for _ in range(3):
            if self.closed.is_set():
                await self.recover()
            t0 = time.perf_counter()
            try:
                await self.run(None, **kw)
                ok = not self.closed.is_set()
            except Exception:  # noqa: BLE001 - closed while sending (before the reader noticed it)
                ok = False
            if ok:
                self.stats.add(action, time.perf_counter() - t0)
                return
            self.closed.set()
        self.stats.errors.append(f"student {self.index}: {action} failed three times")

    async def recover(self) -> None:
        t0 = time.perf_counter()
        for _ in range(60):
            try:
                await self.close()
                await self.connect()
                states = list(self.states.values())
                await self.run(None, states=states)
                if not self.closed.is_set():  # its widget states (the voter token too) went with the rerun
                    self.reconnect_s.append(time.perf_counter() - t0)
                    self.stats.add("reconnect (new session, page drawn again)", time.perf_counter() - t0)
                    return
            except Exception:  # noqa: BLE001 - the balancer has not yet taken the replica out
                await asyncio.sleep(0.5)
        self.stats.errors.append(f"student {self.index}: could not reconnect")

    async def read(self, rng: random.Random, think: tuple[float, float]) -> None:
        """A pause at a human pace; the page's live fragment refreshes meanwhile, as in a browser."""
        left = rng.uniform(*think)
        while left > 0:
            fragment = next(iter(self.auto), None)
            step = min(left, self.auto.get(fragment, left)) if fragment else left
            await asyncio.sleep(step)
            left -= step
            if fragment and left > 0 and fragment in self.auto:
                await self.act("poll refresh (every 3 s)", fragment=fragment)


async def student_script(s: Student, rng: random.Random, code: str, think, answered: dict, progress,
                         arrive_s: float = 20) -> None:
    await asyncio.sleep(rng.uniform(0, arrive_s))  # a class does not arrive in the same second
    await s.connect()
    await s.act("open the join link", page="poll", query=f"room={code}")
    await s.act("join (voter token handed over)", states=s.voter_state())
    tag = f"{code}_{QUESTION}"
    s.expect("the question and its choices", f"poll_pick_{tag}" in s.widgets)
    await s.read(rng, think)
    if not any(et == "radio" for et, _ in s.elements):  # a page drawn before the token arrived: as a browser
        await s.act("join (voter token handed over)", states=s.voter_state())
    choice = CHOICES[s.index % 3]
    await s.act("pick an answer", states=[s.string(f"poll_pick_{tag}", choice)])
    await s.act("send the answer", click=f"poll_send_{tag}")
    s.expect(f"its answer {choice} confirmed", f"Your answer: **{choice}**" in s.texts())
    answered[s.index] = choice
    progress()
    await s.read(rng, think)
    await s.act("open reverse", page="reverse", query=f"seed={s.seed}&steps=12")
    await s.read(rng, think)
    await s.act("step reverse", states=[s.stage_step(5)])
    s.expect("the views at step 5", "predicts at step 5" in s.texts())
    await s.read(rng, think)
    await s.act("back to the poll", page="poll", query=f"room={code}")
    if "Your answer:" not in s.texts():
        await s.act("join (voter token handed over)", states=s.voter_state())
    s.expect(f"its answer {choice} still there", f"Your answer: **{choice}**" in s.texts())
    if s.index % 5 == 0:
        await s.read(rng, think)
        for _ in range(3):  # a click lost with a replica (a new session) is clicked again, as a student would
            await s.act("change the answer", click=f"poll_change_{tag}")
            if any(et == "radio" for et, _ in s.elements):
                break
        await s.act("pick an answer", states=[s.string(f"poll_pick_{tag}", "gaussian")])
        await s.act("send the answer", click=f"poll_send_{tag}")
        s.expect("the changed answer confirmed", "Your answer: **gaussian**" in s.texts())
        answered[s.index] = "gaussian"
    await s.read(rng, think)
    s.expect("an answer shown at the end", f"Your answer: **{answered[s.index]}**" in s.texts())


def tally_on_page(s: Session) -> dict[str, int]:
    return {c: int(n) for c, n in BAR.findall(s.texts())}


async def teacher_script(t: Student, code: str, host: str, stop: asyncio.Event) -> None:
    await t.connect()
    await t.act("teacher opens the room", page="poll", query=f"room={code}&host={host}")
    while not stop.is_set():
        await asyncio.sleep(TEACHER_REFRESH_S)
        fragment = next(iter(t.auto), None)
        if fragment:
            await t.act("teacher's tally refresh (every 1.5 s)", fragment=fragment)


async def run_class(base: str, n: int, think, code: str, host: str, kill=None, seed: int = 0,
                    timeout: float = 900, arrive_s: float = 20) -> dict:
    """n students and a teacher through `base`; `kill(students)` is called once at the kill point."""
    stats = Stats()
    rng = random.Random(seed)
    answered: dict[int, str] = {}
    students = [Student(base, i, stats) for i in range(n)]
    killed = {}
    kill_at = kill[0] if kill else None

    def progress():
        if kill and not killed and len(answered) >= kill_at * n:
            killed.update(kill[1](students))

    teacher = Student(base, 10_000, stats)
    stop = asyncio.Event()
    watching = asyncio.create_task(teacher_script(teacher, code, host, stop))
    t0 = time.monotonic()
    results = await asyncio.wait_for(asyncio.gather(
        *[student_script(s, random.Random(rng.random()), code, think, answered, progress, arrive_s)
          for s in students],
        return_exceptions=True), timeout)
    for i, r in enumerate(results):
        if isinstance(r, BaseException):
            stats.errors.append(f"student {i}: {type(r).__name__}: {r}")
    await asyncio.sleep(TEACHER_REFRESH_S * 2)  # the teacher's view catches up with the last answers
    stop.set()
    await watching
    if teacher.closed.is_set():
        await teacher.recover()
    await teacher.act("teacher's tally refresh (every 1.5 s)", fragment=next(iter(teacher.auto), ""))
    on_page = tally_on_page(teacher)
    wall = time.monotonic() - t0
    for s in [*students, teacher]:
        await s.close()
    expected = Counter(answered.values())
    return {"stats": stats, "students": students, "teacher": teacher, "answered": answered, "killed": killed,
            "expected": {c: expected.get(c, 0) for c in CHOICES}, "on_page": on_page, "wall": wall}


def print_times(stats: Stats, title: str) -> None:
    print(f"\n{title}")
    print(f"  {'action':<44}{'n':>6}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for action, v in sorted(stats.times.items()):
        print(f"  {action:<44}{len(v):>6}{pct(v, .5):>9.3f}{pct(v, .95):>9.3f}{max(v):>9.3f}")


def all_times(stats: Stats) -> list[float]:
    return [t for a, v in stats.times.items() if not a.startswith("reconnect") for t in v]


def open_room(url: str) -> tuple[str, str]:
    from dlm_core.classroom import poll
    from dlm_core.classroom.questions import QUESTIONS

    store = poll.SQLPollStore(url)
    q = QUESTIONS[QUESTION]
    host = poll.new_host_key()
    code = store.open_room(q.id, q.prompt, list(q.choices), host_key=host)
    store.close()
    return code, host


def db_tally(url: str, code: str) -> dict[str, int]:
    from dlm_core.classroom import poll

    store = poll.SQLPollStore(url)
    try:
        return store.tally(code, QUESTION)
    finally:
        store.close()


def department_run(a) -> int:
    folder = tempfile.mkdtemp(prefix="dlm-department-bench-")
    port = free_port()
    dept = Department(folder, port, a.replicas, durable=False, pg_port=free_port(),
                      replica_ports=[free_port() for _ in range(a.replicas)], stats_port=free_port(),
                      extra_args=("--server.disconnectedSessionTTL", "10"))
    print(f"starting PostgreSQL, {a.replicas} replicas and HAProxy on 127.0.0.1 (logs: {dept.logs}) ...", flush=True)
    t0 = time.monotonic()
    with dept:
        print(f"  up in {time.monotonic() - t0:.0f} s", flush=True)
        code, host = open_room(dept.pg.url)
        kill_info = {}

        def kill(students):
            on = Counter(s.replicas[-1] for s in students if s.replicas and not s.closed.is_set())
            victim = on.most_common(1)[0][0]
            kill_info["t"] = time.monotonic()
            dept.kill(victim)
            print(f"  killed replica {victim} ({on[victim]} students on it) after "
                  f"{time.monotonic() - t0:.0f} s", flush=True)
            return {"victim": victim, "students": {s.index for s in students if s.replicas[-1:] == [victim]}}

        r = asyncio.run(run_class(dept.url, a.students, tuple(a.think), code, host,
                                  kill=(a.kill_at, kill) if a.kill_at > 0 else None, timeout=a.timeout,
                                  arrive_s=a.arrive))
        stored = db_tally(dept.pg.url, code)
        taken_out = dept.states()
        died = [x.name for x in dept.replicas if x.proc.poll() is not None and x.name != r["killed"].get("victim")]
        if died:
            print(f"replicas that exited without being killed here: {died} (see {dept.logs})")
    return report_department(a, r, stored, taken_out)


def report_department(a, r: dict, stored: dict, states: dict) -> int:
    stats, students = r["stats"], r["students"]
    print_times(stats, f"{a.students} students over {a.replicas} replicas, think {a.think[0]:g}-{a.think[1]:g} s "
                       f"(wall {r['wall']:.0f} s)")
    first = Counter(s.replicas[0] for s in students if s.replicas)
    last = Counter(s.replicas[-1] for s in students if s.replicas)
    print(f"\nreplica of each student's first connection: {dict(sorted(first.items()))}; "
          f"of its last: {dict(sorted(last.items()))}; the teacher's: {r['teacher'].replicas}")
    killed = r["killed"]
    ok = True
    if killed:
        victims = killed["students"]
        moved = [s for s in students if s.index in victims]
        reconnected = [s for s in moved if s.reconnect_s and s.replicas[-1] != killed["victim"]]
        rs = [x for s in moved for x in s.reconnect_s]
        print(f"killed {killed['victim']}: {len(moved)} students on it, {len(reconnected)} reconnected to another "
              f"replica (reconnect p50 {pct(rs, .5):.2f} s, max {max(rs) if rs else float('nan'):.2f} s); "
              f"the balancer now sees {states}")
        ok &= len(reconnected) == len(moved) and len(moved) > 0
    print(f"\nanswers: {len(r['answered'])} of {a.students} students; expected tally {r['expected']}")
    print(f"the teacher's page shows {r['on_page']}; the database holds {stored}")
    ok &= r["on_page"] == r["expected"] == stored and len(r["answered"]) == a.students
    if stats.errors:
        print(f"\n{len(stats.errors)} errors, the first: " + "\n  ".join(stats.errors[:10]))
    ok &= not stats.errors
    print(f"\n{'PASS' if ok else 'FAIL'}: no answer lost, every student reconnected, the tally complete and right")
    return 0 if ok else 1


def single_run(a) -> int:
    counts = [int(x) for x in a.single.split(",")]
    cpu = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpus = cpu[-1], set(cpu[:-1]) or {cpu[0]}
    os.sched_setaffinity(0, client_cpus)  # the clients on the other core(s)
    folder = tempfile.mkdtemp(prefix="dlm-single-bench-")
    port = free_port()
    print(f"one replica pinned to CPU {server_cpu} (taskset), the clients on {sorted(client_cpus)}", flush=True)
    rows = []
    for n in counts:
        dept = Department(folder, port, 1, durable=False, pg_port=free_port(), replica_ports=[free_port()],
                          stats_port=free_port(), extra_args=("--server.disconnectedSessionTTL", "10"),
                          taskset=str(server_cpu))
        with dept:
            code, host = open_room(dept.pg.url)
            r = asyncio.run(run_class(dept.url, n, tuple(a.think), code, host, timeout=a.timeout))
            stored = db_tally(dept.pg.url, code)
        v = all_times(r["stats"])
        rows.append((n, pct(v, .5), pct(v, .95), max(v), len(r["stats"].errors), r["on_page"] == stored ==
                     r["expected"]))
        print_times(r["stats"], f"{n} students on one replica, one core")
    print(f"\n{'students':>9}{'p50 s':>9}{'p95 s':>9}{'max s':>9}{'errors':>8}  tally right")
    for n, p50, p95, mx, errs, right in rows:
        print(f"{n:>9}{p50:>9.3f}{p95:>9.3f}{mx:>9.3f}{errs:>8}  {right}")
    fits = [n for n, _, p95, _, errs, _ in rows if p95 <= 0.5 and not errs]
    if fits:
        per_core = max(fits)
        print(f"\none core serves at least {per_core} students at p95 <= 0.5 s (of the counts tried); a department "
              f"of 300 needs about {math.ceil(300 / per_core)} replicas, one core each, plus PostgreSQL and the "
              "balancer (a core between them)")
    else:
        print("\nno count tried stays within p95 <= 0.5 s on one core")
    return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--students", type=int, default=90)
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--think", type=float, nargs=2, default=[2.0, 6.0])
    ap.add_argument("--kill-at", type=float, default=0.4, help="kill a replica once this share has answered (0: no)")
    ap.add_argument("--single", default="", help="counts of students for one replica on one core, e.g. 15,30,45")
    ap.add_argument("--arrive", type=float, default=20, help="students arrive over this many seconds")
    ap.add_argument("--timeout", type=float, default=900)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stopped: still stop what it started
    if not 1 <= a.students <= MAX_STUDENTS:
        sys.exit(f"error: --students is 1 to {MAX_STUDENTS}")
    sys.exit(single_run(a) if a.single else department_run(a))


if __name__ == "__main__":
    main()
