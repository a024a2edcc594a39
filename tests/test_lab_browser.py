"""The training lab in Chromium: a preset's runs go through the server's queue one after another and the page shows
their curves, the table and the verdict when they are done (a short preset, 20 steps per run: about half a minute
here, most of it the worker process starting and the exact measurements)."""

from browser_util import SHOTS, open_and_wait, page_text, wait_idle

LAB = "Training lab: how a diffusion LM is trained"


def test_a_preset_runs_to_completion_through_the_queue(app_url, browser):
    page = open_and_wait(browser, app_url + "/lab?lab_preset=instruction&lab_steps=20", LAB)
    page.get_by_role("button", name="Train the 2 runs").click()
    page.wait_for_function(  # the verdict, once both runs are measured
        "() => [...document.querySelectorAll('[data-testid=\"stAlertContentSuccess\"]')]"
        ".some(e => /^(Closest|All )/.test(e.innerText))", timeout=300_000, polling=500)
    wait_idle(page)
    text = page_text(page)
    assert "H(response | subject)" in text and "given a subject" in text
    assert page.locator(".js-plotly-plot").count() == 1
    page.screenshot(path=str(SHOTS / "training-lab.png"), full_page=True)
    page.close()
