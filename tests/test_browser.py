"""The app as a user sees it: `streamlit run` + headless Debian Chromium (Playwright).

Screenshots go to artifacts/screenshots/ (looked at by a person after UI changes)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_url():
    port = _free_port()
    log = open(ROOT / "artifacts" / "streamlit-test.log", "w") if (ROOT / "artifacts").exists() else None
    if log is None:
        (ROOT / "artifacts").mkdir(exist_ok=True)
        log = open(ROOT / "artifacts" / "streamlit-test.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "scripts/serve.py", "--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
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
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


def wait_idle(page, timeout=60_000):
    """Wait until Streamlit has finished running the script (no 'running' status widget)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )
    page.wait_for_timeout(300)


STEP_JS = "document.querySelector('[data-testid=\"stMain\"] [data-testid=\"stSliderThumbValue\"]')"


def step_value(page) -> int:
    return int(page.evaluate(f"() => {STEP_JS}.innerText"))


def wait_step(page, k: int, timeout=30_000) -> None:
    page.wait_for_function(f"() => {STEP_JS} && {STEP_JS}.innerText.trim() == '{k}'", timeout=timeout)


def test_home_lists_each_page_once(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(app_url)
    page.get_by_role("heading", name="Seeing how diffusion language models write").wait_for(timeout=60_000)
    wait_idle(page)
    nav = page.get_by_test_id("stSidebarNav").inner_text().split("\n")
    nav = [n for n in nav if n.strip() and not n.startswith(":")]
    assert nav.count("Home") == 1 and nav.count("Reverse process") == 1, nav
    assert not any(n.lower() in ("app", "reverse", "home.py") for n in nav if n not in ("Home",)), nav
    page.screenshot(path=str(SHOTS / "home.png"), full_page=True)
    page.close()


def test_reverse_page_steps_first_middle_last(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    page.goto(app_url + "/reverse?strategy=low-confidence&steps=6&seed=0")  # a deep link
    page.get_by_role("heading", name="Reverse process: from noise to a sentence").wait_for(timeout=60_000)
    wait_idle(page)
    nav = page.get_by_test_id("stSidebarNav").inner_text()
    assert nav.count("Reverse process") == 1 and "shared" not in nav
    page.get_by_role("button", name="First").click()
    wait_step(page, 0)
    wait_idle(page)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=60_000)
    page.screenshot(path=str(SHOTS / "reverse-first.png"), full_page=True)
    for _ in range(3):
        before = step_value(page)
        page.get_by_role("button", name="Next").click()
        wait_step(page, before + 1)
        wait_idle(page)
    assert step_value(page) == 3
    page.screenshot(path=str(SHOTS / "reverse-middle.png"), full_page=True)
    page.get_by_role("button", name="Last").click()
    wait_step(page, 6)
    wait_idle(page)
    assert page.get_by_text("A valid sentence of the toy language.").count() + page.get_by_text(
        "Not a sentence of the toy language").count() == 1
    page.screenshot(path=str(SHOTS / "reverse-last.png"), full_page=True)
    page.close()


def test_play_animates_to_the_end(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url + "/reverse?steps=4")
    page.get_by_role("heading", name="Reverse process: from noise to a sentence").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("button", name="First").click()
    wait_step(page, 0)
    page.get_by_role("button", name="Play").click()
    # the animation passes through step 2 and stops by itself on the last step
    wait_step(page, 2)
    page.get_by_role("button", name="Play").wait_for(timeout=30_000)
    assert step_value(page) == 4
    page.close()


def open_and_wait(browser, url: str, heading: str, height: int = 1800):
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.goto(url)
    page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
    wait_idle(page)
    return page


@pytest.mark.parametrize("variant", ["masked", "uniform", "gaussian"])
def test_forward_page_mid_t(app_url, browser, variant):
    page = open_and_wait(browser, f"{app_url}/forward?fwd_variant={variant}&fwd_t=0.5&fwd_seed=1",
                         "Forward process: how each kind of noise destroys a sentence")
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(SHOTS / f"forward-{variant}.png"), full_page=True)
    page.close()


@pytest.mark.parametrize("variant", ["uniform", "gaussian"])
def test_reverse_page_middle_step_uniform_gaussian(app_url, browser, variant):
    page = open_and_wait(browser, f"{app_url}/reverse?variant={variant}&steps=6&seed=0",
                         "Reverse process: from noise to a sentence", height=2300)
    page.get_by_role("button", name="First").click()
    wait_step(page, 0)
    for k in range(1, 4):
        page.get_by_role("button", name="Next").click()
        wait_step(page, k)
        wait_idle(page)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=60_000)
    wait_idle(page)
    page.screenshot(path=str(SHOTS / f"reverse-{variant}-middle.png"), full_page=True)
    page.close()


def test_compare_page_opens_fast_from_the_shipped_results(app_url, browser):
    import json

    page = browser.new_page(viewport={"width": 1400, "height": 2600})
    t0 = time.perf_counter()
    page.goto(app_url + "/compare")
    page.locator("[data-testid=stMarkdownContainer] table").first.wait_for(timeout=60_000)
    seconds = time.perf_counter() - t0  # a benchmark figure (reported, not asserted)
    (ROOT / "artifacts" / "compare-open-seconds.json").write_text(json.dumps({"seconds_to_table": seconds}))
    wait_idle(page)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 8", timeout=60_000)
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
    page.close()


def test_train_then_pick_the_model_on_the_reverse_page(app_url, browser):
    page = open_and_wait(browser, app_url + "/train", "Train a toy diffusion model, live")
    page.get_by_label("Steps").fill("300")
    page.get_by_role("button", name="Start training").click()
    page.get_by_role("button", name="Stop").wait_for(timeout=120_000)  # live progress while it trains
    page.wait_for_function("() => /step ([1-9][0-9]*) \\/ 300/.test(document.body.innerText)", timeout=120_000)
    page.screenshot(path=str(SHOTS / "train-running.png"), full_page=True)
    page.get_by_text("Done after 300 steps").wait_for(timeout=300_000)
    wait_idle(page)
    page.screenshot(path=str(SHOTS / "train-done.png"), full_page=True)
    page.get_by_test_id("stSidebarNav").get_by_text("Reverse process").click()
    page.get_by_role("heading", name="Reverse process: from noise to a sentence").wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("combobox", name="Model").click()
    page.get_by_text("trained here: masked, 300 steps", exact=False).last.click()
    wait_idle(page)
    page.wait_for_function("() => [...document.querySelectorAll('input[aria-label=\"Model\"]')]"
                           ".some(e => e.value.includes('trained here: masked, 300 steps'))")
    wait_idle(page)
    page.screenshot(path=str(SHOTS / "reverse-trained-model.png"), full_page=True)
    page.close()


def test_real_model_live_generation_and_replay(app_url, browser):
    page = open_and_wait(browser, app_url + "/real?real_gen_length=64&real_steps=64&real_block_length=32",
                         "Real model: a masked diffusion LM writing real text", height=2200)
    page.get_by_text("Model ready").wait_for(timeout=120_000)
    page.get_by_role("button", name="Generate").click()
    # streaming: the steps arrive one by one while the generation runs
    page.wait_for_function("() => { const m = document.body.innerText.match(/step (\\d+) \\/ 64/);"
                           " return m && +m[1] >= 4 && +m[1] < 64; }", timeout=120_000, polling=50)
    page.screenshot(path=str(SHOTS / "real-live.png"), full_page=True)
    wait_step(page, 64, timeout=300_000)
    wait_idle(page)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=60_000)
    page.screenshot(path=str(SHOTS / "real-after.png"), full_page=True)
    page.get_by_role("button", name="First").click()
    wait_step(page, 0)
    page.close()
