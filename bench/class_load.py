"""A class under load: N students' sessions against a server started here on 127.0.0.1, spoken to through
Streamlit's own websocket protocol (no browser per student).

    PYTHONPATH=. .venv/bin/python bench/class_load.py [--sessions 30] [--scenario both|class|train]
        [--think 2 6] [--generate-every 3] [--rounds 1] [--train-steps 50] [--steppers 5] [--workers N]
        [--timeout 1200]

The client is what a browser tab says to the server and nothing more: it connects to /_stcore/stream,
sends BackMsg.rerun_script with the page, the query string and the widget states (the stage's step is its
component state {"step": k}, as the player reports it when paused; a button press is a trigger value),
answers the server's auto_rerun messages as a browser does (a fragment with run_every: the Train page's live
view), and times each action from its BackMsg to the script_finished that ends it. The JavaScript of the
page never runs, so the player's own drawing is not measured (bench/player_browser.py measures it).

Scenario "class": every student, at a human pace (a pause of 2 to 6 s between actions, --think: reading the
text, watching the stage play in the browser, which asks the server nothing), opens Home, the Reverse page
with a seed of their own, steps the stage, changes the strategy, steps again, opens Forward and steps it,
opens Compare, shows its same-seed section and sets its seed, opens a lesson and answers its question (pick,
reveal), and one in three (--generate-every) opens the Real page and generates 16 tokens in 8 steps with a
prompt of their own; then back to Reverse for one more step. `--think 0.3 1.5` makes it a stress test (every
student clicking about once a second). Scenario "train": every student presses "Start training" at once (the
server's one queue takes them in turn) and follows the live view until it says Done, while --steppers other
students step the Reverse stage once a second: the Reverse step time under that load, and whether and when the
queue drains.

Checked on every message: each session uses its own seed (and its own word in its prompt) and no session
may ever receive another session's (the bytes of every ForwardMsg are searched). Errors: any exception
element, error alert, script that did not finish, or expectation not met. Printed: p50 / p95 / max per
action, the server's RSS and CPU over time (from /proc), and last the ratios to the issue's targets.
RSS "after the run" is measured once the run's sessions have closed and expired: the bench serves with
--server.disconnectedSessionTTL 5 (--session-ttl) so that takes seconds; a class server keeps a closed
tab's session 120 s (Streamlit's default) in case the tab reconnects, then frees it the same way.

Bounded: at most 60 sessions, a deadline per action and one for the whole run (--timeout); it starts its
own server on a free port of 127.0.0.1, talks only to it, and stops it at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from serving import free_port, serve, stop  # noqa: E402

MAX_SESSIONS = 60
SEED0 = 424200  # session i's seed: SEED0 + i, its marker in everything it gets back
MARKER = re.compile(rb"(?:seed[ =:]|seed%3D|kestrel)(4242\d\d)")
ACTION_TIMEOUT = 180.0
GENERATING = {"generate"}  # the actions the 0.5 s target does not apply to (they do heavy work by design)
QUEUE_WAITING = {"start training", "train tick"}  # these only show a place in the line or the live curve


def start_server(port: int, log_path: Path, workers: int | None, session_ttl: int) -> subprocess.Popen:
    env = {"DLM_DATA_DIR": str(log_path.parent), **({"DLM_WORKERS": str(workers)} if workers else {})}
    return serve(port, "--server.disconnectedSessionTTL", str(session_ttl), env=env, log_path=log_path)


# ------------------------------------------------------------------------ server RSS and CPU


def proc_sample(pid: int) -> tuple[float, float]:
    """(RSS in MB, CPU seconds so far) of a process, from /proc."""
    try:
        rss_kb = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                      if line.startswith("VmRSS:"))
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return rss_kb / 1024, (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return float("nan"), float("nan")


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (the job queue's worker processes), from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            pass
    return out


class Monitor:
    """Samples the server's RSS and CPU once a second (its worker processes' apart), with a label for the
    phase."""

    def __init__(self, pid: int):
        self.pid = pid
        # (t, phase, server RSS MB, server CPU %, workers' RSS MB, workers' CPU %); CPU in % of one core
        self.samples: list[tuple[float, str, float, float, float, float]] = []
        self.phase = "start"
        self._t0 = time.monotonic()

    def _workers(self) -> tuple[float, float]:
        vals = [proc_sample(p) for p in children(self.pid)]
        return sum(v[0] for v in vals), sum(v[1] for v in vals)

    async def run(self) -> None:
        last_t, last_cpu, last_wcpu = time.monotonic(), proc_sample(self.pid)[1], self._workers()[1]
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            rss, cpu = proc_sample(self.pid)
            wrss, wcpu = self._workers()
            dt = now - last_t
            self.samples.append((now - self._t0, self.phase, rss, 100 * (cpu - last_cpu) / dt, wrss,
                                 max(0.0, 100 * (wcpu - last_wcpu) / dt)))
            last_t, last_cpu, last_wcpu = now, cpu, wcpu

    def rss(self) -> float:
        return proc_sample(self.pid)[0]

    def worker_rss(self) -> float:
        return self._workers()[0]

    def report(self) -> None:
        print("\nserver RSS and CPU over time (every 5 s; CPU in % of one core, 200 % = both cores; the job "
              "queue's worker processes apart):")
        for t, phase, rss, cpu, wrss, wcpu in self.samples[4::5]:
            print(f"  {t:6.0f} s  {phase:<22} server RSS {rss:6.0f} MB CPU {cpu:4.0f} %   workers RSS {wrss:5.0f} MB "
                  f"CPU {wcpu:4.0f} %")
        by_phase = defaultdict(list)
        for _, phase, rss, cpu, wrss, wcpu in self.samples:
            by_phase[phase].append((rss, cpu, wrss, wcpu))
        for phase, vals in by_phase.items():
            print(f"  {phase:<22} server peak RSS {max(v[0] for v in vals):6.0f} MB, mean CPU "
                  f"{statistics.mean(v[1] for v in vals):4.0f} %; workers peak RSS {max(v[2] for v in vals):5.0f} MB, "
                  f"mean CPU {statistics.mean(v[3] for v in vals):4.0f} %")


# ------------------------------------------------------------------------------ one session


class Stats:
    def __init__(self, cpu_of=None):
        self.times: dict[str, list[float]] = defaultdict(list)
        self.cpu: dict[str, list[float]] = defaultdict(list)  # server CPU s per action (one session alone)
        self.cpu_of = cpu_of  # a function returning the server's CPU seconds so far, when measured
        self.errors: list[str] = []
        self.leaks: list[str] = []

    def add(self, action: str, seconds: float) -> None:
        self.times[action].append(seconds)


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))] if v else float("nan")


class Session:
    """One student's browser tab, as far as the server can tell."""

    def __init__(self, base: str, index: int, stats: Stats, all_seeds: set[int]):
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self._ForwardMsg = ForwardMsg
        self.base = base
        self.index = index
        self.seed = SEED0 + index
        self.marker = f"kestrel{self.seed}"
        self.stats = stats
        self.others = all_seeds - {self.seed}
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.session_id = ""
        self.pages: dict[str, str] = {}
        self.page = ""
        self.query = ""
        self.states: dict[str, object] = {}  # widget id -> WidgetState this tab sends on every run of the page
        self.widgets: dict[str, tuple[str, str, object]] = {}  # user key or label -> (id, type, element)
        self.auto: dict[str, float] = {}  # fragment id -> seconds (auto_rerun)
        self.elements: list[tuple[str, object]] = []  # (type, element) drawn by the current run
        self.finished = asyncio.Event()
        self.status = None
        self.received = 0

    # ------------------------------------------------------------------ transport
    async def connect(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        url = self.base.replace("http://", "ws://") + "/_stcore/stream"
        self.ws = await connect(url, subprotocols=[Subprotocol("streamlit")], max_size=None, compression=None,
                                ping_interval=None, open_timeout=60)
        self.reader = asyncio.create_task(self._read())

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            try:
                await self.reader
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass

    async def _read(self) -> None:
        async for raw in self.ws:
            self._handle(raw)

    def _handle(self, raw: bytes) -> None:
        self.received += len(raw)
        for m in MARKER.finditer(raw):  # another session's seed or prompt word in what this one gets back
            other = int(m.group(1))
            if other in self.others:
                self.stats.leaks.append(f"session {self.index} (seed {self.seed}) received seed/marker {other}")
        msg = self._ForwardMsg.FromString(raw)
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            self.session_id = msg.new_session.initialize.session_id or self.session_id
        elif kind == "navigation":
            self.pages = {p.url_pathname: p.page_script_hash for p in msg.navigation.app_pages}
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            self.auto[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            for f in msg.stop_auto_rerun.fragment_ids:
                self.auto.pop(f, None)
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            el = msg.delta.new_element
            et = el.WhichOneof("type")
            e = getattr(el, et)
            self.elements.append((et, e))
            wid = getattr(e, "id", "")
            if isinstance(wid, str) and wid.startswith("$$ID-"):
                self.widgets[wid.split("-", 2)[2]] = (wid, et, e)
                if getattr(e, "label", ""):
                    self.widgets[e.label] = (wid, et, e)
            if et == "exception":
                self.stats.errors.append(f"session {self.index} on /{self.page}: exception {e.type}: "
                                         f"{e.message[:200]}")
            elif et == "alert" and e.format == 1:  # an st.error on the page
                self.stats.errors.append(f"session {self.index} on /{self.page}: error shown: {e.body[:200]}")
        elif kind == "script_finished":
            if msg.script_finished != 2:  # 2: stopped early for a rerun, which follows by itself
                self.status = msg.script_finished
                self.finished.set()

    # -------------------------------------------------------------------- actions
    def texts(self) -> str:
        out = []
        for et, e in self.elements:
            if et in ("markdown", "alert", "heading", "text"):
                out.append(e.body)
            elif et == "progress":
                out.append(e.text)
            elif et == "bidi_component":
                out.append(e.json or e.mixed.json)
        return "\n".join(out)

    def stage_id(self) -> str:
        ids = [e.id for et, e in self.elements if et == "bidi_component"]
        if not ids:
            raise AssertionError(f"no stage on /{self.page}")
        return ids[-1]

    def widget(self, key: str) -> tuple[str, str, object]:
        if key not in self.widgets:
            raise AssertionError(f"no widget {key!r} on /{self.page}")
        return self.widgets[key]

    async def run(self, action: str | None, page: str | None = None, query: str | None = None,
                  states: list | None = None, click: str | None = None, fragment: str | None = None) -> float:
        """One script run (a page opened, a widget changed, a button pressed, a fragment refreshed), timed
        from the BackMsg to the script_finished that ends it."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        if page is not None:  # another page: a browser sends that page's URL and drops the old widgets
            self.page, self.query, self.states, self.widgets = page, query or "", {}, {}
        for st in states or []:
            self.states[st.id] = st
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        cs.page_script_hash = self.pages.get(self.page, "")
        cs.page_name = self.page
        cs.context_info.url = f"{self.base}/{self.page}"
        cs.context_info.timezone = "UTC"
        cs.context_info.locale = "en-GB"
        cs.widget_states.widgets.extend(self.states.values())
        if click is not None:
            cs.widget_states.widgets.append(WidgetState(id=self.widget(click)[0], trigger_value=True))
        if fragment is not None:
            cs.fragment_id = fragment
            cs.is_auto_rerun = True
        else:
            self.elements = []
        self.finished.clear()
        cpu0 = self.stats.cpu_of() if self.stats.cpu_of else None
        t0 = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        try:
            await asyncio.wait_for(self.finished.wait(), ACTION_TIMEOUT)
        except TimeoutError:
            self.stats.errors.append(f"session {self.index}: {action or 'run'} on /{self.page} did not finish in "
                                     f"{ACTION_TIMEOUT:.0f} s")
            raise
        dt = time.perf_counter() - t0
        if self.status == 1:
            self.stats.errors.append(f"session {self.index}: {action} on /{self.page}: script compile error")
        if action:
            self.stats.add(action, dt)
            if cpu0 is not None:
                await asyncio.sleep(0.05)  # what the server still does for this run (sending, cleaning up)
                self.stats.cpu[action].append(self.stats.cpu_of() - cpu0)
        return dt

    def expect(self, what: str, ok: bool) -> None:
        if not ok:
            self.stats.errors.append(f"session {self.index} on /{self.page}: expected {what}")

    # ---------------------------------------------------------- widget states
    def number(self, key: str, value) -> object:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        wid, _, e = self.widget(key)
        return WidgetState(id=wid, int_value=int(value)) if e.data_type == 0 else \
            WidgetState(id=wid, double_value=float(value))

    def string(self, key: str, value: str) -> object:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        return WidgetState(id=self.widget(key)[0], string_value=value)

    def choice(self, key: str, value: str) -> object:
        """A segmented control / pills widget set to one option (its formatted label)."""
        from streamlit.proto.Common_pb2 import StringArray
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        return WidgetState(id=self.widget(key)[0], string_array_value=StringArray(data=[value]))

    def stage_step(self, k: int) -> object:
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        return WidgetState(id=self.stage_id(), json_value=json.dumps({"step": k}))


# ---------------------------------------------------------------------------- the scripts


async def class_script(s: Session, rng: random.Random, think: tuple[float, float], generate: bool) -> None:
    async def pause():
        await asyncio.sleep(rng.uniform(*think))

    await s.run("open home", page="")
    await pause()
    await s.run("open reverse", page="reverse", query=f"seed={s.seed}&steps=12")
    s.expect(f"its own seed on the stage (seed {s.seed})", f"seed {s.seed}" in s.texts())
    for k in (3, 7, 10):
        await pause()
        await s.run("step reverse", states=[s.stage_step(k)])
        s.expect(f"the views at step {k}", f"predicts at step {k}" in s.texts())
    await pause()
    await s.run("change the strategy", states=[s.string("strategy", "random")])
    s.expect("its seed and strategy in the URL", f"seed={s.seed}" in s.query and "strategy=random" in s.query)
    for k in (2, 5):
        await pause()
        await s.run("step reverse", states=[s.stage_step(k)])
        s.expect(f"the views at step {k}", f"predicts at step {k}" in s.texts())
    await pause()
    await s.run("open forward", page="forward", query=f"fwd_seed={s.seed}")
    await pause()
    await s.run("step forward", states=[s.stage_step(5)])
    await pause()
    await s.run("open compare", page="compare")
    await pause()
    await s.run("show a compare section", states=[s.choice("cmp_view", "One seed, every variant")])
    s.expect("the section in the URL", "cmp_view=One" in s.query)
    await pause()
    await s.run("set the compare seed", states=[s.number("cmp_seed", s.seed)])
    s.expect("its seed in the URL", f"cmp_seed={s.seed}" in s.query)
    await pause()
    await s.run("open lessons", page="lessons", query="lesson=1&step=1")
    await pause()
    # the step shown may not be the link's: the Reverse page's "step" is the same session_state key
    question = next((k[len("guess-"):] for k in s.widgets if k.startswith("guess-")), None)
    if question is None:
        s.expect("a question on lesson 1", False)
        return
    choices = s.widget(f"guess-{question}")[2].options
    await s.run("answer a question", states=[s.string(f"guess-{question}", choices[s.index % len(choices)])])
    await pause()
    await s.run("reveal the answer", click=f"reveal-{question}")
    s.expect("the answer revealed", "Right!" in s.texts() or "Not quite" in s.texts())
    if generate:
        await pause()
        prompt = f"to be or not to be {s.marker}"
        await s.run("open real", page="real",
                    query=f"real_gen_length=16&real_steps=8&real_block_length=16&real_seed={s.seed}&real_prompt="
                          + urllib.request.quote(prompt))
        await pause()
        await s.run("generate", click="real_generate")
        s.expect("its own prompt above its generation", f"**Prompt:** {prompt}" in s.texts())
    await pause()
    await s.run("open reverse", page="reverse", query=f"seed={s.seed}&steps=12")
    await pause()
    await s.run("step reverse", states=[s.stage_step(4)])
    s.expect("the views at step 4", "predicts at step 4" in s.texts())


async def train_script(s: Session, steps: int, done_at: dict, go: asyncio.Event) -> None:
    await s.run("open train", page="train", query=f"train_steps={steps}&train_seed={s.seed}")
    await go.wait()  # everyone presses Start at once
    await s.run("start training", click="Start training")
    label = f"seed {s.seed}"
    deadline = time.monotonic() + ACTION_TIMEOUT * 4
    while time.monotonic() < deadline:
        text = s.texts()
        if "Done after" in text or "Stopped after" in text:
            s.expect(f"its own model ({label})", label in text)
            done_at[s.index] = time.monotonic()
            return
        if not s.auto:
            s.expect("a live view refreshing until the training is done", False)
            return
        fragment, interval = next(iter(s.auto.items()))
        await asyncio.sleep(interval)
        await s.run("train tick", fragment=fragment)
    s.expect("the training done before the deadline", False)


async def stepper_script(s: Session, rng: random.Random, stop: asyncio.Event) -> None:
    await s.run(None, page="reverse", query=f"seed={s.seed}&steps=12")
    k = 0
    while not stop.is_set():
        await asyncio.sleep(rng.uniform(0.5, 1.5))
        k = k % 12 + 1
        await s.run("step reverse during trainings", states=[s.stage_step(k)])
        s.expect(f"the views at step {k}", f"predicts at step {k}" in s.texts())


# ------------------------------------------------------------------------------- the bench


async def run_sessions(coros) -> list:
    return await asyncio.gather(*coros, return_exceptions=True)


def report_times(stats: Stats, title: str) -> None:
    print(f"\n{title}")
    print(f"  {'action':<32}{'n':>5}{'p50 s':>9}{'p95 s':>9}{'max s':>9}")
    for action, v in stats.times.items():
        print(f"  {action:<32}{len(v):>5}{pct(v, .5):>9.3f}{pct(v, .95):>9.3f}{max(v):>9.3f}")


async def settle(base: str, seconds: float, monitor: Monitor, phase: str) -> float:
    """Wait for the closed sessions to expire, touch the session store once (it reaps on a write), and
    return the server's RSS."""
    monitor.phase = phase
    await asyncio.sleep(seconds)
    s = Session(base, 99, Stats(), set())
    await s.connect()
    await s.run(None, page="")
    await s.close()
    await asyncio.sleep(2)
    return monitor.rss()


async def main_async(a, base: str, server: subprocess.Popen) -> int:
    n = max(1, min(a.sessions, MAX_SESSIONS))
    seeds = {SEED0 + i for i in range(max(n, a.steppers) + 1)}
    monitor = Monitor(server.pid)
    mon_task = asyncio.create_task(monitor.run())
    client_cpu0 = time.process_time()
    results: dict = {}

    # warm-up: one student through everything (models loaded, caches filled, one training, one generation)
    monitor.phase = "warm-up"
    warm = Stats()
    s = Session(base, 0, warm, set())
    await s.connect()
    t0 = time.monotonic()
    await class_script(s, random.Random(0), (0.0, 0.0), generate=True)
    await train_script(s, 50, {}, _set_event())
    await s.close()
    print(f"warm-up: one session through every page, a generation and a 50-step training in "
          f"{time.monotonic() - t0:.1f} s ({len(warm.errors)} errors)")
    alone = Stats(cpu_of=lambda: proc_sample(server.pid)[1])  # the same again, warm, timed alone
    s = Session(base, 1, alone, set())
    await s.connect()
    await class_script(s, random.Random(1), (0.0, 0.0), generate=True)
    await s.close()
    for e in (warm.errors + alone.errors)[:5]:
        print("  warm-up error:", e)
    results["alone"] = alone
    print("one session alone, warm (what each action costs the server, before any load):")
    print(f"  {'action':<32}{'n':>5}{'wall s':>9}{'server CPU s':>14}")
    for action, v in alone.times.items():
        print(f"  {action:<32}{len(v):>5}{statistics.mean(v):>9.3f}{statistics.mean(alone.cpu[action]):>14.3f}")
    rss_warm = await settle(base, a.session_ttl + 2, monitor, "after warm-up")
    print(f"server RSS after the warm-up: {rss_warm:.0f} MB")
    results["rss_warm"] = rss_warm

    if a.scenario in ("both", "class"):
        stats = Stats()
        rss_rounds = []
        for round_no in range(1, a.rounds + 1):  # a long class: the same lesson again, new tabs each time
            monitor.phase = f"class x{n}" + (f" round {round_no}" if a.rounds > 1 else "")
            print(f"\nscenario class{f' (round {round_no} of {a.rounds})' if a.rounds > 1 else ''}: {n} sessions, "
                  f"think time {a.think[0]}-{a.think[1]} s, "
                  + (f"one in {a.generate_every} generates" if a.generate_every else "no generation"))
            sessions = [Session(base, i, stats, seeds) for i in range(n)]
            t0 = time.monotonic()
            await run_sessions(s.connect() for s in sessions)

            async def one(s: Session, round_no=round_no):
                rng = random.Random(s.index * 1000 + round_no)
                await asyncio.sleep(rng.uniform(0, 3))  # a class does not open its tabs in the same millisecond
                gen = a.generate_every > 0 and s.index % a.generate_every == 0
                await class_script(s, rng, tuple(a.think), generate=gen)

            outcomes = await run_sessions(one(s) for s in sessions)
            for s, out in zip(sessions, outcomes):
                if isinstance(out, BaseException):
                    stats.errors.append(f"session {s.index} stopped: {type(out).__name__}: {out}")
            print(f"  done in {time.monotonic() - t0:.1f} s; {sum(s.received for s in sessions) / 1e6:.1f} MB "
                  "received")
            await run_sessions(s.close() for s in sessions)
            rss_rounds.append(await settle(base, a.session_ttl + 2, monitor, f"after class {round_no}"))
            print(f"  server RSS after this round (sessions closed and expired): {rss_rounds[-1]:.0f} MB")
        report_times(stats, f"scenario class: {n} sessions" + (f", {a.rounds} rounds" if a.rounds > 1 else ""))
        print(f"server RSS after the run (sessions closed and expired): {rss_rounds[-1]:.0f} MB "
              f"(after the warm-up: {rss_warm:.0f} MB; after each round: "
              f"{', '.join(f'{r:.0f}' for r in rss_rounds)} MB)")
        results["class"] = stats
        results["rss_after"] = rss_rounds[-1]

    if a.scenario in ("both", "train"):
        stats = Stats()
        monitor.phase = f"train x{n}"
        print(f"\nscenario train: {n} sessions press Start training ({a.train_steps} steps) at once; "
              f"{a.steppers} others step on Reverse")
        trainers = [Session(base, i, stats, seeds) for i in range(n)]
        steppers = [Session(base, n + i, stats, seeds) for i in range(a.steppers)]
        await run_sessions(s.connect() for s in trainers + steppers)
        go, stop, done_at = asyncio.Event(), asyncio.Event(), {}
        step_tasks = [asyncio.create_task(stepper_script(s, random.Random(s.index), stop)) for s in steppers]
        train_tasks = [asyncio.create_task(train_script(s, a.train_steps, done_at, go)) for s in trainers]
        await asyncio.sleep(3)  # the trainers have their page open, the steppers are stepping
        t_go = time.monotonic()
        go.set()
        outcomes = await run_sessions(train_tasks)
        drained = time.monotonic() - t_go
        stop.set()
        outcomes += await run_sessions(step_tasks)
        for out in outcomes:
            if isinstance(out, BaseException):
                stats.errors.append(f"a session stopped: {type(out).__name__}: {out}")
        await run_sessions(s.close() for s in trainers + steppers)
        report_times(stats, f"scenario train: {n} trainings at once, {a.steppers} sessions stepping on Reverse")
        print(f"  trainings done: {len(done_at)} of {n}; the queue drained {drained:.1f} s after the presses "
              f"({drained / max(1, len(done_at)):.2f} s per training)")
        results["train"] = stats
        results["drained"] = (len(done_at) == n, drained)
        results["rss_after_train"] = await settle(base, a.session_ttl + 2, monitor, "after train")
        print(f"server RSS after the train scenario: {results['rss_after_train']:.0f} MB")

    mon_task.cancel()
    monitor.report()
    print(f"\nthe client itself used {time.process_time() - client_cpu0:.0f} s of CPU (on the same two cores)")
    return summarise(results)


def _set_event() -> asyncio.Event:
    e = asyncio.Event()
    e.set()
    return e


def summarise(r: dict) -> int:
    print("\n== against the issue's targets (ratio = measured / target; <= 1 meets it) ==")
    ok = True
    if "class" in r:
        st: Stats = r["class"]
        worst = max(((pct(v, .95), a) for a, v in st.times.items() if a not in GENERATING), default=(0, "-"))
        print(f"  class: every non-generating action p95 <= 0.5 s: worst {worst[1]} {worst[0]:.3f} s "
              f"-> ratio {worst[0] / 0.5:.2f}")
        alone: Stats = r.get("alone") or Stats()
        for action, v in st.times.items():
            if action not in GENERATING:
                cost = (f"   (one session alone: {statistics.mean(alone.times[action]):.3f} s, server CPU "
                        f"{statistics.mean(alone.cpu[action]):.3f} s)" if alone.cpu.get(action) else "")
                print(f"      {action:<28} p95 {pct(v, .95):.3f} s -> {pct(v, .95) / 0.5:.2f}{cost}")
        print(f"  class: errors: {len(st.errors)} (target 0)")
        for e in st.errors[:10]:
            print("      ", e)
        print(f"  class: cross-session state seen: {len(st.leaks)} (target 0)")
        for e in st.leaks[:10]:
            print("      ", e)
        ratio = r["rss_after"] / r["rss_warm"]
        print(f"  class: server RSS after the run / after the warm-up: {r['rss_after']:.0f} / {r['rss_warm']:.0f} MB "
              f"= {ratio:.2f} (target <= 1.20)")
        ok &= worst[0] <= 0.5 and not st.errors and not st.leaks and ratio <= 1.2
    if "train" in r:
        st = r["train"]
        steps = st.times.get("step reverse during trainings", [])
        p95 = pct(steps, .95)
        drained, secs = r["drained"]
        print(f"  train: Reverse step of another session p95 <= 0.5 s: {p95:.3f} s -> ratio {p95 / 0.5:.2f}")
        print(f"  train: the queue drains: {'yes' if drained else 'NO'} ({secs:.0f} s)")
        print(f"  train: errors: {len(st.errors)}, cross-session state seen: {len(st.leaks)} (targets 0)")
        for e in (st.errors + st.leaks)[:10]:
            print("      ", e)
        ok &= p95 <= 0.5 and drained and not st.errors and not st.leaks
    print(f"  all targets met: {'yes' if ok else 'no'} (machine load average now {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} CPUs: other processes on this machine slow the server down too)")
    return 0 if ok else 1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sessions", type=int, default=30)
    ap.add_argument("--scenario", choices=["both", "class", "train"], default="both")
    ap.add_argument("--train-steps", type=int, default=50, help="steps of each training in the train scenario")
    ap.add_argument("--steppers", type=int, default=5, help="sessions stepping on Reverse during the trainings")
    ap.add_argument("--think", type=float, nargs=2, default=[2.0, 6.0],
                    help="a student's pause between two actions, drawn uniformly from this range (s)")
    ap.add_argument("--generate-every", type=int, default=3, help="one session in this many generates (0: none)")
    ap.add_argument("--rounds", type=int, default=1, help="run the class scenario this many times (a long class)")
    ap.add_argument("--workers", type=int, default=None, help="DLM_WORKERS for the server (default: its own)")
    ap.add_argument("--session-ttl", type=int, default=5, help="server.disconnectedSessionTTL for the bench, s")
    ap.add_argument("--timeout", type=float, default=1200, help="seconds for the whole run, at most")
    a = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; workers: "
          f"{a.workers or os.environ.get('DLM_WORKERS') or 'the default'}")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="dlm-class-bench-") as tmp:
        log = Path(tmp) / "server.log"
        server = start_server(port, log, a.workers, a.session_ttl)
        code = 1
        try:
            code = asyncio.run(asyncio.wait_for(main_async(a, f"http://127.0.0.1:{port}", server), a.timeout))
        except TimeoutError:
            print(f"stopped: the run took longer than {a.timeout:.0f} s")
        finally:
            stop(server)
            tail = log.read_text(errors="replace").strip().splitlines()[-15:]
            errors = [line for line in tail if "Error" in line or "Traceback" in line]
            if errors:
                print("server log (last lines with errors):", *errors, sep="\n  ")
    sys.exit(code)


if __name__ == "__main__":
    main()
