"""Page open time: a new browser tab of a page, from navigation to idle, against a server started here.

    PYTHONPATH=. .venv/bin/python bench/page_open.py [--repeats 5]

"Idle" is what a user sees as ready: the script run has finished (no running-status widget, no
stale element) and, on pages with a stage, the player is drawn. The first visit of each page
warms the server's shared caches (models, the default trajectory); then each page is opened
`repeats` times, each in a fresh browser context (a new session, as a new student's tab). Prints
the median and worst time per page and, last, the ratio of the median to the 2 s target.
Bounded: one server, a few dozen page loads; it stops the server itself.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from serving import free_port, serve, stop  # noqa: E402

TARGET_S = 2.0
PAGES = {  # page: (path, heading, has a stage)
    "Reverse": ("/reverse", "Reverse process: from noise to a sentence", True),
    "Forward": ("/forward", "Forward process: from a sentence to noise", True),
    "Home": ("/", None, False),
}
IDLE_JS = """([stage]) => !document.querySelector('[data-testid="stStatusWidget"]') &&
  !document.querySelector('[data-stale="true"]') && document.querySelector('h1') !== null &&
  (!stage || (window.__dlmStageActive && window.__dlmStageActive.root.isConnected))"""


def open_once(browser, url: str, stage: bool) -> float:
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(IDLE_JS, arg=[stage], timeout=60_000, polling=20)
    elapsed = time.perf_counter() - t0
    ctx.close()
    return elapsed


def main() -> None:
    from playwright.sync_api import sync_playwright

    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    port = free_port()
    proc = serve(port)
    base = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"])
            results = {}
            for name, (path, _, stage) in PAGES.items():
                first = open_once(browser, base + path, stage)  # warms the shared caches
                times = [open_once(browser, base + path, stage) for _ in range(args.repeats)]
                results[name] = (first, times)
                print(f"{name:8s}: first visit (cold caches) {first:.2f} s; new tab, median "
                      f"{statistics.median(times):.2f} s, worst {max(times):.2f} s over {len(times)}")
            browser.close()
    finally:
        stop(proc)
    for name in ("Reverse", "Forward"):
        med = statistics.median(results[name][1])
        print(f"ratio to target, {name}: {med:.2f} s / {TARGET_S:.0f} s = {med / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
