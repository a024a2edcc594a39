"""The poll's store on a SQL database (SQLAlchemy Core): one class for the embedded SQLite file and for a
PostgreSQL server, chosen by the URL. The tables, their upgrades and the engine are in poll_schema.

Semantics (the same on both, tests/test_poll.py runs every test on each): one answer per voter and
question (answering again replaces it, in one upsert); a room expires `hours` after it was opened, then
reads see nothing and `purge_expired` deletes it with its questions and answers (foreign keys, ON DELETE
CASCADE); only the hash of the teacher's key is stored. Every operation is one short transaction. An
answer takes a shared lock on its room and question rows (PostgreSQL: FOR SHARE; SQLite serialises
writes anyway), so a reveal or a move to another question waits for the answers in flight and no answer
lands after the reveal that closed its question.

A database that cannot be used (unreachable, damaged, not writable, overloaded) raises PollUnavailable
with one sentence that says what is wrong and where; a refused operation raises PollError as before."""

from __future__ import annotations

import functools
import hmac
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from dlm_core.classroom import poll_rules as rules
from dlm_core.classroom.poll_rules import (
    GONE,
    AskedQuestion,
    PollError,
    PollUnavailable,
    QuestionClosed,
    Room,
    RoomNotFound,
    normalise_code,
)
from dlm_core.classroom.poll_schema import (
    answers,
    describe,
    make_engine,
    prepare_sqlite_file,
    public_url,
    questions,
    rooms,
    upgrade,
)

_DB_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.InternalError, sa.exc.ProgrammingError,
              sa.exc.TimeoutError, sa.exc.DatabaseError, sqlite3.Error, OSError)


def _guarded(method):
    """Turn a database failure into PollUnavailable (one sentence); refusals (PollError) pass as they are."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except sa.exc.IntegrityError:
            raise
        except _DB_ERRORS as e:
            raise PollUnavailable(describe(e, self.where, self.is_sqlite)) from e
    return wrapper


class SQLPollStore:
    """PollStore on SQLite (`sqlite:///path`) or PostgreSQL (`postgresql://user:pw@host/db`). Opening it
    upgrades the schema (poll_schema.upgrade). `clock` (seconds, like time.time) is there for the tests of
    expiry."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time, busy_timeout_s: float = 15.0):
        self.url = url
        self.clock = clock
        self.is_sqlite = url.startswith("sqlite")
        self.path = Path(sa.make_url(url).database).resolve() if self.is_sqlite else None
        self.where = str(self.path) if self.is_sqlite else public_url(url)
        self.engine = make_engine(url, busy_timeout_s=busy_timeout_s)
        try:
            if self.is_sqlite:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                prepare_sqlite_file(self.engine)
            upgrade(self.engine)
        except _DB_ERRORS as e:
            self.engine.dispose()
            raise PollUnavailable(describe(e, self.where, self.is_sqlite)) from e
        self._insert = (sqlite_dialect if self.is_sqlite else pg_dialect).insert

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- transactions

    def _read(self):
        return self.engine.connect()

    def _write(self):
        """A connection whose transaction is a write (SQLite: BEGIN IMMEDIATE); use as `with ... as db,
        db.begin():`."""
        return self.engine.connect().execution_options(poll_write=True)

    def _live(self, db, code: str, *, lock: bool = False):
        """(current question_id, host_hash) of a room that has not expired, else None; `lock`: FOR SHARE."""
        q = sa.select(rooms.c.question_id, rooms.c.host_hash).where(
            rooms.c.code == normalise_code(code), rooms.c.expires_at > self.clock())
        return db.execute(q.with_for_update(read=True) if lock else q).first()

    def _question_row(self, db, code: str, question_id: str, *columns, lock: bool = False):
        q = sa.select(*columns).where(questions.c.code == code, questions.c.question_id == question_id)
        return db.execute(q.with_for_update(read=True) if lock else q).first()

    def _upsert_question(self, db, code, question_id, prompt, choices, answer_index, why, now) -> None:
        stmt = self._insert(questions).values(code=code, question_id=question_id, prompt=prompt,
                                              choices=json.dumps(choices), answer_index=answer_index, why=why,
                                              revealed=0, asked_at=now)
        db.execute(stmt.on_conflict_do_update(
            index_elements=[questions.c.code, questions.c.question_id],
            set_={"prompt": stmt.excluded.prompt, "choices": stmt.excluded.choices,
                  "answer_index": stmt.excluded.answer_index, "why": stmt.excluded.why}))

    # ------------------------------------------------------------------- the teacher

    @_guarded
    def open_room(self, question_id: str, prompt: str, choices: Sequence[str], hours: float = 4, *,
                  answer_index: int | None = None, why: str = "", host_key: str | None = None) -> str:
        """Open a room on a question; returns its code. Expired rooms are purged on the way."""
        choices = rules.check_question(question_id, prompt, choices, answer_index, why)
        rules.check_hours(hours)
        self.purge_expired()
        now = self.clock()
        for _ in range(20):
            code = rules.new_code()
            try:
                with self._write() as db, db.begin():
                    db.execute(rooms.insert().values(code=code, question_id=question_id,
                                                     host_hash=rules.key_hash(host_key) if host_key else None,
                                                     created_at=now, expires_at=now + hours * 3600))
                    self._upsert_question(db, code, question_id, prompt, choices, answer_index, why, now)
                return code
            except sa.exc.IntegrityError:  # that code is taken: draw another
                continue
        raise RuntimeError("could not draw a free room code")

    @_guarded
    def set_question(self, code: str, question_id: str, prompt: str, choices: Sequence[str], *,
                     answer_index: int | None = None, why: str = "") -> None:
        """Move the room on to a question (a new one, or one asked before: its answers are kept)."""
        choices = rules.check_question(question_id, prompt, choices, answer_index, why)
        with self._write() as db, db.begin():
            if self._live(db, code) is None:
                raise RoomNotFound(GONE)
            code = normalise_code(code)
            self._upsert_question(db, code, question_id, prompt, choices, answer_index, why, self.clock())
            db.execute(rooms.update().where(rooms.c.code == code).values(question_id=question_id))

    @_guarded
    def is_host(self, code: str, host_key: str) -> bool:
        """Whether `host_key` is the key the room was opened with (False for an unknown room)."""
        if not host_key:
            return False
        with self._read() as db:
            row = self._live(db, code)
        return bool(row and row[1]) and hmac.compare_digest(row[1], rules.key_hash(str(host_key)))

    @_guarded
    def reveal(self, code: str, question_id: str) -> None:
        """Reveal a question's answer: students then see it, and the question stops taking answers."""
        with self._write() as db, db.begin():
            if self._live(db, code) is None:
                raise RoomNotFound(GONE)
            n = db.execute(questions.update().where(questions.c.code == normalise_code(code),
                                                    questions.c.question_id == question_id)
                           .values(revealed=1)).rowcount
            if not n:
                raise PollError("this question was not asked in this room")

    # ------------------------------------------------------------------- everyone

    @_guarded
    def room(self, code: str) -> Room | None:
        """The room and its current question (None: unknown or expired). The answer is only in it once
        revealed."""
        q = sa.select(rooms.c.question_id, questions.c.prompt, questions.c.choices, questions.c.answer_index,
                      questions.c.why, questions.c.revealed, rooms.c.created_at, rooms.c.expires_at).join(
            questions, sa.and_(questions.c.code == rooms.c.code, questions.c.question_id == rooms.c.question_id)
        ).where(rooms.c.code == normalise_code(code), rooms.c.expires_at > self.clock())
        with self._read() as db:
            row = db.execute(q).first()
        if row is None:
            return None
        question_id, prompt, choices, answer_index, why, revealed, created, expires = row
        return Room(code=normalise_code(code), question_id=question_id, prompt=prompt,
                    choices=tuple(json.loads(choices)), revealed=bool(revealed),
                    answer_index=answer_index if revealed else None, why=why if revealed else "",
                    created_at=created, expires_at=expires)

    @_guarded
    def is_revealed(self, code: str, question_id: str) -> bool:
        with self._read() as db:
            if self._live(db, code) is None:
                return False
            row = self._question_row(db, normalise_code(code), question_id, questions.c.revealed)
        return bool(row and row[0])

    @_guarded
    def answer(self, code: str, question_id: str, voter: str, choice: str) -> None:
        """Record a voter's answer to the room's current question, replacing their earlier one.

        Raises RoomNotFound, QuestionClosed (revealed, or the room has moved on) or PollError (not
        one of the choices, a malformed voter token, the question is full)."""
        if not isinstance(voter, str) or not rules.VOTER_RE.fullmatch(voter):
            raise PollError("not a valid voter token")
        with self._write() as db, db.begin():
            row = self._live(db, code, lock=True)
            if row is None:
                raise RoomNotFound(GONE)
            code = normalise_code(code)
            if row[0] != question_id:
                raise QuestionClosed("the teacher has moved on to another question")
            choices, revealed = self._question_row(db, code, question_id, questions.c.choices,
                                                   questions.c.revealed, lock=True)
            if revealed:
                raise QuestionClosed("the answer has been revealed: this question is closed")
            if choice not in json.loads(choices):
                raise PollError("not one of the choices")
            mine = (answers.c.code == code) & (answers.c.question_id == question_id)
            known = db.execute(sa.select(sa.literal(1)).where(mine, answers.c.voter == voter)).first()
            if not known and db.execute(sa.select(sa.func.count()).select_from(answers).where(mine)
                                        ).scalar_one() >= rules.MAX_VOTERS:
                raise PollError(f"this question already has {rules.MAX_VOTERS} answers")
            stmt = self._insert(answers).values(code=code, question_id=question_id, voter=voter, choice=choice,
                                                answered_at=self.clock())
            db.execute(stmt.on_conflict_do_update(
                index_elements=[answers.c.code, answers.c.question_id, answers.c.voter],
                set_={"choice": stmt.excluded.choice, "answered_at": stmt.excluded.answered_at}))

    @_guarded
    def my_answer(self, code: str, question_id: str, voter: str) -> str | None:
        """The answer this voter gave to the question (None: none yet)."""
        with self._read() as db:
            if self._live(db, code) is None:
                return None
            return db.execute(sa.select(answers.c.choice).where(
                answers.c.code == normalise_code(code), answers.c.question_id == question_id,
                answers.c.voter == str(voter))).scalar_one_or_none()

    def _counts(self, db, code: str, question_id: str | None = None) -> dict[tuple[str, str], int]:
        q = sa.select(answers.c.question_id, answers.c.choice, sa.func.count()).where(answers.c.code == code)
        if question_id is not None:
            q = q.where(answers.c.question_id == question_id)
        return {(qid, c): n for qid, c, n in db.execute(q.group_by(answers.c.question_id, answers.c.choice))}

    @_guarded
    def tally(self, code: str, question_id: str) -> dict[str, int]:
        """{choice: number of voters}, every choice of the question in its order (empty: unknown or expired
        room, or a question never asked there)."""
        with self._read() as db:
            if self._live(db, code) is None:
                return {}
            code = normalise_code(code)
            row = self._question_row(db, code, question_id, questions.c.choices)
            if row is None:
                return {}
            counts = self._counts(db, code, question_id)
        return {c: counts.get((question_id, c), 0) for c in json.loads(row[0])}

    @_guarded
    def history(self, code: str) -> list[AskedQuestion]:
        """Every question asked in the room so far, in the order first asked, each with its tally (the
        answer only where revealed). Empty for an unknown or expired room."""
        with self._read() as db:
            if self._live(db, code) is None:
                return []
            code = normalise_code(code)
            rows = db.execute(sa.select(questions.c.question_id, questions.c.prompt, questions.c.choices,
                                        questions.c.revealed, questions.c.answer_index, questions.c.asked_at)
                              .where(questions.c.code == code)
                              .order_by(questions.c.asked_at, questions.c.question_id)).all()
            counts = self._counts(db, code)
        return [AskedQuestion(question_id=qid, prompt=prompt, revealed=bool(revealed),
                              tally={c: counts.get((qid, c), 0) for c in json.loads(choices)},
                              answer_index=answer_index if revealed else None, asked_at=asked_at or 0.0)
                for qid, prompt, choices, revealed, answer_index, asked_at in rows]

    @_guarded
    def purge_expired(self) -> int:
        """Delete the expired rooms with their questions and answers; returns how many rooms."""
        with self._write() as db, db.begin():
            return db.execute(rooms.delete().where(rooms.c.expires_at <= self.clock())).rowcount


class SQLitePollStore(SQLPollStore):
    """The store on one SQLite file (several threads and server processes on one machine may share it)."""

    def __init__(self, path: str | os.PathLike, *, busy_timeout_s: float = 15.0,
                 clock: Callable[[], float] = time.time):
        super().__init__(f"sqlite:///{Path(path).expanduser().resolve()}", clock=clock,
                         busy_timeout_s=busy_timeout_s)
