"""The server's job queue end to end, in Chromium against a server with one worker (DLM_WORKERS=1): a
training waits for its turn (its place, an estimate, a Stop button), a closed tab's training is cancelled
within seconds (the next one in line starts), and a long real-model generation stops on Stop."""

import re
import time

import pytest
from browser_util import SHOTS, open_and_wait, page_text, served_app, wait_idle

TRAIN = "Train a toy diffusion model, live"
REAL = "Real model: a masked diffusion LM writing real text"


@pytest.fixture(scope="module")
def one_worker_url():
    """The app on 127.0.0.1 with a job queue of one worker, for this module only."""
    with served_app("streamlit-jobs-test.log", DLM_WORKERS="1") as url:
        yield url


def running_step(page, total: int, timeout=120_000) -> None:
    """Wait until the page's live view says it is training (step n / total, n >= 1)."""
    page.wait_for_function(f"() => /step [1-9][0-9]* \\/ {total}\\b/.test(document.body.innerText)",
                           timeout=timeout, polling=100)


def test_a_closed_tab_cancels_its_training_and_the_next_one_starts(one_worker_url, browser):
    first = browser.new_context(viewport={"width": 1400, "height": 1200})
    a = first.new_page()
    a.goto(one_worker_url + "/train?train_steps=5000&train_seed=1")
    a.get_by_role("heading", name=TRAIN).wait_for(timeout=90_000)
    a.get_by_role("button", name="Start training").click()
    running_step(a, 5000)  # the only worker trains A's 5000 steps (minutes)

    second = browser.new_context(viewport={"width": 1400, "height": 1200})
    b = second.new_page()
    b.goto(one_worker_url + "/train?train_steps=50&train_seed=2")
    b.get_by_role("heading", name=TRAIN).wait_for(timeout=90_000)
    wait_idle(b)
    b.get_by_role("button", name="Start training").click()
    b.get_by_text("Waiting: next in line").wait_for(timeout=60_000)
    b.get_by_role("button", name="Stop").wait_for(timeout=30_000)
    text = page_text(b)
    assert re.search(r"Starts in about \d+ (s|min)", text), text  # an estimate from A's settings
    b.screenshot(path=str(SHOTS / "train-queued.png"), full_page=True)

    t0 = time.monotonic()
    first.close()  # A's tab goes away mid-training
    running_step(b, 50, timeout=60_000)  # so the worker is free: A's training was cancelled
    took = time.monotonic() - t0
    assert took < 15, f"B started {took:.1f} s after A's tab closed"
    b.get_by_text("Done after 50 steps").wait_for(timeout=120_000)
    second.close()


def test_stop_ends_a_long_real_model_generation(one_worker_url, browser):
    page = open_and_wait(browser, one_worker_url + "/real?real_gen_length=256&real_steps=256&real_block_length=256",
                         REAL, height=1400)
    page.get_by_text("Model ready").wait_for(timeout=120_000)
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("() => { const m = document.body.innerText.match(/step (\\d+) \\/ 256/);"
                           " return m && +m[1] >= 2; }", timeout=120_000, polling=100)
    t0 = time.monotonic()
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("Generation stopped.").wait_for(timeout=15_000)  # shown once the job has ended
    took = time.monotonic() - t0
    assert took < 10, f"the generation ended {took:.1f} s after Stop"
    assert "Choose a prompt and press" in page_text(page)  # nothing half-made is kept
    # the worker is free again: a short generation goes through at once
    page.goto(one_worker_url + "/real?real_gen_length=16&real_steps=4&real_block_length=16")
    page.get_by_text("Model ready").wait_for(timeout=120_000)
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function("() => window.__dlmStageActive && window.__dlmStageActive.data.T === 4",
                           timeout=60_000)
    page.close()
