"""The class poll's store (dlm_core.classroom.poll), every test on SQLite and on a real PostgreSQL server
(the `pg_url` fixture of conftest.py: a throwaway cluster from Debian's packages on a free port of 127.0.0.1,
emptied before each test)."""

from __future__ import annotations

import multiprocessing
import re
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from dlm_core.classroom import poll, poll_rules, poll_schema
from dlm_core.classroom.poll import PollError, PollStore, QuestionClosed, RoomNotFound, SQLPollStore

ROOT = Path(__file__).resolve().parent.parent
CHOICES = ["masked", "uniform", "gaussian"]
BACKENDS = ["sqlite", "postgresql"]


def empty_postgres(url: str) -> None:
    engine = sa.create_engine(poll_schema.normalise_url(url))
    with engine.begin() as db:
        db.exec_driver_sql("DROP SCHEMA public CASCADE")
        db.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path):
    """A fresh, empty poll database: a SQLite file, or the PostgreSQL server emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'poll.sqlite3'}"
    url = request.getfixturevalue("pg_url")
    empty_postgres(url)
    return url


@pytest.fixture
def make_store(db_url):
    made = []

    def make(**kw) -> SQLPollStore:
        made.append(SQLPollStore(db_url, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture
def store(make_store) -> SQLPollStore:
    return make_store()


def scalar(store, sql: str, **params):
    with store.engine.connect() as db:
        return db.execute(sa.text(sql), params).scalar()


class Clock:
    def __init__(self, t: float = 1_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def voter(i: int) -> str:
    return f"voter-{i:04d}-abcdef"


def test_the_store_is_a_poll_store(store):
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
    with store.engine.connect() as db:  # only its hash is stored
        assert key not in str(db.execute(sa.text("SELECT * FROM rooms")).all())


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


def test_a_question_takes_at_most_max_voters(store, monkeypatch):
    monkeypatch.setattr(poll_rules, "MAX_VOTERS", 5)
    code = store.open_room("q1", "Which?", CHOICES)
    for i in range(5):
        store.answer(code, "q1", voter(i), "masked")
    with pytest.raises(PollError, match="already has 5"):
        store.answer(code, "q1", voter(99), "masked")
    store.answer(code, "q1", voter(0), "uniform")  # those who answered can still change their answer
    assert store.tally(code, "q1") == {"masked": 4, "uniform": 1, "gaussian": 0}


def test_rooms_expire_and_are_purged_with_their_answers(make_store):
    clock = Clock()
    store = make_store(clock=clock)
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
    # gone from the database, answers included
    assert scalar(store, "SELECT COUNT(*) FROM rooms") == 1
    assert scalar(store, "SELECT COUNT(*) FROM answers WHERE code = :c", c=short) == 0
    assert scalar(store, "SELECT COUNT(*) FROM questions WHERE code = :c", c=short) == 0
    assert scalar(store, "SELECT COUNT(*) FROM answers") == 1
    clock.t += 3 * 3600
    store.open_room("q9", "Another?", CHOICES)  # opening a room purges the expired ones
    assert scalar(store, "SELECT COUNT(*) FROM answers") == 0


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


def _process_answers(url: str, code: str, first: int, n: int, start) -> None:
    store = SQLPollStore(url)
    start.wait(timeout=60)
    for i in range(first, first + n):
        store.answer(code, "q1", voter(i), CHOICES[i % 3])


def test_several_processes_writing_one_database_lose_nothing(store, db_url):
    """As with several server processes (replicas): each opens the database on its own."""
    code = store.open_room("q1", "Which?", CHOICES)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_process_answers, args=(db_url, code, 40 * k, 40, start)) for k in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 4
    assert store.tally(code, "q1") == {"masked": 54, "uniform": 53, "gaussian": 53}


def test_the_data_survive_reopening_the_store(make_store):
    first = make_store()
    key = poll.new_host_key()
    code = first.open_room("q1", "Which?", CHOICES, answer_index=2, why="why", host_key=key)
    for i in range(7):
        first.answer(code, "q1", voter(i), CHOICES[i % 3])
    first.reveal(code, "q1")
    first.close()
    again = make_store()
    assert again.tally(code, "q1") == {"masked": 3, "uniform": 2, "gaussian": 2}
    assert again.room(code).answer_index == 2 and again.is_host(code, key)
    if again.is_sqlite:
        assert scalar(again, "PRAGMA journal_mode") == "wal"


def test_no_answer_lands_after_the_reveal_that_closed_its_question(store):
    """Answers racing a reveal: each is either recorded before the reveal or refused; none after it."""
    code = store.open_room("q1", "Which?", CHOICES)
    n, accepted, refused, errors = 24, [], [], []
    barrier = threading.Barrier(n + 1)

    def student(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            store.answer(code, "q1", voter(i), CHOICES[i % 3])
            accepted.append(i)
        except QuestionClosed:
            refused.append(i)
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=student, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait(timeout=30)
    store.reveal(code, "q1")
    at_reveal = store.tally(code, "q1")
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(accepted) + len(refused) == n
    assert store.tally(code, "q1") == at_reveal and sum(at_reveal.values()) == len(accepted)


def test_history_lists_every_question_asked_with_its_counts(make_store):
    clock = Clock()
    store = make_store(clock=clock)
    code = store.open_room("q1", "First?", CHOICES, answer_index=1)
    for i in range(5):
        store.answer(code, "q1", voter(i), CHOICES[i % 3])
    store.reveal(code, "q1")
    clock.t += 60
    store.set_question(code, "q2", "=Second, with a comma?", ["yes", "no"], answer_index=0)
    store.answer(code, "q2", voter(1), "no")
    clock.t += 60
    store.set_question(code, "q1", "First?", CHOICES, answer_index=1)  # asked again: still listed first, once
    history = store.history(code)
    assert [(q.question_id, q.tally, q.revealed, q.answer_index) for q in history] == [
        ("q1", {"masked": 2, "uniform": 2, "gaussian": 1}, True, 1),
        ("q2", {"yes": 0, "no": 1}, False, None)]  # not revealed: no answer in the record
    assert history[0].asked_at == 1_000_000.0 and history[1].asked_at == 1_000_060.0
    assert store.history("ZZZZZZZZ") == []
    text = poll.tallies_csv(history)
    assert text.splitlines() == [
        "question_number,question,choice,count,share_percent,is_the_answer",
        "1,First?,masked,2,40.0,no", "1,First?,uniform,2,40.0,yes", "1,First?,gaussian,1,20.0,no",
        "2,\"'=Second, with a comma?\",yes,0,0.0,", "2,\"'=Second, with a comma?\",no,1,100.0,"]
    assert "voter" not in text  # counts only: nothing about who answered
