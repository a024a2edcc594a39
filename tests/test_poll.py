"""The class poll's store (dlm_core.poll) and its page without a browser (AppTest)."""

from __future__ import annotations

import multiprocessing
import re
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dlm_core.classroom import poll
from dlm_core.classroom.poll import PollError, PollStore, QuestionClosed, RoomNotFound, SQLitePollStore

ROOT = Path(__file__).resolve().parent.parent
CHOICES = ["masked", "uniform", "gaussian"]


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store(tmp_path) -> SQLitePollStore:
    return SQLitePollStore(tmp_path / "poll.sqlite3")


def voter(i: int) -> str:
    return f"voter-{i:04d}-abcdef"


def test_the_sqlite_store_is_a_poll_store(store):
    assert isinstance(store, PollStore)


def test_codes_are_unique_long_and_unambiguous(store):
    assert len(poll.ALPHABET) ** poll.CODE_LENGTH > 5e11  # a few thousand guesses: chance ~1e-8 per live room
    assert poll.CODE_LENGTH >= 8 and not set("01OIL") & set(poll.ALPHABET)
    drawn = [poll.new_code() for _ in range(20_000)]
    assert len(set(drawn)) == len(drawn)
    assert all(re.fullmatch(f"[{poll.ALPHABET}]{{{poll.CODE_LENGTH}}}", c) for c in drawn)
    codes = [store.open_room(f"q{i}", "Which?", CHOICES) for i in range(200)]
    assert len(set(codes)) == 200 and all(re.fullmatch(f"[{poll.ALPHABET}]{{8}}", c) for c in codes)
    # every letter shows up: the codes are drawn from the whole alphabet
    assert set("".join(drawn)) == set(poll.ALPHABET)


def test_a_code_is_found_however_it_is_typed_and_a_wrong_one_is_not(store):
    code = store.open_room("q", "Which?", CHOICES)
    spaced = f" {code[:4].lower()} - {code[4:]} "
    assert store.room(spaced).code == code
    assert store.room(code[:-1]) is None and store.room(code + "X") is None and store.room("") is None
    other = next(c for c in poll.ALPHABET if c != code[-1])
    assert store.room(code[:-1] + other) is None
    with pytest.raises(RoomNotFound):
        store.answer(code[:-1] + other, "q", voter(1), "masked")


def test_one_answer_per_voter_per_question_a_second_replaces_it(store):
    code = store.open_room("q1", "Which?", CHOICES)
    store.answer(code, "q1", voter(1), "masked")
    assert store.tally(code, "q1") == {"masked": 1, "uniform": 0, "gaussian": 0}
    store.answer(code, "q1", voter(1), "uniform")  # changes the answer
    assert store.tally(code, "q1") == {"masked": 0, "uniform": 1, "gaussian": 0}
    assert store.my_answer(code, "q1", voter(1)) == "uniform"
    store.answer(code, "q1", voter(1), "uniform")  # the same answer again: still one
    store.answer(code, "q1", voter(2), "uniform")
    assert store.tally(code, "q1") == {"masked": 0, "uniform": 2, "gaussian": 0}
    assert store.my_answer(code, "q1", voter(3)) is None


def test_tally_counts_every_choice_in_order(store):
    code = store.open_room("q1", "Which?", CHOICES)
    for i in range(17):
        store.answer(code, "q1", voter(i), CHOICES[i % 3] if i < 15 else "gaussian")
    assert store.tally(code, "q1") == {"masked": 5, "uniform": 5, "gaussian": 7}
    assert list(store.tally(code, "q1")) == CHOICES
    assert store.tally(code, "never-asked") == {} and store.tally("ZZZZZZZZ", "q1") == {}


def test_answers_are_kept_per_question(store):
    code = store.open_room("q1", "First?", CHOICES)
    store.answer(code, "q1", voter(1), "masked")
    store.set_question(code, "q2", "Second?", ["yes", "no"])
    room = store.room(code)
    assert (room.question_id, room.prompt, room.choices) == ("q2", "Second?", ("yes", "no"))
    assert store.tally(code, "q2") == {"yes": 0, "no": 0}
    with pytest.raises(QuestionClosed, match="moved on"):  # a late answer to the previous question
        store.answer(code, "q1", voter(2), "masked")
    store.answer(code, "q2", voter(1), "no")
    store.set_question(code, "q1", "First?", CHOICES)  # back to the first: its answers are still there
    assert store.tally(code, "q1") == {"masked": 1, "uniform": 0, "gaussian": 0}
    assert store.tally(code, "q2") == {"yes": 0, "no": 1}


def test_reveal_shows_the_answer_and_closes_the_question(store):
    code = store.open_room("q1", "Which?", CHOICES, answer_index=0, why="masks only turn into units")
    room = store.room(code)
    assert not room.revealed and room.answer_index is None and room.why == ""  # not before the reveal
    assert not store.is_revealed(code, "q1")
    store.answer(code, "q1", voter(1), "uniform")
    store.reveal(code, "q1")
    room = store.room(code)
    assert room.revealed and room.answer_index == 0 and room.why == "masks only turn into units"
    assert store.is_revealed(code, "q1")
    with pytest.raises(QuestionClosed, match="revealed"):
        store.answer(code, "q1", voter(1), "masked")
    assert store.tally(code, "q1") == {"masked": 0, "uniform": 1, "gaussian": 0}
    with pytest.raises(PollError, match="not asked"):
        store.reveal(code, "other")


def test_only_the_key_the_room_was_opened_with_is_the_host(store):
    key = poll.new_host_key()
    code = store.open_room("q1", "Which?", CHOICES, host_key=key)
    assert store.is_host(code, key) and store.is_host(code.lower(), key)
    assert not store.is_host(code, key[:-1] + ("a" if key[-1] != "a" else "b"))
    assert not store.is_host(code, "") and not store.is_host("ZZZZZZZZ", key)
    assert not store.is_host(store.open_room("q1", "Which?", CHOICES), key)  # a room without a key
    with sqlite3.connect(store.path) as db:  # only its hash is stored
        assert key not in str(db.execute("SELECT * FROM rooms").fetchall())


def test_malformed_input_is_refused(store):
    code = store.open_room("q1", "Which?", CHOICES)
    for bad_voter in ["", "short", "x" * 65, "has space in it", "<script>alert(1)</script>", None]:
        with pytest.raises(PollError, match="voter"):
            store.answer(code, "q1", bad_voter, "masked")
    with pytest.raises(PollError, match="not one of the choices"):
        store.answer(code, "q1", voter(1), "Masked")
    for args in [("", "p", CHOICES), ("q", "", CHOICES), ("q", "p", ["one"]), ("q", "p", ["a", "a"]),
                 ("q", "p", ["a", ""]), ("q", "p", [str(i) for i in range(poll.MAX_CHOICES + 1)])]:
        with pytest.raises(PollError):
            store.open_room(*args)
    with pytest.raises(PollError, match="one of the choices"):
        store.open_room("q", "p", CHOICES, answer_index=3)
    for hours in (0, -1, poll.MAX_HOURS + 1):
        with pytest.raises(PollError, match="hours"):
            store.open_room("q", "p", CHOICES, hours)
    assert store.tally(code, "q1") == {"masked": 0, "uniform": 0, "gaussian": 0}


def test_a_question_takes_at_most_max_voters(tmp_path, monkeypatch):
    monkeypatch.setattr(poll, "MAX_VOTERS", 5)
    store = SQLitePollStore(tmp_path / "p.sqlite3")
    code = store.open_room("q1", "Which?", CHOICES)
    for i in range(5):
        store.answer(code, "q1", voter(i), "masked")
    with pytest.raises(PollError, match="already has 5"):
        store.answer(code, "q1", voter(99), "masked")
    store.answer(code, "q1", voter(0), "uniform")  # those who answered can still change their answer
    assert store.tally(code, "q1") == {"masked": 4, "uniform": 1, "gaussian": 0}


def test_rooms_expire_and_are_purged_with_their_answers(tmp_path):
    clock = Clock()
    store = SQLitePollStore(tmp_path / "p.sqlite3", clock=clock)
    short = store.open_room("q1", "Which?", CHOICES, hours=1)
    long = store.open_room("q1", "Which?", CHOICES, hours=4)
    store.answer(short, "q1", voter(1), "masked")
    store.answer(long, "q1", voter(1), "masked")
    clock.t += 3600 - 1
    assert store.room(short) is not None and store.purge_expired() == 0
    clock.t += 2  # an hour and a second later
    assert store.room(short) is None and store.room(long) is not None
    assert store.tally(short, "q1") == {} and store.my_answer(short, "q1", voter(1)) is None
    for call in (lambda: store.answer(short, "q1", voter(2), "masked"), lambda: store.reveal(short, "q1"),
                 lambda: store.set_question(short, "q2", "Next?", CHOICES)):
        with pytest.raises(RoomNotFound):
            call()
    assert store.purge_expired() == 1
    with sqlite3.connect(store.path) as db:  # gone from the file, answers included
        assert db.execute("SELECT COUNT(*) FROM rooms").fetchone()[0] == 1
        assert db.execute("SELECT COUNT(*) FROM answers WHERE code = ?", (short,)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM questions WHERE code = ?", (short,)).fetchone()[0] == 0
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 1
    clock.t += 3 * 3600
    store.open_room("q9", "Another?", CHOICES)  # opening a room purges the expired ones
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 0


def test_thirty_threads_answering_at_once_lose_nothing(store):
    code = store.open_room("q1", "Which?", CHOICES)
    n = 30
    barrier = threading.Barrier(n)
    errors = []

    def student(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            store.answer(code, "q1", voter(i), CHOICES[i % 3])
            barrier.wait(timeout=30)
            if i % 5 == 0:  # a few change their mind, all at once again
                store.answer(code, "q1", voter(i), "gaussian")
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=student, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    expected = {c: 0 for c in CHOICES}
    for i in range(n):
        expected["gaussian" if i % 5 == 0 else CHOICES[i % 3]] += 1
    assert store.tally(code, "q1") == expected and sum(expected.values()) == n


def _process_answers(path: str, code: str, first: int, n: int, start) -> None:
    store = SQLitePollStore(path)
    start.wait(timeout=60)
    for i in range(first, first + n):
        store.answer(code, "q1", voter(i), CHOICES[i % 3])


def test_several_processes_writing_one_file_lose_nothing(tmp_path):
    """As with several server processes on one machine: each opens the file on its own."""
    path = tmp_path / "p.sqlite3"
    code = SQLitePollStore(path).open_room("q1", "Which?", CHOICES)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_process_answers, args=(str(path), code, 40 * k, 40, start)) for k in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 4
    assert sum(SQLitePollStore(path).tally(code, "q1").values()) == 160


def test_the_data_survive_reopening_the_store(tmp_path):
    path = tmp_path / "p.sqlite3"
    first = SQLitePollStore(path)
    key = poll.new_host_key()
    code = first.open_room("q1", "Which?", CHOICES, answer_index=2, why="why", host_key=key)
    for i in range(7):
        first.answer(code, "q1", voter(i), CHOICES[i % 3])
    first.reveal(code, "q1")
    del first
    again = SQLitePollStore(path)
    assert again.tally(code, "q1") == {"masked": 3, "uniform": 2, "gaussian": 2}
    assert again.room(code).answer_index == 2 and again.is_host(code, key)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_default_store_lives_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("DLM_POLL_DATABASE_URL", raising=False)
    monkeypatch.setenv("DLM_DATA_DIR", str(tmp_path / "here"))
    store = poll.default_store()
    assert store.path == (tmp_path / "here" / "poll.sqlite3").resolve() and store.path.exists()
    assert poll.default_store() is store
    monkeypatch.delenv("DLM_DATA_DIR")
    assert poll.data_dir() == ROOT / "data"
    monkeypatch.setenv("DLM_POLL_DATABASE_URL", "postgresql://nowhere/dlm")
    with pytest.raises(RuntimeError, match="DLM_POLL_DATABASE_URL"):  # never a silent local file instead
        poll.default_store()


def test_the_data_folder_is_ignored_by_git():
    r = subprocess.run(["git", "check-ignore", "-q", "data/poll.sqlite3"], cwd=ROOT)
    assert r.returncode == 0


# ------------------------------------------------------------------ the page (AppTest)

APP = str(ROOT / "app.py")
PAGE = "pages/views/poll.py"


def open_poll(query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params.update(query or {})
    at.switch_page(PAGE)
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
    at = open_poll()
    assert [s.value for s in at.subheader] == ["Join a room", "Open a room"]
    next(b for b in at.button if b.label == "Open a room").click().run()
    assert not at.exception, at.exception
    code, host = at.query_params["room"], at.query_params["host"]
    store = poll.default_store()
    assert store.is_host(code, host) and store.room(code).question_id == "never-changes"
    assert code in markdown(at) and f"/poll?room={code}" in at.code[0].value and host not in at.code[0].value
    store.answer(code, "never-changes", voter(1), "uniform")
    at.run()
    assert "**uniform**: 1 (100 %)" in " ".join(p.proto.text for p in at.get("progress"))
    at.button(key="poll_reveal").click().run()
    assert store.is_revealed(code, "never-changes") and any("The answer" in s.value for s in at.success)


def test_a_wrong_room_code_gets_a_clear_message(data_dir):
    at = open_poll({"room": "nope-<b>x</b>"})
    assert len(at.error) == 1 and "There is no open room with the code" in at.error[0].value
    assert "<b>" not in at.error[0].value  # drawn as text
    at = open_poll({"room": "ABCD", "host": "forged"})
    assert any("does not belong to an open room" in w.value for w in at.warning)
    assert not [b for b in at.button if b.key == "poll_reveal"] and len(at.error) == 1


def test_the_page_says_so_when_the_store_cannot_be_opened(data_dir, monkeypatch):
    monkeypatch.setenv("DLM_POLL_DATABASE_URL", "postgresql://nowhere/dlm")
    at = open_poll()
    assert len(at.error) == 1 and "The class poll is not available" in at.error[0].value
    assert not at.button  # no way to open a room on a store that is not there
