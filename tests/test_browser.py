"""The app as a user sees it: `streamlit run` + headless Debian Chromium (Playwright).

Screenshots go to artifacts/screenshots/ (looked at by a person after UI changes)."""

import json
import time

import pytest
from browser_util import (
    ROOT,
    SHOTS,
    STAGE,
    open_and_wait,
    page_text,
    stage_state,
    wait_idle,
    wait_stage,
    wait_stage_step,
)

pytestmark = pytest.mark.browser
REVERSE = "Reverse process: from noise to a sentence"
REAL = "Real model: a masked diffusion LM writing real text"


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


def views_at(page, k: int) -> None:
    """Wait until the page's views below the stage follow step k (reported when the player is paused)."""
    page.get_by_role("heading", name=f"What the model predicts at step {k}").wait_for(timeout=30_000)
    wait_idle(page)


def test_reverse_page_steps_first_middle_last(app_url, browser):
    page = open_and_wait(browser, app_url + "/reverse?strategy=low-confidence&steps=6&seed=0", REVERSE)
    nav = page.get_by_test_id("stSidebarNav").inner_text()
    assert nav.count("Reverse process") == 1 and "shared" not in nav
    assert wait_stage(page) == {"k": 6, "T": 6, "playing": False, "present": False, "start": 6}
    page.get_by_role("button", name="|◀ First", exact=True).click()
    wait_stage_step(page, 0)
    views_at(page, 0)
    page.screenshot(path=str(SHOTS / "reverse-first.png"), full_page=True)
    for k in range(1, 4):
        page.get_by_role("button", name="Next ▶", exact=True).click()
        wait_stage_step(page, k)  # at once, in the browser
    views_at(page, 3)  # and the views below follow once the player reports the step
    assert "step=3" in page.url  # the step is in the link
    page.screenshot(path=str(SHOTS / "reverse-middle.png"), full_page=True)
    page.get_by_role("button", name="Last ▶|", exact=True).click()
    wait_stage_step(page, 6)
    views_at(page, 6)
    assert page.get_by_text("A valid sentence of the toy language.").count() + page.get_by_text(
        "Not a sentence of the toy language").count() == 1
    page.screenshot(path=str(SHOTS / "reverse-last.png"), full_page=True)
    page.close()


def test_play_runs_in_the_browser_without_a_server_round_trip(app_url, browser):
    page = open_and_wait(browser, app_url + "/reverse?steps=8&speed=0.15", REVERSE, height=1000)
    wait_stage(page)
    frames = {"n": 0, "counting": False}

    def count(_frame) -> None:
        frames["n"] += frames["counting"]

    page.on("websocket", lambda ws: (ws.on("framesent", count), ws.on("framereceived", count)))
    page.reload()
    wait_idle(page)
    wait_stage(page)
    page.get_by_role("button", name="|◀ First", exact=True).click()
    wait_stage_step(page, 0)
    wait_idle(page)
    page.wait_for_timeout(800)  # the step report of the click has gone and come back
    frames["counting"] = True
    page.get_by_role("button", name="▶ Play", exact=True).click()
    page.wait_for_function(f"() => {STAGE}.k === 8 && !{STAGE}.playing", timeout=30_000)
    frames["counting"] = False
    assert frames["n"] == 0  # 8 steps played, not one websocket message
    log = page.evaluate(f"() => {STAGE}.log.slice(-9).map(([k, t]) => [k, t])")
    assert [k for k, _ in log] == list(range(0, 9))
    gaps = [(b - a) / 1000 for (_, a), (_, b) in zip(log[1:], log[2:])]
    assert all(0.1 < g < 0.4 for g in gaps), gaps  # about the chosen 0.15 s (timing: see bench/player_browser.py)
    page.get_by_role("button", name="▶ Play", exact=True).wait_for(timeout=10_000)  # the button reads Play again
    page.close()


def press(page, key: str) -> None:
    page.keyboard.press(key)
    page.wait_for_timeout(50)


def check_keyboard_and_presenter(page, shot: str) -> dict:
    s = wait_stage(page)
    page.mouse.click(5, 300)  # focus the page (not a text field)
    press(page, "Home")
    assert stage_state(page)["k"] == 0
    press(page, "ArrowRight")
    press(page, "ArrowRight")
    assert stage_state(page)["k"] == 2
    press(page, "ArrowLeft")
    assert stage_state(page)["k"] == 1
    press(page, "End")
    assert stage_state(page)["k"] == s["T"]
    press(page, "Home")
    press(page, " ")
    assert stage_state(page)["playing"] is True
    press(page, " ")
    assert stage_state(page)["playing"] is False
    press(page, "f")
    assert stage_state(page)["present"] is True
    press(page, "End")
    page.wait_for_timeout(300)
    sizes = page.evaluate(f"""() => {{
        const s = {STAGE}, cell = s.cells[0], r = s.root.getBoundingClientRect();
        return {{chip: parseFloat(getComputedStyle(cell).fontSize), grid: s.gridFontPx,
                 caption: getComputedStyle(s.stepInfo).color, cover: [r.width, r.height],
                 transportBottom: s.scrub.getBoundingClientRect().bottom}};
    }}""")
    assert sizes["chip"] >= 28 and sizes["cover"] == [1920, 1080], sizes
    assert sizes["transportBottom"] <= 1080  # sentence, grid, legend and transport on one screen
    page.screenshot(path=str(SHOTS / shot))
    press(page, "Escape")
    assert stage_state(page)["present"] is False
    return sizes


def test_keyboard_and_presenter_mode_on_reverse(app_url, browser):
    page = open_and_wait(browser, app_url + "/reverse?steps=6", REVERSE, height=1080, width=1920)
    sizes = check_keyboard_and_presenter(page, "reverse-presenter-1920.png")
    assert sizes["grid"] >= 18, sizes
    page.goto(app_url + "/reverse?steps=12&present=1&step=5")  # presenter mode from the link
    wait_idle(page)
    s = wait_stage(page)
    assert s["present"] is True and s["k"] == 5
    page.screenshot(path=str(SHOTS / "reverse-presenter-link-1920.png"))
    page.close()


def generate_real(page, timeout=300_000) -> dict:
    page.get_by_text("Model ready").wait_for(timeout=120_000)
    page.get_by_role("button", name="Generate").click()
    page.wait_for_function(f"() => {STAGE} && {STAGE}.data.kind === 'text'", timeout=timeout)
    wait_idle(page)
    return stage_state(page)


def test_keyboard_and_presenter_mode_on_real(app_url, browser):
    page = open_and_wait(browser, app_url + "/real?real_gen_length=32&real_steps=16&real_block_length=16"
                         "&real_cache=dual", REAL, height=1080, width=1920)
    generate_real(page)
    # the block cache (dual): each block's first step computes every position, its others the block's 16
    marks = page.evaluate(f"() => {STAGE}.data.recomputed")
    assert [m.count("1") for m in marks[1:]] == [len(marks[1])] + [16] * 7 + [len(marks[1])] + [16] * 7
    assert "computed by this step's pass (block cache)" in page.evaluate(f"() => {STAGE}.root.textContent")
    check_keyboard_and_presenter(page, "real-presenter-1920.png")
    page.close()


def test_real_model_live_generation_and_replay(app_url, browser):
    page = open_and_wait(browser, app_url + "/real?real_gen_length=64&real_steps=64&real_block_length=32", REAL,
                         height=2200)
    page.get_by_text("Model ready").wait_for(timeout=120_000)
    page.get_by_role("button", name="Generate").click()
    # streaming: the steps arrive one by one while the generation runs
    page.wait_for_function("() => { const m = document.body.innerText.match(/step (\\d+) \\/ 64/);"
                           " return m && +m[1] >= 4 && +m[1] < 64; }", timeout=120_000, polling=50)
    page.screenshot(path=str(SHOTS / "real-live.png"), full_page=True)
    page.wait_for_function(f"() => {STAGE} && {STAGE}.data.T === 64", timeout=300_000)
    wait_idle(page)
    s = stage_state(page)
    assert s["k"] == 64
    rows = page.evaluate(f"() => {STAGE}.data.rows")
    assert len(rows) == 64  # the generated part; the prompt's rows are folded away
    wait_svg_figures(page, 2)  # the top-k of a position and the confidence of each commit
    page.screenshot(path=str(SHOTS / "real-after.png"), full_page=True)
    page.get_by_role("button", name="|◀ First", exact=True).click()
    wait_stage_step(page, 0)
    page.close()


def wait_svg_figures(page, n: int) -> None:
    """Wait for n figures drawn as inline SVG / HTML (svg_figures) to be laid out, and no plotly chart."""
    page.wait_for_function("""(n) => {
        const figs = [...document.querySelectorAll('[data-testid=stMarkdownContainer] [role=figure],'
                                                   + ' [data-testid=stMarkdownContainer] svg[role=img]')];
        return figs.filter(f => f.getBoundingClientRect().height > 40).length >= n; }""", arg=n, timeout=60_000)
    assert page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length") == 0


@pytest.mark.parametrize("variant", ["masked", "uniform", "gaussian"])
def test_forward_page_mid_t(app_url, browser, variant):
    page = open_and_wait(browser, f"{app_url}/forward?fwd_variant={variant}&fwd_t=0.5&fwd_seed=1",
                         "Forward process: how each kind of noise destroys a sentence")
    s = wait_stage(page)
    assert s["k"] == 10 and s["T"] == 20  # t = 0.5 on the 20-level sweep
    legend = page.evaluate(f"() => [...{STAGE}.root.querySelectorAll('.legend .chip')].map(c => c.textContent)")
    assert "clean (still the sentence's unit)" in legend  # forward words, not the reverse process's
    wait_svg_figures(page, 2)  # q(z_t | x) (or the embedding picture) and the schedule
    wait_idle(page)
    page.screenshot(path=str(SHOTS / f"forward-{variant}.png"), full_page=True)
    page.close()


@pytest.mark.parametrize("variant", ["uniform", "gaussian"])
def test_reverse_page_middle_step_uniform_gaussian(app_url, browser, variant):
    page = open_and_wait(browser, f"{app_url}/reverse?variant={variant}&steps=6&seed=0&step=3", REVERSE, height=2300)
    assert wait_stage(page)["k"] == 3
    views_at(page, 3)
    wait_svg_figures(page, 3 if variant == "gaussian" else 2)  # prediction, self-correction (, embedding paths)
    wait_idle(page)
    page.screenshot(path=str(SHOTS / f"reverse-{variant}-middle.png"), full_page=True)
    page.close()


def test_phone_width_has_no_horizontal_scroll(app_url, browser):
    page = open_and_wait(browser, app_url + "/reverse?steps=24&step=12", REVERSE, height=844, width=390)
    wait_stage(page)
    page.wait_for_timeout(500)
    widths = page.evaluate(f"""() => ({{page: document.scrollingElement.scrollWidth,
        stage: {STAGE}.root.scrollWidth, transport: {STAGE}.scrub.getBoundingClientRect().right}})""")
    assert widths["page"] <= 390 and widths["stage"] <= 390 and widths["transport"] <= 390, widths
    page.screenshot(path=str(SHOTS / "reverse-phone-390.png"), full_page=True)
    page.close()


def test_compare_page_opens_fast_from_the_shipped_results(app_url, browser):
    page = browser.new_page(viewport={"width": 1400, "height": 2600})
    t0 = time.perf_counter()
    page.goto(app_url + "/compare")
    page.locator("[data-testid=stMarkdownContainer] table").first.wait_for(timeout=60_000)
    seconds = time.perf_counter() - t0  # a benchmark figure (reported, not asserted)
    (ROOT / "artifacts" / "compare-open-seconds.json").write_text(json.dumps({"seconds_to_table": seconds}))
    wait_idle(page)
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length === 2", timeout=60_000)
    page.screenshot(path=str(SHOTS / "compare.png"), full_page=True)
    sections = [("Strategies and schedules", 3), ("Threshold decoding", 1), ("One seed, every variant", 4)]
    for section, charts in sections:
        page.get_by_test_id("stButtonGroup").get_by_text(section, exact=True).click()
        page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot').length === {charts}",
                               timeout=60_000)
        wait_idle(page)
        page.screenshot(path=str(SHOTS / f"compare-{section.split()[0].lower()}.png"), full_page=True)
    page.close()


def test_exported_json_opens_again_to_the_same_view(app_url, browser, tmp_path):
    page = open_and_wait(browser, app_url + "/reverse?steps=6&seed=3&strategy=random", REVERSE)
    wait_stage(page)
    original = page.evaluate(f"() => JSON.stringify([{STAGE}.data.tokens, {STAGE}.data.states])")
    with page.expect_download() as dl:
        page.get_by_role("button", name="Trajectory (JSON)").click()
    path = tmp_path / "shared.json"
    dl.value.save_as(path)
    page.close()
    page = open_and_wait(browser, app_url + "/reverse?steps=3&seed=9", REVERSE)  # other settings
    page.get_by_text("Open a shared trajectory").click()
    page.locator("input[type=file]").set_input_files(str(path))
    page.get_by_text("Showing the trajectory from shared.json").wait_for(timeout=30_000)
    page.wait_for_function(f"() => {STAGE} && {STAGE}.data.T === 6", timeout=30_000)
    assert page.evaluate(f"() => JSON.stringify([{STAGE}.data.tokens, {STAGE}.data.states])") == original
    # a file that is not a trajectory: a clear message, its text never drawn as HTML
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"variant": "<img src=x onerror=alert(1)>", "vocab": ["a"], "initial": [5],
                               "records": []}))
    page.locator("input[type=file]").set_input_files(str(bad))
    page.get_by_text("could not be opened").wait_for(timeout=30_000)
    assert page.locator("img[src=x]").count() == 0 and "Traceback" not in page_text(page)
    page.close()


def test_train_then_pick_the_model_on_the_reverse_page(app_url, browser):
    page = open_and_wait(browser, app_url + "/train", "Train a toy diffusion model, live")
    page.get_by_role("spinbutton", name="Steps").fill("300")
    page.get_by_role("button", name="Start training").click()
    page.get_by_role("button", name="Stop").wait_for(timeout=120_000)  # live progress while it trains
    page.wait_for_function("() => /step ([1-9][0-9]*) \\/ 300/.test(document.body.innerText)", timeout=120_000)
    page.screenshot(path=str(SHOTS / "train-running.png"), full_page=True)
    page.get_by_text("Done after 300 steps").wait_for(timeout=300_000)
    wait_idle(page)
    page.screenshot(path=str(SHOTS / "train-done.png"), full_page=True)
    page.get_by_test_id("stSidebarNav").get_by_text("Reverse process").click()
    page.get_by_role("heading", name=REVERSE).wait_for(timeout=60_000)
    wait_idle(page)
    page.get_by_role("combobox", name="Model").click()
    page.get_by_text("trained here: masked, 300 steps", exact=False).last.click()
    wait_idle(page)
    page.wait_for_function("() => [...document.querySelectorAll('input[aria-label=\"Model\"]')]"
                           ".some(e => e.value.includes('trained here: masked, 300 steps'))")
    wait_idle(page)
    page.screenshot(path=str(SHOTS / "reverse-trained-model.png"), full_page=True)
    page.close()
