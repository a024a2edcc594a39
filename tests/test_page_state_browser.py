"""Typed page state in a real browser: a link followed inside the same tab shows what it says (the browser's
history, as its back and forward buttons and in-app links move it, keeps the Streamlit session), and a shared
trajectory file that is not usable is refused with one sentence while the page keeps what it showed."""

from __future__ import annotations

import json

import pytest
from browser_util import SHOTS, STAGE, page_text, wait_idle, wait_stage

pytestmark = pytest.mark.browser

REVERSE = "Reverse process: from noise to a sentence"


def follow_in_tab(page, path: str) -> None:
    """Move this tab to `path` the way in-app navigation and the back/forward buttons do: the history
    changes and Streamlit reruns the page in the same session (no new tab, no reload)."""
    page.evaluate("(path) => { window.history.pushState({}, '', path); "
                  "window.dispatchEvent(new PopStateEvent('popstate')); }", path)
    page.wait_for_function("(p) => window.location.search === new URL(p, window.location.href).search || "
                           "window.location.search.includes(new URL(p, window.location.href).search.slice(1))",
                           arg=path, timeout=30_000)
    wait_idle(page)


def seed_box(page):
    box = page.get_by_role("spinbutton", name="Seed")
    box.wait_for(timeout=90_000)
    return box


def test_a_seed_link_followed_in_the_same_tab_wins(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url + "/reverse?seed=1")
    page.get_by_role("heading", name=REVERSE).wait_for(timeout=90_000)
    wait_idle(page)
    assert seed_box(page).input_value() == "1"
    seed_box(page).fill("2")
    seed_box(page).press("Enter")
    page.wait_for_function("() => window.location.search.includes('seed=2')", timeout=30_000)
    wait_idle(page)
    follow_in_tab(page, "/reverse?seed=3")
    page.wait_for_function("() => document.querySelector('input[aria-label=\"Seed\"]')?.value === '3'",
                           timeout=30_000)
    assert "seed=3" in page.url
    assert "Some settings in the link were changed" not in page_text(page)  # a value that fits: nothing to say
    page.go_back()  # the browser's own back button: the link before says seed 2
    page.wait_for_function("() => document.querySelector('input[aria-label=\"Seed\"]')?.value === '2'",
                           timeout=30_000)
    page.close()


def test_a_lesson_link_followed_in_the_same_tab_wins(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url + "/lessons?lesson=1&step=1")
    page.get_by_role("heading", name="step 1 of").first.wait_for(timeout=90_000)
    wait_idle(page)
    page.locator(".st-key-lesson_next button").click()
    page.get_by_role("heading", name="step 2 of").first.wait_for(timeout=60_000)
    wait_idle(page)
    follow_in_tab(page, "/lessons?lesson=3&step=2")
    heading = page.get_by_role("heading", name="step 2 of").first
    heading.wait_for(timeout=60_000)
    assert heading.inner_text().startswith("3. "), heading.inner_text()
    page.close()


def test_a_poll_room_link_followed_in_the_same_tab_wins(browser, app_url):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url + "/poll?room=AAAAAAAA")
    page.get_by_text("There is no open room with the code").wait_for(timeout=90_000)
    assert "AAAAAAAA" in page_text(page)
    follow_in_tab(page, "/poll?room=BBBBBBBB")
    page.wait_for_function("() => document.body.innerText.includes('BBBBBBBB')", timeout=30_000)
    assert "AAAAAAAA" not in page_text(page)
    page.close()


BAD_FILES = {
    "initial-not-a-list.json": json.dumps({"variant": "masked", "vocab": ["a", "b", "[MASK]"], "mask_id": 2,
                                           "initial": 5, "records": []}),
    "nested.json": "[" * 200000 + "]" * 200000,
    "vocab-keys.json": json.dumps({"variant": "real", "vocab": {"a": "x"}, "mask_id": None, "initial": [0],
                                   "records": []}),
}


def test_a_shared_file_that_is_not_usable_leaves_the_page_as_it_was(browser, app_url, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url + "/reverse?seed=4")
    page.get_by_role("heading", name=REVERSE).wait_for(timeout=90_000)
    wait_idle(page)
    before = wait_stage(page)
    page.get_by_text("Open a shared trajectory").click()
    for name, text in BAD_FILES.items():
        path = tmp_path / name
        path.write_text(text)
        page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(path))
        page.get_by_text(f"{name} could not be opened").wait_for(timeout=60_000)
        wait_idle(page)
        body = page_text(page)
        assert "Traceback" not in body and "Error:" not in body and "invalid literal" not in body, name
        assert page.locator("[data-testid='stException']").count() == 0, name
        error = page.locator("[data-testid='stAlert']", has_text="could not be opened").inner_text()
        assert "\n" not in error.strip() and "/work" not in error, error
        state = page.evaluate(f"() => ({{k: {STAGE}.k, T: {STAGE}.data.T}})")
        assert state["T"] == before["T"], name  # the sampled run is still on the stage
    page.screenshot(path=str(SHOTS / "shared-file-refused.png"))
    page.close()
