"""No live HTML from data, checked in the rendered DOM of a real browser: HTML and script in a prompt,
in a model's vocabulary (so in its output and its predictions) and in an imported trajectory file
are shown as text, and nothing runs. URL values are covered the same way in test_links.py."""

import json

import pytest
from browser_util import SHOTS, STAGE, open_and_wait, wait_idle, wait_stage
from tiny_models import WORDS, make_bert

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"
BOLD = "<b>bold</b>"
HTML_WORDS = [IMG, SCRIPT, BOLD]

LIVE = """() => {  // elements made from data anywhere (shadow roots too), and whether any of it ran
  const found = [];
  const walk = (root) => root.querySelectorAll('*').forEach((e) => {
    if ((e.tagName === 'IMG' && e.getAttribute('src') === 'x') ||
        (e.tagName === 'SCRIPT' && e.textContent.includes('__xss')) ||
        (e.tagName === 'B' && e.textContent === 'bold')) found.push(e.tagName);
    if (e.shadowRoot) walk(e.shadowRoot);
  });
  walk(document);
  return {found, ran: window.__xss === undefined ? null : window.__xss};
}"""

TEXT = """() => {  // all the text the user can read, shadow roots and plotly's SVG labels included
  const parts = [document.body.innerText];
  const walk = (root) => root.querySelectorAll('*').forEach((e) => { if (e.shadowRoot) {
    parts.push(e.shadowRoot.textContent); walk(e.shadowRoot); } });
  walk(document);
  document.querySelectorAll('svg text').forEach((t) => parts.push(t.textContent));
  return parts.join('\\n');
}"""


def assert_inert(page):
    live = page.evaluate(LIVE)
    assert live == {"found": [], "ran": None}, live


@pytest.fixture(scope="module")
def html_model(tmp_path_factory):
    return make_bert(tmp_path_factory.mktemp("htmlbert"), words=WORDS + HTML_WORDS, favour=HTML_WORDS)


def test_html_in_a_prompt_and_in_a_models_tokens_is_text(browser, app_url, html_model):
    page = open_and_wait(browser, f"{app_url}/real?real_source=Hub+id+or+local+path&real_gen_length=8&real_steps=8"
                                  f"&real_block_length=8&real_custom={html_model}",
                         "Real model: a masked diffusion LM writing real text", height=1800)
    box = page.get_by_role("textbox", name="Prompt")
    box.fill(f"the cat {IMG} {SCRIPT} {BOLD}")
    box.press("Control+Enter")
    wait_idle(page)
    page.get_by_role("button", name="Generate").click()
    wait_stage(page)
    wait_idle(page)
    page.evaluate(f"() => {STAGE}.go(3)")  # a step whose predictions include the favoured HTML tokens
    page.wait_for_timeout(500)
    text = page.evaluate(TEXT)
    assert f"Prompt: the cat {IMG} {SCRIPT} {BOLD}" in text  # the prompt line, literally
    shown = page.evaluate(f"() => {STAGE}.data.labels")
    written = [w for w in HTML_WORDS if w in shown.values()]
    assert written, "the favoured HTML tokens were written or predicted"
    stage_text = page.evaluate(f"() => {STAGE}.root.innerText")
    assert any(w in stage_text for w in HTML_WORDS)  # in the running text of the stage
    assert any(w in text for w in HTML_WORDS[:2])
    assert_inert(page)
    page.screenshot(path=str(SHOTS / "real-html-prompt.png"), full_page=True)
    page.close()


def test_html_in_an_imported_trajectory_is_text(browser, app_url, tmp_path):
    vocab = [IMG, SCRIPT, BOLD] + [f"u{i}" for i in range(10)] + ["[MASK]"]
    records = []
    tokens = [13] * 6
    for step, (pos, unit) in enumerate([(0, 0), (1, 1), (2, 2), (3, 0), (4, 1), (5, 2)], start=1):
        tokens = list(tokens)
        tokens[pos] = unit
        records.append({"step": step, "t": 1 - (step - 1) / 6, "s": 1 - step / 6, "tokens": tokens,
                        "committed": [pos], "confidence": [0.5] * 6,
                        "topk_ids": [[0, 1, 2]] * 6, "topk_probs": [[0.5, 0.3, 0.2]] * 6})
    file = tmp_path / f"{IMG.replace('/', '_')}.json"
    file.write_text(json.dumps({"variant": "masked", "vocab": vocab, "mask_id": 13, "initial": [13] * 6,
                                "records": records, "settings": {"seed": 0, "strategy": "random"}}))
    page = open_and_wait(browser, f"{app_url}/reverse", "Reverse process: from noise to a sentence", height=1800)
    page.get_by_text("Open a shared trajectory").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(file))
    page.get_by_text("Showing the trajectory from").wait_for(timeout=60_000)
    wait_idle(page)
    wait_stage(page)
    stage_text = page.evaluate(f"() => {STAGE}.root.innerText")
    assert IMG in stage_text and SCRIPT in stage_text and BOLD in stage_text
    text = page.evaluate(TEXT)
    assert BOLD in text  # the prediction chart's labels are the literal tokens
    assert_inert(page)
    page.close()
