"""Every step of every lesson in a real browser: it renders without an error, passes axe-core's WCAG A and AA
rules, and where it asks a question nothing that answers it is on the page before the reveal (the stage holds
the run only up to the question, no table, chart or finding is drawn), and it is after. Screenshots:
artifacts/screenshots/lesson-*.png (looked at by a person)."""

import pytest
from axe_util import blocking, describe, run_axe
from browser_util import SHOTS, STAGE, page_text, wait_idle, wait_stage

from dlm_core.classroom.lessons import LESSONS, STAGE_KINDS

pytestmark = pytest.mark.browser

STEPS = [(li, si) for li, lesson in enumerate(LESSONS, start=1) for si in range(1, len(lesson.steps) + 1)]
SHOOT = {(1, 1), (6, 1), (11, 1), (14, 1), (16, 3), (len(LESSONS), 1)}  # a question, guidance, prefill, real, summary
ANSWER = "[data-testid=stAlertContentSuccess], [data-testid=stAlertContentInfo]"


@pytest.fixture(scope="module")
def page(browser):
    p = browser.new_page(viewport={"width": 1400, "height": 1100})
    yield p
    p.close()


def shown(page) -> dict:
    """What the page shows beyond the step's text: the stage's run length, tables, charts, findings."""
    return page.evaluate(f"""() => {{
        const main = document.querySelector('[data-testid=stMain]');
        return {{T: {STAGE} && {STAGE}.root.isConnected ? {STAGE}.data.T : null,
                 tables: main.querySelectorAll('table').length,
                 charts: main.querySelectorAll("svg[role=img], div[role=figure]").length,
                 answered: /Right!|Not quite|The answer:/.test(main.innerText),
                 findings: main.querySelectorAll(
                     '[data-testid=stAlertContentInfo] [data-testid=stIconMaterial]').length}};
    }}""")


def open_step(page, app_url: str, li: int, si: int) -> None:
    lesson = LESSONS[li - 1]
    page.goto(f"{app_url}/lessons?lesson={li}&step={si}")
    page.get_by_role("heading", name=f"{li}. {lesson.title} · step {si} of {len(lesson.steps)}").wait_for(
        timeout=120_000)
    page.get_by_text("PageUp / PageDown").wait_for(timeout=600_000)  # drawn last: the step's figure is done
    wait_idle(page, timeout=600_000)


def assert_clean(page, name: str) -> None:
    text = page_text(page)
    assert "Traceback" not in text and page.locator("[data-testid=stException]").count() == 0, name
    found = blocking(run_axe(page))
    assert not found, f"{name}: axe-core found\n{describe(found)}"


@pytest.mark.parametrize("li,si", STEPS, ids=[f"lesson-{li}-{si}" for li, si in STEPS])
def test_every_step_renders_and_reveals_only_after_the_guess(app_url, page, li, si):
    step = LESSONS[li - 1].steps[si - 1]
    open_step(page, app_url, li, si)
    assert step.text.split(".")[0] in page_text(page)  # the step's own words
    assert_clean(page, f"lesson {li}.{si}")
    if step.view.kind in STAGE_KINDS:
        wait_stage(page)
    before = shown(page)
    if not step.question:
        if step.view.kind in STAGE_KINDS:
            assert before["T"] >= 1
        if (li, si) in SHOOT:
            page.screenshot(path=str(SHOTS / f"lesson-{li}-{si}.png"), full_page=True)
        return
    # before the reveal: the run stops where the question starts, and nothing else of the figure is drawn
    assert not before["answered"] and before["tables"] == 0 and before["findings"] == 0, before
    if step.view.kind in STAGE_KINDS:
        assert before["T"] == step.shown_before, before
    if (li, si) in SHOOT:
        page.screenshot(path=str(SHOTS / f"lesson-{li}-{si}-before.png"), full_page=True)
    page.get_by_text("Your guess").wait_for(timeout=30_000)
    page.locator("[data-testid=stMain] [data-testid=stRadio] [role=radiogroup] label").first.click()
    wait_idle(page)
    page.get_by_role("button", name="Reveal the answer").click()
    page.locator(ANSWER).first.wait_for(timeout=600_000)
    page.get_by_text("PageUp / PageDown").wait_for(timeout=600_000)
    wait_idle(page, timeout=600_000)
    after = shown(page)
    assert after["answered"], after
    if step.view.kind in STAGE_KINDS:
        wait_stage(page)
        after = shown(page)
        assert after["T"] >= 1 and after["T"] >= before["T"], after
    assert (after["T"] or 0) > (before["T"] or 0) or after["tables"] or after["findings"] or after["charts"] \
        or step.view.kind in ("train", "lab"), after  # the rest of the step is there now
    assert_clean(page, f"lesson {li}.{si}, revealed")
    if (li, si) in SHOOT:
        page.screenshot(path=str(SHOTS / f"lesson-{li}-{si}-after.png"), full_page=True)


def test_a_lesson_on_the_projector(app_url, browser):
    """Presenter mode at 1920x1080: the stage with the lesson's text above it, at least 28 px."""
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(app_url + "/lessons?lesson=1&step=2&present=1")
    s = wait_stage(page)
    assert s["present"] is True
    lead = page.evaluate(f"""() => {{ const l = {STAGE}.root.querySelector('.lead');
        const r = l.getBoundingClientRect();
        return {{text: l.innerText, px: parseFloat(getComputedStyle(l).fontSize), w: r.width, h: r.height}}; }}""")
    assert LESSONS[0].steps[1].text.split(".")[0] in lead["text"] and lead["px"] >= 28 and lead["h"] > 0, lead
    assert page.evaluate(f"() => {STAGE}.gridFontPx") >= 28
    page.screenshot(path=str(SHOTS / "lesson-1-2-presenter-1920.png"))
    page.close()
