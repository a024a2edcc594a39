"""The conventions of a classroom in the real browser: a page inside a learning platform's iframe
(?embed=true), nothing fetched from outside (the favicon is the app's own), a lesson's handout in print,
and the states told apart without colour (a greyscale copy of the stage).
Screenshots: artifacts/screenshots/embed-*.png, handout-print.png, stage-marks*.png."""

from __future__ import annotations

import pytest
from browser_util import SHOTS, STAGE, wait_idle, wait_stage
from PIL import Image, ImageOps

from dlm_core.render import palette

pytestmark = pytest.mark.browser
STREAMLIT_PROBES = ("/_stcore/health", "/_stcore/host-config")  # streamlit/streamlit#7074, on a deep link


def test_a_page_inside_an_iframe_with_embed_true(app_url, browser, tmp_path):
    host = tmp_path / "course.html"
    host.write_text(f"""<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Week 5</title></head>
<body style="margin:16px;font-family:sans-serif"><h1>Week 5: diffusion language models</h1>
<iframe src="{app_url}/reverse?embed=true&steps=6" width="1000" height="760" title="Diffusion LM visualiser"
 allow="fullscreen"></iframe></body></html>""", encoding="utf-8")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.goto(host.as_uri())
    page.frame_locator("iframe").get_by_role("heading", name="Reverse process").wait_for(timeout=60_000)
    frame = page.frames[1]
    wait_idle(frame)
    wait_stage(frame)
    box = frame.evaluate(f"""() => ({{scroll: document.scrollingElement.scrollWidth, width: window.innerWidth,
        embedded: !!document.querySelector('.streamlit-embedded'),
        stage: {STAGE}.root.getBoundingClientRect().right, scrub: {STAGE}.scrub.getBoundingClientRect().right}})""")
    assert box["embedded"] and box["scroll"] <= box["width"] == 1000, box  # no sideways scrolling in the frame
    assert box["stage"] <= 1000 and box["scrub"] <= 1000, box
    page.screenshot(path=str(SHOTS / "embed-reverse.png"))
    frame.get_by_role("heading", name="Reverse process").click()  # the keys reach the stage inside the frame
    page.keyboard.press("f")
    frame.wait_for_function(f"() => {STAGE}.present === true", timeout=5_000)
    cover = frame.evaluate(f"() => {{ const r = {STAGE}.root.getBoundingClientRect(); return [r.width, r.height]; }}")
    assert cover == [1000, 760], cover  # presenter mode fills the frame
    page.screenshot(path=str(SHOTS / "embed-reverse-presenter.png"))
    page.close()


@pytest.mark.parametrize("path", ["/", "/lessons?lesson=1&step=1", "/reverse", "/poll"])
def test_nothing_is_fetched_from_outside_and_the_console_is_clean(app_url, browser, path):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=False)
    outside, errors = [], []
    context.on("request", lambda r: outside.append(r.url) if not r.url.startswith((app_url, "data:", "blob:"))
               else None)
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    failed = []
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(app_url + path)
    page.locator("h1").first.wait_for(timeout=60_000)
    wait_idle(page)
    icons = page.evaluate("() => [...document.querySelectorAll('link[rel~=icon]')].map((l) => l.href)")
    assert icons and all(i.startswith(app_url) for i in icons), icons  # the favicon is served by the app
    assert outside == [], outside
    unexpected = [u for u in failed if not u.endswith(STREAMLIT_PROBES)]
    assert unexpected == [], unexpected
    assert len([e for e in errors if "Failed to load resource" not in e]) == 0, errors
    assert len(errors) == len(failed)  # each console error is one of Streamlit's own probes above
    context.close()


def test_the_handout_prints_without_its_button(browser, tmp_path):
    from dlm_core.classroom.handout import handout_html
    from dlm_core.studies import training
    from dlm_core.variants.registry import VARIANTS

    models = {v: training.load_checkpoint(training.default_checkpoint(v))[0] for v in VARIANTS}
    file = tmp_path / "handout.html"
    file.write_text(handout_html(1, models), encoding="utf-8")  # toy steps only: no real model to load
    page = browser.new_page(viewport={"width": 900, "height": 1200})
    page.goto(file.as_uri())
    assert page.get_by_role("button", name="Print / save as PDF").is_visible()
    page.emulate_media(media="print")
    assert not page.get_by_role("button", name="Print / save as PDF").is_visible()
    sizes = page.evaluate("() => [...document.images].map((i) => [i.naturalWidth, i.getBoundingClientRect().width])")
    assert sizes and all(n > 0 and 0 < w <= 900 for n, w in sizes), sizes  # every figure loaded, within the page
    page.screenshot(path=str(SHOTS / "handout-print.png"), full_page=True)
    page.close()


def test_the_states_are_told_apart_in_greyscale(app_url, browser):
    """The player's chips, grid and legend with each state's mark, and a greyscale copy in which every state
    still differs from every other (by its mark, where two fills turn the same grey)."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(app_url + "/reverse?variant=uniform&steps=6&seed=0&step=3")
    wait_stage(page)
    wait_idle(page)
    root = page.locator(".dlm-stage").first
    shot = SHOTS / "stage-marks.png"
    root.screenshot(path=str(shot))
    ImageOps.grayscale(Image.open(shot)).save(SHOTS / "stage-marks-grey.png")
    marks = page.evaluate(f"""() => [...{STAGE}.root.querySelectorAll('.legend .chip')].map((c) => {{
        const after = getComputedStyle(c, '::after'), cs = getComputedStyle(c);
        return [c.className, cs.borderTopStyle, after.content, cs.textDecorationLine]; }})""")
    shapes = {cls.split()[-1]: (border == "dashed", content not in ("none", "normal", '""'), line == "line-through")
              for cls, border, content, line in marks}
    assert shapes["s-mask"] == (True, False, False) and shapes["s-changed"][1] and shapes["s-committed_earlier"] == (
        False, False, False), shapes
    assert len(set(shapes.values())) == len(shapes)  # each state has its own shape
    grey = {s: round(palette.luminance(palette.STATES[s][0]), 2) for s in palette.STATE_ORDER}
    for a in palette.STATE_ORDER:  # where two fills are close in grey, their marks differ
        for b in palette.STATE_ORDER:
            if a < b and abs(grey[a] - grey[b]) < 0.1:
                assert palette.MARKS[a][0] != palette.MARKS[b][0], (a, b)
    page.close()
