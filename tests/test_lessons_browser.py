"""A walk through every lesson in a real browser, step by step (screenshots looked at by a person)."""

import pytest
from browser_util import SHOTS, STAGE, page_text, stage_state, wait_idle, wait_stage

from dlm_core.classroom.lessons import LESSONS

pytestmark = pytest.mark.browser


def test_walk_through_every_lesson(app_url, browser):
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(app_url + "/lessons?lesson=1&step=1")
    page.get_by_role("heading", name="Lessons: how diffusion language models write").wait_for(timeout=60_000)
    wait_idle(page)
    for li, lesson in enumerate(LESSONS, start=1):
        for si, step in enumerate(lesson.steps, start=1):
            page.get_by_role("heading", name=f"{li}. {lesson.title} · step {si} of {len(lesson.steps)}").wait_for(
                timeout=60_000)
            wait_idle(page)
            text = page_text(page)
            assert "Traceback" not in text and page.locator("[data-testid=stException]").count() == 0
            assert step.text.split(".")[0] in text  # the step's own words
            if step.view.kind in ("left-to-right", "reverse", "forward"):
                s = wait_stage(page)
                assert s["T"] >= 1
            if step.question:
                page.get_by_text("Predict first").wait_for(timeout=30_000)
            page.screenshot(path=str(SHOTS / f"lesson-{li}-{si}.png"), full_page=True)
            if (li, si) != (len(LESSONS), len(lesson.steps)):
                page.get_by_role("heading", name=f"{li}. {lesson.title}", exact=False).click()  # focus the page
                page.keyboard.press("PageDown")  # next step from the keyboard
    assert f"lesson={len(LESSONS)}" in page.url and "step=" in page.url  # the URL follows: a link resumes here
    page.close()


def test_a_lesson_step_on_the_projector(app_url, browser):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(app_url + "/lessons?lesson=3&step=2&present=1")
    wait_idle(page)
    s = wait_stage(page)
    assert s["present"] is True
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "lesson-3-2-presenter-1920.png"))
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    assert stage_state(page)["k"] == 1 and page.evaluate(f"() => {STAGE}.gridFontPx") >= 18
    page.close()
