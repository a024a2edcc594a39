"""The stage and the lessons with a keyboard alone (Tab, Enter, Space, the arrow keys), a screen reader's
text of the step shown, reduced motion, and the projector's sizes, in the real browser.
Screenshots: artifacts/screenshots/keyboard-*.png (the focus ring), presenter-*.png."""

from __future__ import annotations

import pytest
from browser_util import SHOTS, STAGE, stage_state, wait_idle, wait_stage

from dlm_core.classroom.lessons import LESSONS, STAGE_KINDS
from dlm_core.classroom.questions import QUESTIONS
from dlm_core.render.palette import contrast

pytestmark = pytest.mark.browser

# the element that has the focus, looked for through the player's shadow root
ACTIVE = """() => { let a = document.activeElement;
  while (a && a.shadowRoot && a.shadowRoot.activeElement) a = a.shadowRoot.activeElement;
  if (!a) return null;
  const cs = getComputedStyle(a), r = a.getBoundingClientRect();
  return {tag: a.tagName.toLowerCase(), type: a.type || '', role: a.getAttribute('role') || '',
          name: (a.getAttribute('aria-label') || a.innerText || '').trim().slice(0, 80),
          cls: typeof a.className === 'string' ? a.className : '',
          outline: [cs.outlineStyle, parseFloat(cs.outlineWidth), cs.outlineColor],
          visible: r.width > 0 && r.height > 0};
}"""


def active(page) -> dict:
    return page.evaluate(ACTIVE) or {}


def tab_to(page, want, what: str, limit: int = 60) -> dict:
    """Press Tab until the focused element satisfies want(info) (at most `limit` presses)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        info = active(page)
        if info and want(info):
            return info
    raise AssertionError(f"Tab never reached {what}; the focus is on {active(page)}")


def rgb_hex(css: str) -> str:
    nums = [int(float(x)) for x in css[css.index("(") + 1:css.index(")")].split(",")[:3]]
    return "#" + "".join(f"{v:02X}" for v in nums)


def assert_focus_ring(info: dict) -> None:
    style, width, colour = info["outline"]
    assert style == "solid" and width >= 2, info
    assert contrast(rgb_hex(colour), "#FFFFFF") >= 3, info  # the ring shows on the page


def spoken(page) -> str:
    return page.evaluate(f"() => {STAGE}.live.textContent")


def play_and_scrub(page, shot: str | None = None) -> None:
    """Tab to Play, Space plays and pauses; Tab to the scrubber, the arrows step and the step is spoken."""
    s = wait_stage(page)
    info = tab_to(page, lambda a: a["tag"] == "button" and "Play" in a["name"], "the stage's Play button")
    assert_focus_ring(info)
    if shot:
        page.screenshot(path=str(SHOTS / shot))
    page.keyboard.press("Space")
    page.wait_for_function(f"() => {STAGE}.playing === true", timeout=5_000)
    page.wait_for_function(f"() => {STAGE}.k >= 1 && {STAGE}.k < {STAGE}.data.T || !{STAGE}.playing", timeout=10_000)
    page.keyboard.press("Space")  # the button again: pause
    page.wait_for_function(f"() => {STAGE}.playing === false", timeout=5_000)
    info = tab_to(page, lambda a: a["tag"] == "input" and a["type"] == "range", "the stage's scrubber", limit=6)
    assert_focus_ring(info)
    start = stage_state(page)["k"]
    page.keyboard.press("ArrowLeft" if start > 0 else "ArrowRight")
    k = stage_state(page)["k"]
    assert k == (start - 1 if start > 0 else 1) and s["T"] >= 1
    assert spoken(page) == page.evaluate(f"(k) => {STAGE}.data.alt[k]", k)  # the live region says the step shown
    assert spoken(page).startswith(page.evaluate(f"() => {STAGE}.data.step_name").capitalize() + f" {k} of ")


def answer_question(page, qid: str) -> None:
    """Tab to the guesses, Space picks the first, an arrow the second; Tab to Reveal, Enter."""
    q = QUESTIONS[qid]
    tab_to(page, lambda a: a["tag"] == "input" and a["type"] == "radio"
           and page.evaluate("() => !!document.activeElement.closest('[data-testid=stMain]')"), "the guesses")
    page.keyboard.press("Space")
    page.keyboard.press("ArrowRight")
    wait_idle(page)
    info = tab_to(page, lambda a: a["tag"] == "button" and "Reveal the answer" in a["name"], "Reveal", limit=8)
    assert_focus_ring(info)
    page.keyboard.press("Enter")
    page.wait_for_function("() => /Right!|Not quite/.test(document.body.innerText)", timeout=60_000)
    assert q.prompt in page.evaluate("() => document.body.innerText")


def next_step(page, heading: str) -> None:
    tab_to(page, lambda a: a["tag"] == "button" and "Next" in a["name"] and "▶" not in a["name"],
           "the lesson's Next button")
    page.keyboard.press("Enter")
    page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
    wait_idle(page)


def test_lessons_1_to_3_with_the_keyboard_alone(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(app_url + "/lessons?lesson=1&step=1")
    page.get_by_role("heading", name="Lessons: how diffusion language models write").wait_for(timeout=60_000)
    wait_idle(page)
    shot = "keyboard-focus-ring-play.png"
    for li, lesson in enumerate(LESSONS[:3], start=1):
        for si, step in enumerate(lesson.steps, start=1):
            heading = f"{li}. {lesson.title} · step {si} of {len(lesson.steps)}"
            page.get_by_role("heading", name=heading).wait_for(timeout=60_000)
            assert step.text.split(".")[0] in page.evaluate("() => document.body.innerText")  # read the step
            if step.question:  # first the guess: until its reveal the stage holds only the run's start
                answer_question(page, step.question)
                if step.view.kind in STAGE_KINDS:  # the whole run arrives with the answer
                    page.wait_for_function(f"() => {STAGE} && {STAGE}.root.isConnected && {STAGE}.data.T >= 1",
                                           timeout=60_000)
            if step.view.kind in STAGE_KINDS:
                play_and_scrub(page, shot)
                shot = None
            if (li, si) != (3, len(lesson.steps)):
                nxt = (li, si + 1) if si < len(lesson.steps) else (li + 1, 1)
                nl = LESSONS[nxt[0] - 1]
                next_step(page, f"{nxt[0]}. {nl.title} · step {nxt[1]} of {len(nl.steps)}")
    assert "lesson=3" in page.url and "step=2" in page.url
    page.close()


def test_reduced_motion_stops_autoplay_but_play_still_works(app_url, browser):
    url = app_url + "/reverse?steps=6&autoplay=1"
    moving = browser.new_context(viewport={"width": 1400, "height": 1000})
    still = browser.new_context(viewport={"width": 1400, "height": 1000}, reduced_motion="reduce")
    try:
        page = moving.new_page()
        page.goto(url)
        wait_stage(page)
        page.wait_for_function(f"() => {STAGE}.autoplayed === true && {STAGE}.playing === true", timeout=10_000)
        page = still.new_page()
        page.goto(url)
        wait_stage(page)
        wait_idle(page)
        state = page.evaluate(f"() => ({{auto: {STAGE}.autoplayed, reduced: {STAGE}.reducedMotion, "
                              f"log: {STAGE}.log.length, k: {STAGE}.k, T: {STAGE}.data.T}})")
        assert state["reduced"] is True and state["auto"] is False
        page.wait_for_timeout(1500)  # two play intervals: nothing moved by itself
        assert stage_state(page)["playing"] is False and stage_state(page)["k"] == state["T"]
        assert page.evaluate(f"() => {STAGE}.log.length") == state["log"]
        # Streamlit's own transitions are cut too (assets/theme/app.css)
        durations = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stMain] *')].slice(0, 400)
            .map((e) => parseFloat(getComputedStyle(e).transitionDuration) || 0)""")
        assert max(durations) < 0.01
        page.get_by_role("button", name="▶ Play").click()  # Play on request still plays
        page.wait_for_function(f"() => {STAGE}.playing === true && {STAGE}.k < {STAGE}.data.T", timeout=5_000)
    finally:
        moving.close()
        still.close()


def test_the_spoken_step_follows_the_trajectory(browser, tmp_path):
    """The exported player (the app's own, offline): each step's text against the trajectory itself."""
    from dlm_core.render.exports_html import standalone_html
    from dlm_core.studies import training
    from dlm_core.variants.registry import VARIANTS

    model, _ = training.load_checkpoint(training.default_checkpoint("masked"))
    traj = VARIANTS["masked"].trajectory(model, 6, 3, strategy="random")
    file = tmp_path / "run.html"
    file.write_text(standalone_html(traj, title="masked"), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(file.as_uri())
    wait_stage(page)
    page.locator(".dlm-stage .scrub").focus()
    for k in range(1, traj.n_steps + 1):
        page.keyboard.press("ArrowRight")
        text = spoken(page)
        units = ["mask" if t == traj.mask_id else traj.token_text(t).strip("[]") for t in traj.tokens_at(k)]
        assert text.startswith(f"Step {k} of {traj.n_steps}: {', '.join(units)}."), text
        committed = traj.records[k - 1].committed
        named = "; ".join(f"position {i + 1}, {units[i]}" for i in committed)
        assert f"Committed at this step: {named}." in text, text
        assert page.evaluate(f"() => {STAGE}.altEl.textContent") == text
    assert page.evaluate(f"() => {STAGE}.live.getAttribute('aria-live')") == "polite"
    page.keyboard.press("Space")  # Play: the live region stays quiet while it plays
    page.wait_for_function(f"() => {STAGE}.playing && {STAGE}.k >= 1", timeout=5_000)
    said = spoken(page)
    page.wait_for_function(f"() => {STAGE}.k >= 2", timeout=5_000)
    assert spoken(page) == said
    page.close()


def stage_text_sizes(page) -> dict:
    return page.evaluate(f"""() => {{
        const s = {STAGE}, root = s.root;
        const px = (sel) => [...root.querySelectorAll(sel)].filter((e) => e.getBoundingClientRect().width > 0)
            .map((e) => parseFloat(getComputedStyle(e).fontSize));
        const r = s.canvas.getBoundingClientRect();
        return {{present: s.present, cellW: s.cellW, cellH: s.cellH, grid: s.gridFontPx, canvas: r.width,
                 cover: [root.getBoundingClientRect().width, root.getBoundingClientRect().height],
                 texts: [...px('.title'), ...px('.stepinfo'), ...px('.cell'), ...px('.chip'), ...px('button'),
                         ...px('select'), ...px('.speed-label'), ...px('.help'), ...px('.note')]}};
    }}""")


@pytest.mark.parametrize("path", ["/reverse?steps=6&present=1", "/reverse?steps=12&present=1",
                                  "/lessons?lesson=4&step=1&present=1", "/forward?present=1"])
def test_presenter_mode_fills_a_projector(app_url, browser, path):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(app_url + path)
    wait_stage(page)
    wait_idle(page)
    sizes = stage_text_sizes(page)
    assert sizes["present"] is True and sizes["cover"] == [1920, 1080], sizes
    assert sizes["canvas"] >= 0.9 * 1920 or sizes["cellW"] == 260, sizes  # the grid takes the width
    assert sizes["cellW"] >= 40 and sizes["cellH"] >= 40 and sizes["grid"] >= 28, sizes
    assert min(sizes["texts"]) >= 28, sizes
    bottom = page.evaluate(f"() => {STAGE}.scrub.getBoundingClientRect().bottom")
    assert bottom <= 1080  # sentence, grid, legend and transport on one screen
    page.screenshot(path=str(SHOTS / f"presenter-{path.strip('/').split('?')[0]}-{path.count('12') + 1}.png"))
    page.close()


def test_real_presenter_link_before_the_first_generation(app_url, browser):
    page = browser.new_page(viewport={"width": 1920, "height": 1080})
    page.goto(app_url + "/real?present=1&real_gen_length=32")
    wait_stage(page, timeout=120_000)
    wait_idle(page)
    s = stage_state(page)
    assert s["present"] is True and s["T"] == 0
    assert "nothing generated yet" in page.evaluate(f"() => {STAGE}.root.innerText")
    assert min(stage_text_sizes(page)["texts"]) >= 28
    page.screenshot(path=str(SHOTS / "presenter-real-waiting.png"))
    page.close()
