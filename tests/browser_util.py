"""Helpers of the browser tests (the server and browser fixtures are in conftest.py)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

STAGE = "window.__dlmStageActive"  # the player on the page (assets/player/player.js)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served_app(log_name: str, **env):
    """The app served on 127.0.0.1 by scripts/serve.py (extra environment `env`), until the block ends."""
    port = free_port()
    (ROOT / "artifacts").mkdir(exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # the tests run in two processes (scripts/test.sh): a log each
    if worker:
        log_name = log_name.replace(".log", f"-{worker}.log")
    with open(ROOT / "artifacts" / log_name, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "scripts/serve.py", "--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env})
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:  # wait until the health endpoint answers
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200 and r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"streamlit did not come up; see {log.name}")
            time.sleep(0.3)
        try:
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def wait_idle(page, timeout=60_000):
    """Wait until Streamlit has finished running the script (no 'running' status widget)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )
    page.wait_for_timeout(300)
    page.wait_for_function(  # and no element left over from the previous run (Streamlit marks them stale)
        "() => !document.querySelector('[data-stale=\"true\"]') && "
        "!document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout, polling=100)


def open_and_wait(browser, url: str, heading: str, height: int = 1800, width: int = 1400):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
    wait_idle(page)
    return page


def wait_stage(page, timeout=60_000) -> dict:
    """Wait for the player and return what it shows: {k, T, playing, present}."""
    page.wait_for_function(f"() => {STAGE} && {STAGE}.root.isConnected", timeout=timeout, polling=200)
    return stage_state(page)


def stage_state(page) -> dict:
    return page.evaluate(f"() => ({{k: {STAGE}.k, T: {STAGE}.data.T, playing: {STAGE}.playing, "
                         f"present: {STAGE}.present, start: {STAGE}.data.start}})")


def wait_stage_step(page, k: int, timeout=30_000) -> None:
    page.wait_for_function(f"() => {STAGE} && {STAGE}.k === {k}", timeout=timeout, polling=100)


def page_text(page) -> str:
    return page.evaluate("() => document.body.innerText")
