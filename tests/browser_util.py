"""Helpers of the browser tests (the server and browser fixtures are in conftest.py)."""

import shutil
import socket
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

STAGE = "window.__dlmStageActive"  # the player on the page (assets/player/player.js)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
