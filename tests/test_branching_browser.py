"""Editing mid-run in a real browser: click a unit on the paused stage, pin it, continue as a branch,
and see the branch drawn under its original from the parting step (Reverse and Real pages)."""

from browser_util import SHOTS, STAGE, open_and_wait, page_text, wait_idle, wait_stage

LANES = f"{STAGE}.lanes.map(l => ({{from: l.from, tokens: l.tokens, fixed: l.fixed}}))"


def lanes(page) -> list[dict]:
    return page.evaluate(f"() => {LANES}")


def wait_lanes(page, n: int) -> list[dict]:
    try:
        page.wait_for_function(f"() => {STAGE} && {STAGE}.root.isConnected && {STAGE}.lanes.length === {n}",
                               timeout=20_000, polling=200)
    except Exception:
        page.screenshot(path=str(SHOTS / "lanes-debug.png"), full_page=True)
        raise
    page.wait_for_function(f"() => {STAGE} && {STAGE}.root.isConnected && {STAGE}.lanes.length === {n}",
                           timeout=60_000, polling=200)
    wait_idle(page)
    return lanes(page)


def test_edit_mid_run_and_branch_on_the_reverse_page(browser, app_url):
    page = open_and_wait(browser, f"{app_url}/reverse?variant=masked&steps=6&seed=3&step=3",
                         "Reverse process: from noise to a sentence", height=1500)
    assert wait_stage(page)["k"] == 3
    page.locator(".dlm-stage .seq .cell").nth(1).click()  # position 2 of the original, at step 3
    page.get_by_text("Step in at step 3").wait_for(timeout=30_000)
    wait_idle(page)
    panel = page.locator("[data-testid='stExpander']").filter(has_text="Step in at step 3")
    assert panel.locator("[data-testid='stSelectbox'] input").first.input_value() == "2"  # the clicked one
    units = panel.locator("[data-testid='stSelectbox']").nth(1)
    units.click()
    page.get_by_role("option", name="friend", exact=True).click()
    wait_idle(page)
    assert "position 2: pin to “friend”" in page_text(page)
    page.screenshot(path=str(SHOTS / "reverse-edit-step3.png"))
    page.get_by_role("button", name="Continue from step 3 as a new branch").click()
    original, branch = wait_lanes(page, 2)
    assert branch["from"] == 3 and branch["tokens"][:4] == original["tokens"][:4]  # the shared first 3 steps
    friend = 8  # toy_language.ID["friend"]
    assert all(row[1] == friend for row in branch["tokens"][4:]) and 1 in branch["fixed"]
    stage_text = page.evaluate(f"() => {STAGE}.root.innerText")  # the stage lives in a shadow root
    assert "Original" in stage_text and "Branch 1 · from step 3: pos 2 = friend" in stage_text
    page.evaluate(f"() => {STAGE}.go(6)")
    page.wait_for_timeout(300)
    page.locator(".dlm-stage").screenshot(path=str(SHOTS / "reverse-branch-beside-original.png"))
    # the downloads now follow the branch: its JSON names the parting step
    with page.expect_download() as dl:
        page.get_by_role("button", name="Trajectory (JSON)").click()
    import json

    saved = json.loads(open(dl.value.path()).read())
    assert saved["branch"]["from_step"] == 3 and saved["branch"]["pins"] == [[1, friend]]
    page.close()


def test_edit_and_branch_on_the_real_page(browser, app_url):
    page = open_and_wait(browser, f"{app_url}/real?real_gen_length=16&real_steps=16&real_block_length=16",
                         "Real model: a masked diffusion LM writing real text", height=2600)
    page.get_by_role("button", name="Generate").click()
    wait_stage(page)
    wait_idle(page)
    page.evaluate(f"() => {STAGE}.go(6)")
    page.locator(".dlm-stage .seq .cell:visible").nth(0).wait_for()  # [CLS] and [SEP] are in the DOM, hidden
    info = page.evaluate(f"() => ({{gen: {STAGE}.data.rows[0], n: {STAGE}.cells.length}})")
    page.locator(".dlm-stage .seq .cell").nth(info["gen"] + 2).click()  # the third generated token
    page.get_by_text("Step in at step 6").wait_for(timeout=30_000)
    wait_idle(page)
    page.screenshot(path=str(SHOTS / "real-edit-debug.png"), full_page=True)
    page.get_by_role("button", name="Continue from step 6 as a new branch").click()
    original, branch = wait_lanes(page, 2)
    assert branch["from"] == 6 and branch["tokens"][:7] == original["tokens"][:7]
    pinned = info["gen"] + 2
    assert pinned in branch["fixed"] and len({row[pinned] for row in branch["tokens"][7:]}) == 1
    page.evaluate(f"() => {STAGE}.go({STAGE}.data.T)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(SHOTS / "real-branch.png"), full_page=True)
    page.close()
