"""Shared links: a malformed link never breaks a page, and a copied link reproduces the view.

Each `page.goto` is a new Streamlit session (the settings are read from the URL again: every link below
gets its own notice), but a fresh browser context is still started every few links so that no state of
one link can leak into the next. The browser only ever talks to the test server (`app_url`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from browser_util import SHOTS, STAGE, page_text, wait_idle, wait_stage
from playwright.sync_api import TimeoutError as PlaywrightTimeout

pytestmark = pytest.mark.browser

HEADINGS = {
    "home": "Seeing how diffusion language models write",
    "forward": "Forward process: how each kind of noise destroys a sentence",
    "reverse": "Reverse process: from noise to a sentence",
    "compare": "Compare the variants honestly",
    "train": "Train a toy diffusion model, live",
    "real": "Real model: a masked diffusion LM writing real text",
}
# keys every page writes to the URL once its script has run (pages/__init__.py: to_query)
WRITTEN = {
    "home": [],
    "forward": ["fwd_variant", "fwd_sentence", "fwd_schedule", "fwd_seed", "fwd_t"],
    "reverse": ["variant", "model", "steps", "seed", "speed", "step"],
    "compare": ["cmp_T", "cmp_view", "cmp_full"],  # and the keys of the section shown
    "train": ["train_variant", "train_steps", "train_lr", "train_width", "train_seed"],
    "real": ["real_source", "real_gen_length", "real_steps", "real_block_length", "real_seed", "real_prompt"],
}
NOTICE = "Some settings in the link were changed"
IMG = quote("<img src=x onerror=alert(1)>")
BOLD = quote("<b>bold</b>")
CUSTOM = quote("Hub id or local path")
STRATEGIES = quote("Strategies and schedules")  # Compare's sections (a section's settings are read when it shows)
SEED = quote("One seed, every variant")
NEW_CONTEXT_EVERY = 10


@dataclass
class Link:
    path: str  # after app_url
    page: str  # a key of HEADINGS
    noted: tuple[str, ...] = ()  # the keys the notice must name (empty: no notice at all)
    texts: tuple[str, ...] = ()  # more text the page must show (an error, a warning, the HTML as text)


MALFORMED = [
    # Reverse
    Link("/reverse?steps=0&seed=-5", "reverse", ("steps", "seed")),
    Link("/reverse?steps=abc&seed=1e99", "reverse", ("steps", "seed")),
    Link("/reverse?steps=99999999999999999999999&seed=12.5", "reverse", ("steps", "seed")),
    Link("/reverse?strategy=ancestral&temperature=nan&eta=inf", "reverse", ("temperature", "eta")),
    Link("/reverse?temperature=-inf&eta=-0", "reverse", ("temperature",)),
    Link("/reverse?temperature=1e308&seed=" + "9" * 400, "reverse", ("temperature", "seed")),
    Link(f"/reverse?variant=bogus&strategy={IMG}", "reverse", ("variant", "strategy"),
         ("<img src=x onerror=alert(1)>",)),
    Link(f"/reverse?variant=gaussian&clamp={BOLD}", "reverse", ("clamp",), ("<b>bold</b>",)),
    Link("/reverse?block_length=4&schedule=zigzag", "reverse", ("block_length", "schedule")),
    Link("/reverse?steps=3&step=50", "reverse", ("step",)),
    Link("/reverse?step=-1", "reverse", ("step",)),
    Link("/reverse?speed=7&seed=%F0%9F%92%A5", "reverse", ("speed", "seed")),
    Link("/reverse?speed=fast&seed=%zz", "reverse", ("speed", "seed")),
    Link(f"/reverse?model={IMG}", "reverse", (),
         ("The link names a model trained in another session (“<img src=x onerror=alert(1)>”)",)),
    Link(f"/reverse?model={BOLD}&steps=", "reverse", ("steps",),
         ("The link names a model trained in another session (“<b>bold</b>”)",)),
    Link("/reverse?steps=&seed=&variant=", "reverse", ("steps", "seed", "variant")),
    Link("/reverse?steps=3&steps=50", "reverse"),  # repeated key: one of the two values, silently
    Link("/reverse?steps=5&block_length=2&strategy=random", "reverse", (),
         ("These settings don't work together",)),
    Link("/reverse?variant=" + "x" * 5000, "reverse", ("variant",)),
    Link(f"/reverse?{IMG}=1&{BOLD}={BOLD}", "reverse"),  # unknown keys are ignored
    # Forward
    Link(f"/forward?fwd_variant={IMG}&fwd_t=2", "forward", ("fwd_variant", "fwd_t")),
    Link("/forward?fwd_t=-0.5&fwd_seed=NaN", "forward", ("fwd_t", "fwd_seed")),
    Link(f"/forward?fwd_sentence={BOLD}&fwd_schedule=zigzag", "forward", ("fwd_sentence", "fwd_schedule"),
         ("<b>bold</b>",)),
    Link("/forward?fwd_seed=1000001&fwd_t=inf", "forward", ("fwd_seed", "fwd_t")),
    Link("/forward?fwd_t=0.5&fwd_t=abc&fwd_seed=&present=banana", "forward", ("fwd_t", "fwd_seed", "present")),
    Link("/forward?fwd_sentence=" + "y" * 5000, "forward", ("fwd_sentence",)),
    # Compare
    Link(f"/compare?cmp_view={STRATEGIES}&cmp_T=7&cmp_strategy_T=-1", "compare", ("cmp_T", "cmp_strategy_T")),
    Link(f"/compare?cmp_view={SEED}&cmp_seed=abc&cmp_seed_steps=5", "compare", ("cmp_seed", "cmp_seed_steps")),
    Link(f"/compare?cmp_view={SEED}&cmp_seed=99999999&cmp_full={BOLD}", "compare", ("cmp_seed", "cmp_full"),
         ("<b>bold</b>",)),
    Link(f"/compare?cmp_view={SEED}&cmp_T=&cmp_seed_steps=1e400", "compare", ("cmp_T", "cmp_seed_steps")),
    Link(f"/compare?cmp_view={STRATEGIES}&cmp_strategy_T=6.0&cmp_seed_steps=1e400", "compare", ("cmp_strategy_T",)),
    Link(f"/compare?cmp_view={IMG}", "compare", ("cmp_view",), ("<img src=x onerror=alert(1)>",)),
    # Train
    Link("/train?train_steps=0&train_lr=abc", "train", ("train_steps", "train_lr")),
    Link(f"/train?train_width=33&train_seed=-1&train_variant={IMG}", "train",
         ("train_width", "train_seed", "train_variant")),
    Link("/train?train_steps=1e9&train_lr=inf", "train", ("train_steps", "train_lr")),
    Link("/train?train_lr=0.002&train_width=64.0&train_steps=99999999", "train", ("train_width", "train_steps")),
    # Real (the embedded model; nothing is generated)
    Link("/real?real_gen_length=0&real_steps=-3&real_block_length=100000", "real",
         ("real_gen_length", "real_steps", "real_block_length")),
    Link("/real?real_temperature=nan&real_seed=abc&real_strategy=bogus", "real",
         ("real_temperature", "real_seed", "real_strategy")),
    Link(f"/real?real_source={IMG}&real_speed=0", "real", ("real_source", "real_speed")),
    Link("/real?real_cfg=-1&real_uncond=maybe&real_prompt_rows=2", "real", ("real_cfg", "real_uncond",
                                                                          "real_prompt_rows")),
    Link(f"/real?real_prompt={IMG}&real_gen_length=", "real", ("real_gen_length",)),
    Link(f"/real?real_prompt={BOLD}&real_temperature=inf", "real", ("real_temperature",)),
    # a path that does not exist (never a hub id: no network), with HTML in it: one clear error, as text
    Link(f"/real?real_source={CUSTOM}&real_custom=/nonexistent/{BOLD}", "real", (),
         ("No folder at '/nonexistent/<b>bold</b>'",)),
    # Home (and its /home alias)
    Link(f"/?present={BOLD}", "home"),
    Link(f"/home?foo={IMG}", "home"),
    Link("/home", "home"),
]

# bugs this file found (fixed): each case runs on its own, as a regression test
FIXED_BUGS = [
    pytest.param(Link("/reverse?pos=99", "reverse", ("pos",)), id="reverse-pos-clamped-with-a-notice"),
    pytest.param(Link("/reverse?present=banana", "reverse", ("present",)), id="reverse-present-invalid-noted"),
    pytest.param(Link("/real?real_prompt=" + "p" * 3000, "real", ("real_prompt",)), id="real-prompt-cut-noted"),
    pytest.param(Link("/forward?fwd_t=0.33", "forward", ("fwd_t",)), id="forward-t-between-levels-noted"),
]
NO_NOTICE = "no notice of the changed settings"

# the widgets as a user sees them: [label, value] in page order (checked radios only; the file uploader
# and the player's own controls left out)
WIDGETS_JS = """() => [...document.querySelectorAll('[data-testid=stSidebar] input, [data-testid=stSidebar] textarea,'
  + ' [data-testid=stMain] input, [data-testid=stMain] textarea')]
  .filter(e => e.type !== 'file' && !(e.type === 'radio' && !e.checked) && !e.closest('.dlm-stage'))
  .map(e => [e.getAttribute('aria-label') || e.type, e.type === 'checkbox' ? e.checked : e.value])"""

XSS_JS = """() => ({
  img: document.querySelectorAll('img[src="x"], [onerror]').length,
  bold: [...document.querySelectorAll('b, strong')].filter(e => e.textContent.trim() === 'bold').length,
})"""


EXCEPTION_JS = "!!document.querySelector('[data-testid=stException]')"


def _ran_js(link: Link) -> str:
    """True once the page's script has run: it wrote its settings to the URL (or, for a link that stops the
    page early, showed the expected text), or it failed (an exception box)."""
    has = [f"document.body.innerText.includes({t!r})" for t in link.texts]
    keys = [f"new URLSearchParams(location.search).has({k!r})" for k in WRITTEN[link.page]]
    return f"() => {EXCEPTION_JS} || ({' && '.join((has or keys) or ['true'])})"


def _notice_keys(text: str) -> set[str]:
    line = next((ln for ln in text.split("\n") if NOTICE in ln), "")
    return set(re.findall(r"(?:changed: |; )(\w+) = ", line))


def check_link(page, app_url: str, link: Link, dialogs: list) -> None:
    page.goto(app_url + link.path)
    try:
        page.get_by_role("heading", name=HEADINGS[link.page]).wait_for(timeout=60_000)
        page.wait_for_function(_ran_js(link), timeout=30_000)
        if link.noted:  # the notice is drawn just after the settings are written to the URL
            page.wait_for_function(f"() => {EXCEPTION_JS} || document.body.innerText.includes({NOTICE!r})",
                                   timeout=5_000)
    except PlaywrightTimeout:
        pass  # the checks below say what is missing
    wait_idle(page)
    text = page_text(page)
    try:
        assert page.locator("[data-testid=stException]").count() == 0, "an exception box"
        assert "Traceback" not in text, "a traceback"
        assert page.get_by_role("heading", name=HEADINGS[link.page]).count() == 1, "the page heading"
        for t in link.texts:
            assert t in text, f"missing text {t!r}"
        if link.noted:
            assert NOTICE in text, NO_NOTICE
            assert _notice_keys(text) == set(link.noted), f"the notice names {_notice_keys(text)}"
        else:
            assert NOTICE not in text, "a notice, though no setting was changed"
        assert page.evaluate(XSS_JS) == {"img": 0, "bold": 0}, "HTML from the link was rendered"
        assert not dialogs, f"a dialog fired: {dialogs}"
    except AssertionError as e:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "link-failure.png"), full_page=True)
        raise AssertionError(f"{link.path[:200]}: {e}\n--- page text ---\n{text[-3000:]}") from e


def _new_page(browser, dialogs: list):
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    return context, page


def test_malformed_links_never_show_a_traceback(app_url, browser):
    assert len(MALFORMED) >= 30
    dialogs: list = []
    failures = []
    context = page = None
    for i, link in enumerate(MALFORMED):
        if i % NEW_CONTEXT_EVERY == 0:
            if context is not None:
                context.close()
            context, page = _new_page(browser, dialogs)
        try:
            check_link(page, app_url, link, dialogs)
        except AssertionError as e:
            failures.append(str(e))
            context.close()  # a clean start for the next link
            context, page = _new_page(browser, dialogs)
    page.wait_for_timeout(500)  # a late onerror would fire by now
    context.close()
    assert not dialogs, f"a dialog fired: {dialogs}"
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("link", FIXED_BUGS)
def test_links_that_once_changed_a_value_silently(app_url, browser, link):
    dialogs: list = []
    context, page = _new_page(browser, dialogs)
    try:
        check_link(page, app_url, link, dialogs)
    finally:
        context.close()


def test_real_pos_out_of_range_is_clamped_and_noted(app_url, browser):
    """real_pos is read once there is a generation; out of range, it is clamped and must be noted."""
    dialogs: list = []
    context, page = _new_page(browser, dialogs)
    try:
        page.goto(app_url + "/real?real_gen_length=16&real_steps=8&real_block_length=16&real_pos=999")
        page.get_by_text("Model ready").wait_for(timeout=180_000)
        wait_idle(page)
        page.get_by_role("button", name="Generate").click()
        wait_stage(page, timeout=180_000)
        wait_idle(page)
        try:
            page.wait_for_function(f"() => document.body.innerText.includes({NOTICE!r})", timeout=3_000)
        except PlaywrightTimeout:
            pass
        text = page_text(page)
        assert page.locator("[data-testid=stException]").count() == 0 and "Traceback" not in text
        value, top = page.evaluate("() => { const e = document.querySelector('input[aria-label^=\"Position\"]');"
                                   " return [e.value, e.max]; }")
        assert int(value) < 999 and (not top or value == top), (value, top)  # clamped to the last position
        assert not dialogs
        assert "real_pos" in _notice_keys(text)
    finally:
        context.close()


# ----------------------------------------------------------------------------- copied links


def widgets(page) -> list:
    return page.evaluate(WIDGETS_JS)


def stage_view(page) -> tuple[int, str]:
    return page.evaluate(f"() => [{STAGE}.k, JSON.stringify({STAGE}.data.tokens)]")


def query(page) -> dict:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query, keep_blank_values=True).items()}


def wait_query(page, key: str, value: str | float, timeout=30_000) -> None:
    """Wait until the URL holds key=value (a float: to 1e-9, as str(float) may write 0.35000000000000003)."""
    got = f"new URLSearchParams(location.search).get({key!r})"
    same = f"Math.abs(parseFloat({got}) - {value!r}) < 1e-9" if isinstance(value, float) else f"{got} === {value!r}"
    page.wait_for_function(f"() => {same}", timeout=timeout)
    wait_idle(page)


def stage_go(page, k: int, key: str, value: str | float) -> None:
    """Move the player to step k (as a user would) and wait until the step is written to the URL."""
    page.evaluate(f"() => {STAGE}.go({k})")
    wait_query(page, key, value)


def pick(page, label: str, option: str) -> None:
    page.get_by_role("combobox", name=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def type_number(page, label: str, value: int) -> None:
    box = page.locator(f'input[aria-label="{label}"]')
    box.fill(str(value))
    box.press("Enter")


def open_copy(browser, url: str, heading: str):
    """Open a copied link in a new browser context (a new user)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()
    page.goto(url)
    page.get_by_role("heading", name=heading).wait_for(timeout=90_000)
    wait_idle(page)
    return context, page


def same_widgets(page, expected: list, timeout=20_000) -> None:
    """Wait (the page draws its widgets one by one) until the widgets show `expected`, then check it."""
    try:
        page.wait_for_function(f"(exp) => JSON.stringify(({WIDGETS_JS})()) === JSON.stringify(exp)", arg=expected,
                               timeout=timeout)
    except PlaywrightTimeout:
        pass
    assert widgets(page) == expected, page.url


def copy_shows_the_same_stage(browser, url: str, heading: str, before: tuple) -> None:
    """A new user opening `url` sees the same widgets and the stage at the same step with the same units."""
    ctx2, copy = open_copy(browser, url, heading)
    wait_stage(copy)
    same_widgets(copy, before[0])
    assert stage_view(copy) == before[1], url
    ctx2.close()


def test_a_copied_link_reproduces_the_view(app_url, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1800})
    page = context.new_page()

    # Reverse: variant, steps, seed from a link, the position through the UI, a step through the player
    page.goto(app_url + "/reverse?variant=uniform&steps=12&seed=5")
    page.get_by_role("heading", name=HEADINGS["reverse"]).wait_for(timeout=90_000)
    wait_query(page, "step", "12")
    wait_stage(page)
    pick(page, "Position", "3")
    wait_query(page, "pos", "3")
    stage_go(page, 4, "step", "4")
    page.wait_for_timeout(300)
    before = widgets(page), stage_view(page)
    assert before[1][0] == 4 and ["Variant", "uniform"] in before[0] and ["Steps T", "12"] in before[0], before[0]
    assert ["Seed", "5"] in before[0] and ["Position", "3"] in before[0], before[0]
    assert {"variant": "uniform", "steps": "12", "seed": "5", "step": "4", "pos": "3"}.items() <= query(page).items()
    copy_shows_the_same_stage(browser, page.url, HEADINGS["reverse"], before)

    # Forward: variant and seed through the UI, t through the player
    page.goto(app_url + "/forward")
    page.get_by_role("heading", name=HEADINGS["forward"]).wait_for(timeout=90_000)
    wait_query(page, "fwd_t", 0.5)
    pick(page, "Variant", "uniform")
    wait_query(page, "fwd_variant", "uniform")
    type_number(page, "Seed (which corruption is drawn)", 3)
    wait_query(page, "fwd_seed", "3")
    pick(page, "Sentence", "our dog s are your s")
    wait_query(page, "fwd_sentence", "our dog s are your s")
    wait_stage(page)
    stage_go(page, 7, "fwd_t", 0.35)
    page.wait_for_timeout(300)
    before = widgets(page), stage_view(page)
    assert before[1][0] == 7 and ["Variant", "uniform"] in before[0], before
    copy_shows_the_same_stage(browser, page.url, HEADINGS["forward"], before)

    # Compare: the table's T (a link), the section, the strategy steps and the seed through the UI
    page.goto(app_url + "/compare?cmp_T=6")
    page.get_by_role("heading", name=HEADINGS["compare"]).wait_for(timeout=90_000)
    wait_query(page, "cmp_full", "False")
    page.get_by_test_id("stButtonGroup").get_by_text("Strategies and schedules", exact=True).click()
    wait_query(page, "cmp_view", "Strategies and schedules")
    page.get_by_test_id("stRadio").get_by_text("3", exact=True).click()
    wait_query(page, "cmp_strategy_T", "3")
    page.get_by_test_id("stButtonGroup").get_by_text("One seed, every variant", exact=True).click()
    wait_query(page, "cmp_view", "One seed, every variant")
    type_number(page, "Seed", 4)
    wait_query(page, "cmp_seed", "4")
    before = widgets(page)
    url = page.url
    assert {"cmp_T": "6", "cmp_seed": "4", "cmp_strategy_T": "3", "cmp_view": "One seed, every variant"}.items() \
        <= query(page).items(), url
    ctx2, copy = open_copy(browser, url, HEADINGS["compare"])
    copy.get_by_role("button", name="Recompute").wait_for(timeout=90_000)
    same_widgets(copy, before)
    ctx2.close()

    # Train: its settings sit in a form (they apply on "Start training"), so they come from a link here
    page.goto(app_url + "/train?train_variant=uniform&train_steps=150&train_lr=0.001&train_width=32&train_seed=7")
    page.get_by_role("heading", name=HEADINGS["train"]).wait_for(timeout=90_000)
    page.get_by_text("Pick the settings and press").wait_for(timeout=90_000)  # the end of the page
    wait_idle(page)
    before = widgets(page)
    assert before[:2] == [["Variant", "uniform"], ["Steps", "150"]] and ["Seed", "7"] in before, before
    url = page.url
    assert NOTICE not in page_text(page)
    ctx2, copy = open_copy(browser, url, HEADINGS["train"])
    copy.get_by_role("button", name="Start training").wait_for(timeout=90_000)
    same_widgets(copy, before)
    ctx2.close()

    # Real: the embedded model, a short generation; seed and prompt through the UI
    page.goto(app_url + "/real?real_gen_length=16&real_steps=8&real_block_length=16")
    page.get_by_role("heading", name=HEADINGS["real"]).wait_for(timeout=90_000)
    page.get_by_text("Model ready").wait_for(timeout=180_000)
    wait_query(page, "real_prompt", "to be or not to be, that is the")  # the settings are written to the URL
    type_number(page, "Seed", 11)
    wait_query(page, "real_seed", "11")
    prompt = "now is the winter of our discontent"
    box = page.get_by_role("textbox", name="Prompt", exact=True)
    box.fill(prompt)
    box.press("Control+Enter")
    wait_query(page, "real_prompt", prompt)
    page.get_by_role("button", name="Generate").click()
    wait_stage(page, timeout=180_000)
    wait_idle(page)
    before = widgets(page), stage_view(page)
    url = page.url
    assert {"real_gen_length": "16", "real_steps": "8", "real_block_length": "16", "real_seed": "11",
            "real_prompt": prompt, "real_source": "Embedded default"}.items() <= query(page).items(), url
    context.close()
    ctx2, copy = open_copy(browser, url, HEADINGS["real"])
    copy.get_by_text("Model ready").wait_for(timeout=180_000)
    copy.get_by_role("button", name="Generate").wait_for(timeout=90_000)
    settings = [w for w in before[0] if not w[0].startswith("Position")]  # drawn once there is a generation
    same_widgets(copy, settings)  # the same settings and prompt, before generating
    copy.get_by_role("button", name="Generate").click()
    wait_stage(copy, timeout=180_000)
    wait_idle(copy)
    same_widgets(copy, before[0])
    assert stage_view(copy) == before[1], "the same seed and settings gave another generation"
    ctx2.close()
