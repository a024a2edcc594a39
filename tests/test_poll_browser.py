"""The class poll as a class uses it: one teacher and a room of students, each in their own browser
context, against a server this module starts on 127.0.0.1 with its own data folder (so that it can
stop it and start it again on the same data). Screenshots go to artifacts/screenshots/poll-*.png."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from browser_util import ROOT, SHOTS, free_port, page_text, wait_idle

from dlm_core.classroom.poll import SQLitePollStore

pytestmark = pytest.mark.browser
N_STUDENTS = 10
CHOICES = ["masked", "uniform", "gaussian"]


class Server:
    """streamlit on 127.0.0.1 with DLM_DATA_DIR set; start() and stop() as often as needed."""

    def __init__(self, data_dir, log_path):
        self.data_dir, self.log_path = data_dir, log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = None

    def start(self) -> None:
        self.log = open(self.log_path, "a")
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DLM_DATA_DIR": str(self.data_dir)}
        env.pop("DLM_POLL_DATABASE_URL", None)
        self.proc = subprocess.Popen(
            [sys.executable, "scripts/serve.py", "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"streamlit did not come up; see {self.log_path}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None
        self.log.close()


@pytest.fixture(scope="module")
def poll_server(tmp_path_factory):
    (ROOT / "artifacts").mkdir(exist_ok=True)
    server = Server(tmp_path_factory.mktemp("poll-data"), ROOT / "artifacts" / "streamlit-poll-test.log")
    server.start()
    yield server
    server.stop()


def tally_texts(tally: dict[str, int]) -> list[str]:
    """How the bars of a tally read on the page: "masked: 4 (40 %)"."""
    total = sum(tally.values())
    return [f"{c}: {n} ({100 * n / total if total else 0:.0f} %)" for c, n in tally.items()]


def wait_for_tally(page, tally: dict[str, int], timeout=30_000) -> None:
    """Until the teacher's live view shows exactly this tally (it refreshes by itself: no reload)."""
    want = tally_texts(tally)
    js = """([want, total]) => {
        const text = document.body.innerText;
        return want.every((w) => text.includes(w))
            && document.querySelector('[data-testid="stMetricValue"]')?.innerText.trim() === total;
    }"""
    try:
        page.wait_for_function(js, arg=[want, str(sum(tally.values()))], timeout=timeout, polling=200)
    except Exception as e:
        raise AssertionError(f"the tally never read {want}; the page says:\n{page_text(page)[-1500:]}") from e


def read_qr(page) -> str:
    """The text of the QR code on the page, decoded from a screenshot of it (zxing-cpp)."""
    import zxingcpp
    from PIL import Image

    png = page.get_by_test_id("poll-qr").screenshot()
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("L"))
    assert len(found) == 1, f"{len(found)} codes read"
    return found[0].text


def presenter_sizes(page) -> dict[str, float]:
    """The rendered sizes (px) of what the class reads off the projector: the code, the link, the question,
    the tally's labels and the thickness of its bars (the smallest of each)."""
    return page.evaluate("""() => {
        const px = (sel, prop) => Math.min(...[...document.querySelectorAll(sel)].map((e) =>
            prop === 'height' ? e.getBoundingClientRect().height : parseFloat(getComputedStyle(e).fontSize)));
        return {code: px('[data-testid="poll-code"]'), link: px('[data-testid="poll-link"]'),
                question: px('[data-testid="poll-prompt"]'), bar_labels: px('.poll-bars.big .poll-bar-label'),
                bars: px('.poll-bars.big .poll-bar-track', 'height')};
    }""")


def answer(page, choice: str) -> None:
    page.get_by_text(choice, exact=True).click()
    page.get_by_role("button", name="Send my answer").click()
    page.get_by_text("Your answer:").wait_for(timeout=30_000)
    assert f"Your answer: {choice}." in page_text(page)


def test_a_class_answers_changes_and_the_tally_survives_a_restart(poll_server, browser):
    dialogs: list = []
    teacher_ctx = browser.new_context(viewport={"width": 1920, "height": 1080}, accept_downloads=True)
    teacher = teacher_ctx.new_page()
    teacher.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    teacher.goto(poll_server.url + "/poll")
    teacher.get_by_role("button", name="Open a room").click()
    teacher.get_by_test_id("poll-code").wait_for(timeout=60_000)
    code = teacher.get_by_test_id("poll-code").get_attribute("aria-label")
    assert re.fullmatch(r"[A-Z2-9]{8}", code) and teacher.get_by_test_id("poll-code").inner_text() == code
    assert f"room={code}" in teacher.url and "host=" in teacher.url  # the teacher's own link keeps the key
    link = teacher.get_by_test_id("poll-link").inner_text().strip()
    assert link == f"{poll_server.url}/poll?room={code}"  # the join link: no key in it
    assert read_qr(teacher) == link  # the QR code beside the room code reads back to the join link
    teacher_url = teacher.url
    wait_for_tally(teacher, {c: 0 for c in CHOICES})

    students = []
    for _ in range(N_STUDENTS):  # each its own browser: its own storage, so its own anonymous voter
        ctx = browser.new_context(viewport={"width": 390, "height": 844})
        page = ctx.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(link)
        students.append((ctx, page))
    expected = {c: 0 for c in CHOICES}
    for i, (_, page) in enumerate(students):
        page.get_by_role("heading", name=re.compile("never replaces a unit")).wait_for(timeout=60_000)
        page.get_by_text(CHOICES[0], exact=True).wait_for(timeout=30_000)
        answer(page, CHOICES[i % 3])
        expected[CHOICES[i % 3]] += 1
    wait_for_tally(teacher, expected)
    store = SQLitePollStore(poll_server.data_dir / "poll.sqlite3")
    assert store.tally(code, "never-changes") == expected  # what the page shows is what is stored

    # one student changes their answer: it replaces the old one, the count of answers stays 10
    page = students[0][1]
    page.get_by_role("button", name="Change your answer").click()
    answer(page, "gaussian")
    expected["masked"] -= 1
    expected["gaussian"] += 1
    wait_for_tally(teacher, expected)
    assert store.tally(code, "never-changes") == expected and sum(expected.values()) == N_STUDENTS
    teacher.screenshot(path=str(SHOTS / "poll-teacher.png"))
    sizes = presenter_sizes(teacher)  # readable from the back of a room: at least 28 px at 1920 x 1080
    assert min(sizes.values()) >= 28, sizes
    assert sizes["code"] >= 64, sizes
    page.screenshot(path=str(SHOTS / "poll-student.png"), full_page=True)

    # a wrong code, from a link or typed in, says so clearly (and its text is not HTML)
    ctx = browser.new_context(viewport={"width": 390, "height": 844})
    lost = ctx.new_page()
    lost.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    wrong = "A" * 8 if code != "A" * 8 else "B" * 8
    lost.goto(f"{poll_server.url}/poll?room={wrong}")
    lost.get_by_text(f"There is no open room with the code {wrong}").wait_for(timeout=60_000)
    lost.get_by_role("button", name="Try another code").click()
    lost.get_by_label("Room code").fill("<b>x</b>")
    lost.get_by_role("button", name="Join").click()
    lost.get_by_text("There is no open room with the code <B>X</B>").wait_for(timeout=30_000)
    lost.screenshot(path=str(SHOTS / "poll-wrong-code.png"), full_page=True)
    assert not lost.locator("b").count()  # shown as text, never as HTML (Streamlit's own bold is <strong>)
    ctx.close()

    # the teacher reveals; students see the answer
    teacher.get_by_role("button", name="Reveal the answer").click()
    teacher.get_by_text("The answer: masked").wait_for(timeout=30_000)
    students[1][1].get_by_text("The answer: masked").wait_for(timeout=30_000)
    students[1][1].get_by_text("uniform: 3 (30 %) · yours").wait_for(timeout=30_000)  # and how the class answered
    students[1][1].screenshot(path=str(SHOTS / "poll-student-revealed.png"), full_page=True)

    # the record of the room: every question asked so far, as CSV (counts only)
    teacher.get_by_text("Show every question asked in this room").click()
    with teacher.expect_download(timeout=30_000) as dl:
        teacher.get_by_role("button", name="Download the tallies (CSV)").click()
    rows = Path(dl.value.path()).read_text().splitlines()
    assert rows[0] == "question_number,question,choice,count,share_percent,is_the_answer"
    assert [r.rsplit(",", 4)[1:] for r in rows[1:]] == [
        [c, str(expected[c]), f"{100 * expected[c] / N_STUDENTS:.1f}", "yes" if c == "masked" else "no"]
        for c in CHOICES]
    teacher.get_by_text("Show every question asked in this room").click()

    # stop the server, start it again on the same data: the teacher's tally and the students' answers are there
    poll_server.stop()
    poll_server.start()
    teacher.goto(teacher_url)
    teacher.get_by_test_id("poll-code").wait_for(timeout=60_000)
    wait_for_tally(teacher, expected)
    assert "The answer: masked" in page_text(teacher)
    page = students[2][1]
    page.reload()  # same browser, new server session: still the same voter
    page.get_by_text("You answered gaussian.").wait_for(timeout=60_000)
    wait_idle(teacher)
    teacher.screenshot(path=str(SHOTS / "poll-teacher-after-restart.png"))
    assert not dialogs, dialogs
    for ctx, _ in students:
        ctx.close()
    teacher_ctx.close()
