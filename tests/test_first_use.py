"""No first-use races, and a per-replica cap on sessions.

Every page's script runs in a thread of its own; two threads importing a heavy module for the first time
at once can see it half-initialised. scripts/serve.py imports everything the pages need before the server
accepts anyone: a test checks that opening every page afterwards imports nothing new, and one starts a
fresh server and opens every page from 20 sessions at the same instant (Streamlit's websocket protocol, as
bench/class_load.py speaks it). The same server has DLM_MAX_SESSIONS=20: a 21st tab is told plainly that
the server is full, and gets in once a tab has closed."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from class_load import Session, Stats  # noqa: E402
from serving import free_port, serve, stop  # noqa: E402

PAGES = ["", "lessons", "forward", "reverse", "infill", "compare", "order", "train", "real", "poll"]
N_SESSIONS = 20
FULL = "This server is full"


def run_in_thread(coroutine):
    """asyncio.run in a thread of its own: Playwright's sync API (the browser fixture) keeps an event loop
    running in the main thread for the whole session."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
PRELOAD = {"DLM_PRELOAD": __import__("os").environ.get("DLM_TEST_PRELOAD", "1")}  # 0: to see the race it prevents

CHECK_PRELOAD = r"""
import runpy, sys
ns = runpy.run_path(sys.argv[1], run_name="serve")
ns["preload"]()
from streamlit.testing.v1 import AppTest
before = set(sys.modules)
new = {}
for page in ["home", "lessons", "forward", "reverse", "infill", "compare", "order_study", "train", "real", "poll"]:
    at = AppTest.from_file(sys.argv[2], default_timeout=180)
    at.switch_page(f"pages/views/{page}.py")
    at.run()
    assert not at.exception, (page, at.exception)
    now = set(sys.modules)
    new[page] = sorted(now - before)
    before = now
print(repr(new))
"""


def test_after_the_preload_no_page_imports_anything_new(tmp_path):
    r = subprocess.run([sys.executable, "-c", CHECK_PRELOAD, str(ROOT / "scripts" / "serve.py"), str(ROOT / "app.py")],
                       cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env={"PYTHONPATH": str(ROOT), "DLM_DATA_DIR": str(tmp_path), "OMP_NUM_THREADS": "1",
                            "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-3000:]
    new = eval(r.stdout.strip().splitlines()[-1])  # noqa: S307 - our own subprocess's repr of a dict of lists
    assert set(new) == {"home", "lessons", "forward", "reverse", "infill", "compare", "order_study", "train", "real",
                        "poll"}
    assert new == {page: [] for page in new}, {p: m for p, m in new.items() if m}


@pytest.fixture(scope="module")
def fresh_server():
    data = tempfile.mkdtemp(prefix="dlm-first-use-")
    port = free_port()
    log = ROOT / "artifacts" / "streamlit-first-use.log"
    log.parent.mkdir(exist_ok=True)
    proc = serve(port, "--server.disconnectedSessionTTL", "5",
                 env={"DLM_DATA_DIR": data, "DLM_MAX_SESSIONS": str(N_SESSIONS), **PRELOAD}, log_path=log)
    yield f"http://127.0.0.1:{port}"
    stop(proc)


def test_twenty_sessions_open_every_page_at_the_same_instant(fresh_server):
    stats = Stats()

    async def one(i: int, ready: list, go: asyncio.Event, done: list) -> None:
        s = Session(fresh_server, i, stats, set())
        await s.connect()
        await s.run(None, page="")  # connected and admitted (the navigation tells the pages' hashes)
        ready.append(i)
        await go.wait()
        order = PAGES[i % len(PAGES):] + PAGES[:i % len(PAGES)]  # every page is some session's first, at once
        for page in order:
            await s.run(f"open /{page}", page=page)
            s.expect(f"/{page} drawn, not refused", FULL not in s.texts() and bool(s.elements))
        done.append(i)
        await s.close()

    async def main() -> list:
        ready, done, go = [], [], asyncio.Event()
        tasks = [asyncio.create_task(one(i, ready, go, done)) for i in range(N_SESSIONS)]
        deadline = time.monotonic() + 300
        while len(ready) < N_SESSIONS:  # every session connected; then all start at the same instant
            assert time.monotonic() < deadline and not any(t.done() for t in tasks), "the sessions did not connect"
            await asyncio.sleep(0.05)
        go.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 600)
        return done

    done = run_in_thread(main())
    assert sorted(done) == list(range(N_SESSIONS))
    assert not stats.errors, stats.errors[:10]
    assert {a: len(v) for a, v in stats.times.items()} == {f"open /{p}": N_SESSIONS for p in PAGES}


def test_past_the_cap_a_tab_is_told_the_server_is_full(fresh_server):
    stats = Stats()

    async def main() -> None:
        tabs = [Session(fresh_server, i, stats, set()) for i in range(N_SESSIONS + 1)]
        for s in tabs[:N_SESSIONS]:
            await s.connect()
            await s.run(None, page="")
            assert FULL not in s.texts()
        extra = tabs[N_SESSIONS]
        await extra.connect()
        await extra.run(None, page="poll")
        said = extra.texts()
        assert f"{FULL}: it serves {N_SESSIONS} students at once and every place is taken" in said
        assert "Class poll" not in said  # nothing else drawn for it
        await tabs[0].close()  # a tab closes: its place frees
        deadline = time.monotonic() + 30
        while True:
            late = Session(fresh_server, 99, stats, set())
            await late.connect()
            await late.run(None, page="poll")
            if FULL not in late.texts():
                break
            await late.close()
            assert time.monotonic() < deadline, "the closed tab's place never freed"
            await asyncio.sleep(0.2)
        assert "Class poll" in late.texts()
        for s in [*tabs[1:], late]:
            await s.close()

    run_in_thread(main())
    assert [e for e in stats.errors if FULL not in e] == []
