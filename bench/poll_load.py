"""The class poll under a class: N students answering at once, measured in headless Chromium against a server
started here on 127.0.0.1 with its own temporary data folder.

    PYTHONPATH=. .venv/bin/python bench/poll_load.py [--students 30] [--timeout 300] [--no-post-script-gc]

The client is the real one: every student is its own Playwright browser context (its own storage, so
its own anonymous voter, its own websocket session and its own live fragment refreshing every 3 s),
as a phone in the class would be. Nothing is simulated below the browser: a lighter client that spoke
Streamlit's websocket protocol directly would skip the page's script runs that the browsers trigger and
the voter token the page's JavaScript makes, so it would measure less than a class costs the server.

Setup, not timed: the teacher opens a room in a browser; every student opens the join link, waits for
the question and picks a choice. Timed: all N students press "Send my answer" at once (asyncio.gather);
it prints how long until each student's page confirms, and until the teacher's live tally (refreshing
every 1.5 s) shows all N answers with the right split, plus the store alone (N threads, no server) for
scale, and the server's CPU time while idle (every student's page refreshing) and while timed.
--no-post-script-gc starts the server with `--runner.postScriptGC false` (Streamlit's default runs a full
gc.collect(2) after every script run, fragment refreshes included) to compare.
Bounded: at most 60 students, one overall timeout; it stops the server and the browser itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from serving import free_port, serve, stop  # noqa: E402

CHOICES = ["masked", "uniform", "gaussian"]
MAX_STUDENTS = 60
JOIN_AT_ONCE = 4  # the (untimed) joins are staggered: 30 pages loading at once overwhelm a small machine


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; nan elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return float("nan")


def store_alone(n: int, data_dir: str) -> float:
    """N threads answering at once on the store itself: seconds until all are written."""
    from dlm_core.classroom.poll import SQLitePollStore

    store = SQLitePollStore(Path(data_dir) / "store-alone.sqlite3")
    code = store.open_room("q", "Which?", CHOICES)
    barrier = threading.Barrier(n + 1)

    def one(i):
        barrier.wait()
        store.answer(code, "q", f"voter-{i:04d}-abcdef", CHOICES[i % 3])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    assert sum(store.tally(code, "q").values()) == n
    return dt


TALLY_JS = """([want, total]) => {
    const text = document.body.innerText;
    return want.every((w) => text.includes(w))
        && document.querySelector('[data-testid="stMetricValue"]')?.innerText.trim() === total;
}"""


async def run(url: str, n: int, shots: Path, server_pid: int) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                          args=["--no-sandbox", "--disable-gpu"])
        try:
            teacher = await (await browser.new_context(viewport={"width": 1440, "height": 900})).new_page()
            await teacher.goto(url + "/poll")
            await teacher.get_by_role("button", name="Open a room").click()
            code_el = teacher.get_by_test_id("poll-code")
            await code_el.wait_for(timeout=60_000)
            code = await code_el.get_attribute("aria-label")
            link = f"{url}/poll?room={code}"

            t_setup = time.perf_counter()
            students = []
            for _ in range(n):
                ctx = await browser.new_context(viewport={"width": 390, "height": 844})
                students.append(await ctx.new_page())

            joining = asyncio.Semaphore(JOIN_AT_ONCE)

            async def ready(i, page):
                async with joining:
                    await page.goto(link, timeout=120_000)
                    await page.get_by_text(CHOICES[i % 3], exact=True).wait_for(timeout=120_000)
                await page.get_by_text(CHOICES[i % 3], exact=True).click(timeout=120_000)
                send = page.get_by_role("button", name="Send my answer")
                await page.wait_for_function(  # the choice has reached the server (the button is enabled)
                    "() => [...document.querySelectorAll('button')].some((b) => b.innerText.includes('Send my "
                    "answer') && !b.disabled)", timeout=60_000, polling=100)
                return send

            sends = await asyncio.gather(*(ready(i, pg) for i, pg in enumerate(students)))
            print(f"setup: {n} students joined and picked a choice in {time.perf_counter() - t_setup:.1f} s "
                  "(not timed below)")

            c0, w0 = cpu_seconds(server_pid), time.perf_counter()
            await asyncio.sleep(10)
            idle = (cpu_seconds(server_pid) - c0) / (time.perf_counter() - w0)
            print(f"idle: {n} students' pages refreshing: the server uses {100 * idle:.0f} % of a core")

            expected = {c: sum(1 for i in range(n) if CHOICES[i % 3] == c) for c in CHOICES}
            want = [f"{c}: {k} ({100 * k / n:.0f} %)" for c, k in expected.items()]

            async def answer(page, send):
                await send.click()
                await page.get_by_text("Your answer:").wait_for(timeout=120_000)
                return time.perf_counter()

            c0 = cpu_seconds(server_pid)
            t0 = time.perf_counter()
            tally_task = asyncio.create_task(teacher.wait_for_function(TALLY_JS, arg=[want, str(n)],
                                                                       timeout=180_000, polling=50))
            done = await asyncio.gather(*(answer(pg, s) for pg, s in zip(students, sends)))
            await tally_task
            t_tally = time.perf_counter() - t0
            busy = cpu_seconds(server_pid) - c0
            confirm = sorted(t - t0 for t in done)
            print(f"{n} students pressed 'Send my answer' at once:")
            print(f"  each student's page confirmed: median {statistics.median(confirm):.2f} s, "
                  f"slowest {confirm[-1]:.2f} s")
            print(f"  the teacher's live tally showed all {n} answers ({', '.join(want)}) after {t_tally:.2f} s "
                  f"(it refreshes every 1.5 s); the server used {busy:.1f} s of CPU meanwhile")
            shots.mkdir(parents=True, exist_ok=True)
            await teacher.screenshot(path=str(shots / f"poll-teacher-{n}.png"))
            await students[0].screenshot(path=str(shots / "poll-student-load.png"), full_page=True)
        finally:
            await browser.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--students", type=int, default=30)
    ap.add_argument("--timeout", type=float, default=300, help="seconds for the whole run, at most")
    ap.add_argument("--no-post-script-gc", action="store_true", help="serve with --runner.postScriptGC false")
    a = ap.parse_args()
    n = max(1, min(a.students, MAX_STUDENTS))
    with tempfile.TemporaryDirectory(prefix="dlm-poll-bench-") as data_dir:
        print(f"store alone: {n} threads answering at once, all written in {store_alone(n, data_dir) * 1000:.1f} ms")
        extra = ["--runner.postScriptGC", "false"] if a.no_post_script_gc else []
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; server options: "
              f"{' '.join(extra) or 'the defaults'}")
        port = free_port()
        server = serve(port, *extra, env={"DLM_DATA_DIR": data_dir})
        try:
            asyncio.run(asyncio.wait_for(run(f"http://127.0.0.1:{port}", n, ROOT / "artifacts" / "screenshots",
                                             server.pid), a.timeout))
        except TimeoutError:
            print(f"stopped: the run took longer than {a.timeout:.0f} s")
            sys.exit(1)
        finally:
            stop(server)


if __name__ == "__main__":
    main()
