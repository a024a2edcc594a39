"""WCAG 2.1 AA in the real browser: axe-core's A and AA rules on every page a class uses (each lesson
step: tests/test_lessons_browser.py; each Reverse variant, each Compare section, Real after a generation, the
poll's teacher and student views, the exported HTML player). A violation of impact serious or critical fails; the few
that come from Streamlit itself are listed in tests/axe_util.STREAMLIT_EXCEPTIONS and the README."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from axe_util import blocking, describe, run_axe
from browser_util import SHOTS, STAGE, wait_idle, wait_stage

pytestmark = pytest.mark.browser

COMPARE_SECTIONS = ["Quality against steps", "Strategies and schedules", "Threshold decoding",
                    "One seed, three variants"]
PAGES = ([("home", "/")]  # every lesson step: tests/test_lessons_browser.py, before and after its reveal
         + [("forward", "/forward")]
         + [(f"reverse-{v}", f"/reverse?variant={v}") for v in ("masked", "uniform", "gaussian")]
         + [("infill", "/infill")]
         + [(f"compare-{j}", "/compare?cmp_view=" + quote(c)) for j, c in enumerate(COMPARE_SECTIONS)]
         + [("order", "/order"), ("train", "/train"), ("poll", "/poll")])


@pytest.fixture(scope="module")
def page(browser):
    p = browser.new_page(viewport={"width": 1400, "height": 1000})
    yield p
    p.close()


def open_page(page, url: str) -> None:
    page.goto(url)
    page.locator("h1").first.wait_for(timeout=60_000)
    wait_idle(page)
    assert not page.get_by_text("Page not found").count(), url  # Streamlit's dialog for a path it does not know


def assert_no_blocking(page, name: str) -> None:
    found = blocking(run_axe(page))
    assert not found, f"{name}: axe-core found\n{describe(found)}"


@pytest.mark.parametrize("name,path", PAGES, ids=[n for n, _ in PAGES])
def test_axe_finds_nothing_serious(app_url, page, name, path):
    open_page(page, app_url + path)
    if "stage" in name or name.startswith(("reverse", "forward")):
        wait_stage(page)
    assert_no_blocking(page, name)


def test_axe_on_real_after_a_generation(app_url, page):
    open_page(page, app_url + "/real?real_gen_length=16&real_steps=8&real_block_length=16")
    page.get_by_text("Model ready").wait_for(timeout=120_000)
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function(f"() => {STAGE} && {STAGE}.data.kind === 'text'", timeout=300_000)
    wait_idle(page)
    assert_no_blocking(page, "real")


def test_axe_on_the_poll_teacher_and_student(app_url, page, browser):
    open_page(page, app_url + "/poll")
    page.get_by_role("button", name="Open a room").first.click()
    page.get_by_test_id("poll-code").wait_for(timeout=60_000)
    wait_idle(page)
    code = page.get_by_test_id("poll-code").get_attribute("aria-label")
    assert_no_blocking(page, "poll teacher")
    student = browser.new_context(viewport={"width": 390, "height": 844}).new_page()
    try:
        open_page(student, f"{app_url}/poll?room={code}")
        student.get_by_role("button", name="Send my answer").wait_for(timeout=60_000)
        assert_no_blocking(student, "poll student")
    finally:
        student.context.close()


def test_axe_on_the_exported_html_player(page, tmp_path):
    from dlm_core.render.exports_html import standalone_html
    from dlm_core.studies import training
    from dlm_core.variants.registry import VARIANTS

    model, _ = training.load_checkpoint(training.default_checkpoint("uniform"))
    file = tmp_path / "player.html"
    file.write_text(standalone_html(VARIANTS["uniform"].trajectory(model, 6, 0), title="uniform, 6 steps"))
    page.goto(file.as_uri())
    wait_stage(page)
    page.screenshot(path=str(SHOTS / "a11y-exported-player.png"), full_page=True)
    assert_no_blocking(page, "exported player")
