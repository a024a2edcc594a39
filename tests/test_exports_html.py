"""The standalone HTML export replays a trajectory offline, with the app's own player."""

import pytest
from browser_util import STAGE

from dlm_core.render.exports_html import standalone_html
from dlm_core.studies import training
from dlm_core.variants.registry import VARIANTS

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def traj():
    model = training.load_checkpoint(training.default_checkpoint("masked"))[0]
    return VARIANTS["masked"].trajectory(model, 6, 2, strategy="random")


def test_the_html_export_replays_offline_without_any_request(browser, traj, tmp_path):
    path = tmp_path / "trajectory.html"
    path.write_text(standalone_html(traj, title="<b>shared</b> run"), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    requests = []
    context.on("request", lambda r: requests.append(r.url))
    page = context.new_page()
    page.goto(path.as_uri())
    page.wait_for_function(f"() => {STAGE} && {STAGE}.data.T === 6", timeout=10_000)
    assert requests == [path.as_uri()]  # the file itself and nothing else: no script, font or data fetched
    assert page.evaluate(f"() => {STAGE}.k") == 0  # it opens on the noise, ready to play
    page.keyboard.press("End")
    shown = page.evaluate(f"() => {STAGE}.cells.map(c => c.textContent)")
    assert shown == [traj.token_text(i) for i in traj.final]
    page.get_by_role("button", name="|◀ First", exact=True).click()
    page.get_by_role("button", name="▶ Play", exact=True).click()
    page.wait_for_function(f"() => {STAGE}.k === 6 && !{STAGE}.playing", timeout=15_000)
    assert page.locator("b").count() == 0 and "<b>shared</b> run" in page.title()  # text, never HTML
    context.close()
