"""The class poll's page without a browser (AppTest): the teacher's room, a wrong code, the record of the
room, and a poll database that cannot be used (one sentence; the rest of the app goes on)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlm_core.classroom import poll
from dlm_core.classroom.questions import QUESTIONS

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
PAGE = "pages/views/poll.py"


def voter(i: int) -> str:
    return f"voter-{i:04d}-abcdef"


def open_page(page: str = PAGE, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query or {})
    at.switch_page(page)
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("DLM_POLL_DATABASE_URL", raising=False)
    monkeypatch.setenv("DLM_DATA_DIR", str(tmp_path))
    return tmp_path


def markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_the_page_opens_a_room_and_the_teacher_sees_the_tally(data_dir):
    at = open_page()
    assert [s.value for s in at.subheader] == ["Join a room", "Open a room"]
    next(b for b in at.button if b.label == "Open a room").click().run()
    assert not at.exception, at.exception
    code, host = at.query_params["room"], at.query_params["host"]
    store = poll.default_store()
    assert store.is_host(code, host) and store.room(code).question_id == "never-changes"
    text = markdown(at)
    assert f'data-testid="poll-code" aria-label="{code}"' in text
    assert f'data-testid="poll-link">/poll?room={code}</div>' in text and host not in text  # the key stays out
    assert 'data-testid="poll-qr-svg"' in text and f"QR code of the join link: /poll?room={code}" in text
    store.answer(code, "never-changes", voter(1), "uniform")
    at.run()
    assert "<b>uniform</b>: 1 (100 %)" in markdown(at) and '"poll-bars big"' in markdown(at)
    at.button(key="poll_reveal").click().run()
    assert store.is_revealed(code, "never-changes") and any("The answer" in s.value for s in at.success)
    assert "<b>masked</b>: 0 (0 %) · ✓ the answer" in markdown(at)


def test_the_teacher_sees_every_question_asked_and_can_download_them(data_dir):
    at = open_page()
    next(b for b in at.button if b.label == "Open a room").click().run()
    code = at.query_params["room"]
    store = poll.default_store()
    store.answer(code, "never-changes", voter(1), "uniform")
    at.selectbox(key="poll_q").set_value(list(QUESTIONS)[1]).run()
    next(b for b in at.button if b.label == "Ask this question now").click().run()
    assert not at.exception, at.exception
    at.toggle(key="poll_record").set_value(True).run()
    text = markdown(at)
    assert "**1. Which diffusion variant never replaces" in text and "**2. " in text and "(not revealed)" in text
    assert "<b>uniform</b>: 1 (100 %)" in text
    assert [b.label for b in at.get("download_button")] == ["Download the tallies (CSV)"]
    assert len(store.history(code)) == 2


def test_a_wrong_room_code_gets_a_clear_message(data_dir):
    at = open_page(query={"room": "nope-<b>x</b>"})
    assert len(at.error) == 1 and "There is no open room with the code" in at.error[0].value
    assert "<b>" not in at.error[0].value  # drawn as text
    at = open_page(query={"room": "ABCD", "host": "forged"})
    assert any("does not belong to an open room" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "poll_reveal"] and len(at.error) == 1


def test_an_unreachable_server_database_is_one_sentence(data_dir, monkeypatch):
    monkeypatch.setenv("DLM_POLL_DATABASE_URL", "postgresql://dlm:secret@127.0.0.1:1/dlm")
    at = open_page()
    said = at.error[0].value.replace("\\", "")  # as read: without Markdown's escapes
    assert len(at.error) == 1 and said.startswith(
        "The class poll is not available: The poll database at postgresql://dlm:***@127.0.0.1:1/dlm cannot be used: ")
    assert "Connection refused" in said and "secret" not in said
    assert not at.button  # no way to open a room on a store that is not there


@pytest.mark.parametrize("damage", ["corrupt", "a folder in its place"])
def test_a_damaged_poll_file_is_one_sentence_and_the_rest_of_the_app_works(data_dir, damage):
    path = data_dir / "poll.sqlite3"
    if damage == "corrupt":
        path.write_bytes(b"this is not a SQLite database" * 300)
    else:
        path.mkdir()
    at = open_page()
    assert len(at.error) == 1, [e.value for e in at.error]
    said = at.error[0].value.replace("\\", "")
    assert said.startswith(f"The class poll is not available: The poll database {path} ")
    assert ("is damaged or is not a SQLite file" if damage == "corrupt" else "cannot be written") in said
    # the other pages do not need the poll; a lesson whose question is put to the class says it in one sentence
    home = open_page("pages/views/home.py")
    assert not home.error and home.title
    lesson = open_page("pages/views/lessons.py", {"lesson": "1", "step": "1"})
    lesson.toggle(key="lesson_poll_on").set_value(True).run()
    assert not lesson.exception and len(lesson.error) == 1 and "The poll database" in lesson.error[0].value
    assert lesson.button(key="lesson_next").label == "Next"  # the lesson goes on below it
