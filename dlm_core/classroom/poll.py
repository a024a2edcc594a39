"""The live class poll: rooms, questions and anonymous answers, behind one interface (`PollStore`).

A teacher opens a room for a question and gets a short code; students join with the code and
answer; the teacher watches the tally and reveals the answer, then may move the room on to the
next question (the answers are kept per question). A room expires `hours` after it was opened
(then `room()` is None and `purge_expired()` deletes it with its answers).

Nothing personal is stored: a voter is a random token made by the student's browser, one answer
per voter and question (answering again replaces the earlier answer). A room also keeps the hash
of the teacher's key (`new_host_key()`), so that only the teacher can move the room on or reveal.

The store of this app is `SQLitePollStore`, one SQLite file (`default_store()`:
`$DLM_DATA_DIR/poll.sqlite3`, by default `data/` in the repository). It opens one short
connection per operation, in WAL mode with a busy timeout and `BEGIN IMMEDIATE` for every write,
so it is safe with many threads and with several server processes on one machine sharing the file.

Several machines. A SQLite file must not be shared over a network file system. When the app
runs on several machines, a server database replaces it: another class implementing `PollStore`
(for instance a `PostgresPollStore(url)` with the same three tables and `INSERT ... ON CONFLICT
DO UPDATE` for `answer`), chosen in `default_store()` by an environment variable such as
`DLM_POLL_DATABASE_URL=postgresql://user@host/dlm` (the SQLite file when it is unset). The
pages only ever talk to `PollStore`, so nothing else changes. That class is not written yet:
`default_store()` refuses to start with `DLM_POLL_DATABASE_URL` set rather than silently
falling back to a file of its own on each machine.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from dlm_core import ROOT

DB_NAME = "poll.sqlite3"

# Codes: 31 characters nobody confuses when read off a projector (no 0/O, 1/I/L), 8 of them:
# 31**8 ~ 8.5e11 codes, so a few thousand guesses find one of a hundred live rooms with a chance ~1e-6.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
MAX_PROMPT = 2000
MAX_CHOICE = 300
MAX_CHOICES = 12
MAX_ID = 200
MAX_VOTERS = 2000  # per question: bounds what one room can write
MAX_HOURS = 48.0
VOTER_RE = re.compile(r"[A-Za-z0-9_-]{8,64}")


class PollError(ValueError):
    """An operation the poll refuses; its message can be shown to the user as it is."""


class RoomNotFound(PollError):
    """No such room, or it has expired."""


class QuestionClosed(PollError):
    """The question is no longer taking answers (revealed, or the room has moved on)."""


@dataclass(frozen=True)
class Room:
    """A room as a student may see it: the current question, and its answer once revealed."""

    code: str
    question_id: str
    prompt: str
    choices: tuple[str, ...]
    revealed: bool
    answer_index: int | None  # None until revealed (or when the teacher gave none)
    why: str  # "" until revealed
    created_at: float
    expires_at: float


@runtime_checkable
class PollStore(Protocol):
    """What the pages need from a poll store (SQLitePollStore here; a server database elsewhere)."""

    def open_room(self, question_id: str, prompt: str, choices: Sequence[str], hours: float = 4, *,
                  answer_index: int | None = None, why: str = "", host_key: str | None = None) -> str: ...

    def set_question(self, code: str, question_id: str, prompt: str, choices: Sequence[str], *,
                     answer_index: int | None = None, why: str = "") -> None: ...

    def room(self, code: str) -> Room | None: ...

    def is_host(self, code: str, host_key: str) -> bool: ...

    def answer(self, code: str, question_id: str, voter: str, choice: str) -> None: ...

    def my_answer(self, code: str, question_id: str, voter: str) -> str | None: ...

    def tally(self, code: str, question_id: str) -> dict[str, int]: ...

    def reveal(self, code: str, question_id: str) -> None: ...

    def is_revealed(self, code: str, question_id: str) -> bool: ...

    def purge_expired(self) -> int: ...


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def new_host_key() -> str:
    """The teacher's secret for a room (pass it to `open_room`; keep it out of the join link)."""
    return secrets.token_urlsafe(18)


def new_voter() -> str:
    """An anonymous voter token (what a browser that cannot make its own uses)."""
    return secrets.token_urlsafe(16)


def normalise_code(text) -> str:
    """A code as typed: lower case, spaces and dashes are forgiven; anything else makes it unknown."""
    return re.sub(r"[\s-]+", "", str(text or "")).upper()[:2 * CODE_LENGTH]


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _check_question(question_id: str, prompt: str, choices: Sequence[str], answer_index: int | None,
                    why: str) -> tuple[str, ...]:
    if not isinstance(question_id, str) or not 0 < len(question_id) <= MAX_ID:
        raise PollError(f"a question id is 1 to {MAX_ID} characters")
    if not isinstance(prompt, str) or not 0 < len(prompt) <= MAX_PROMPT:
        raise PollError(f"a question is 1 to {MAX_PROMPT} characters")
    choices = tuple(str(c) for c in choices)
    if not 2 <= len(choices) <= MAX_CHOICES:
        raise PollError(f"a question has 2 to {MAX_CHOICES} choices")
    if len(set(choices)) != len(choices) or not all(0 < len(c) <= MAX_CHOICE for c in choices):
        raise PollError(f"the choices must be different, each 1 to {MAX_CHOICE} characters")
    if answer_index is not None and not 0 <= answer_index < len(choices):
        raise PollError("the answer must be one of the choices")
    if len(why) > MAX_PROMPT:
        raise PollError(f"the explanation is at most {MAX_PROMPT} characters")
    return choices


SCHEMA = """
CREATE TABLE IF NOT EXISTS rooms (
    code TEXT PRIMARY KEY,
    question_id TEXT NOT NULL,
    host_hash TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS questions (
    code TEXT NOT NULL REFERENCES rooms(code) ON DELETE CASCADE,
    question_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    choices TEXT NOT NULL,
    answer_index INTEGER,
    why TEXT NOT NULL DEFAULT '',
    revealed INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (code, question_id)
);
CREATE TABLE IF NOT EXISTS answers (
    code TEXT NOT NULL,
    question_id TEXT NOT NULL,
    voter TEXT NOT NULL,
    choice TEXT NOT NULL,
    answered_at REAL NOT NULL,
    PRIMARY KEY (code, question_id, voter),
    FOREIGN KEY (code, question_id) REFERENCES questions(code, question_id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS rooms_expiry ON rooms(expires_at);
"""
GONE = "no such room, or it has expired"


class SQLitePollStore:
    """PollStore on one SQLite file: WAL, a busy timeout, one short connection per operation.
    `clock` (seconds, like time.time) is there for the tests of expiry."""

    def __init__(self, path: str | os.PathLike, *, busy_timeout_s: float = 15.0,
                 clock: Callable[[], float] = time.time):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self.clock = clock
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")  # kept in the file: every later connection uses it
            db.executescript(SCHEMA)

    # ------------------------------------------------------------------ connections

    @contextmanager
    def _connect(self):
        db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout={int(self.busy_timeout_s * 1000)}")
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("PRAGMA synchronous=NORMAL")  # with WAL: a crash of the app loses no commit
            yield db
        finally:
            db.close()

    @contextmanager
    def _write(self):
        """One write transaction, taken at once (BEGIN IMMEDIATE): it then never has to upgrade a
        read lock, which in WAL mode fails at once instead of waiting for the busy timeout."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _live(self, db, code: str) -> tuple | None:
        """(current question_id, host_hash) of a room that has not expired, else None."""
        return db.execute("SELECT question_id, host_hash FROM rooms WHERE code = ? AND expires_at > ?",
                          (normalise_code(code), self.clock())).fetchone()

    # ------------------------------------------------------------------- the teacher

    def open_room(self, question_id: str, prompt: str, choices: Sequence[str], hours: float = 4, *,
                  answer_index: int | None = None, why: str = "", host_key: str | None = None) -> str:
        """Open a room on a question; returns its code. Expired rooms are purged on the way."""
        choices = _check_question(question_id, prompt, choices, answer_index, why)
        if not 0 < hours <= MAX_HOURS:
            raise PollError(f"a room lasts more than 0 and at most {MAX_HOURS:g} hours")
        self.purge_expired()
        now = self.clock()
        for _ in range(20):
            code = new_code()
            try:
                with self._write() as db:
                    db.execute("INSERT INTO rooms VALUES (?, ?, ?, ?, ?)",
                               (code, question_id, _hash(host_key) if host_key else None, now, now + hours * 3600))
                    db.execute("INSERT INTO questions (code, question_id, prompt, choices, answer_index, why) "
                               "VALUES (?, ?, ?, ?, ?, ?)",
                               (code, question_id, prompt, json.dumps(choices), answer_index, why))
                return code
            except sqlite3.IntegrityError:  # that code is taken: draw another
                continue
        raise RuntimeError("could not draw a free room code")

    def set_question(self, code: str, question_id: str, prompt: str, choices: Sequence[str], *,
                     answer_index: int | None = None, why: str = "") -> None:
        """Move the room on to a question (a new one, or one asked before: its answers are kept)."""
        choices = _check_question(question_id, prompt, choices, answer_index, why)
        with self._write() as db:
            if self._live(db, code) is None:
                raise RoomNotFound(GONE)
            code = normalise_code(code)
            db.execute("INSERT INTO questions (code, question_id, prompt, choices, answer_index, why) "
                       "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (code, question_id) DO UPDATE SET "
                       "prompt = excluded.prompt, choices = excluded.choices, "
                       "answer_index = excluded.answer_index, why = excluded.why",
                       (code, question_id, prompt, json.dumps(choices), answer_index, why))
            db.execute("UPDATE rooms SET question_id = ? WHERE code = ?", (question_id, code))

    def is_host(self, code: str, host_key: str) -> bool:
        """Whether `host_key` is the key the room was opened with (False for an unknown room)."""
        if not host_key:
            return False
        with self._connect() as db:
            row = self._live(db, code)
        return bool(row and row[1]) and hmac.compare_digest(row[1], _hash(str(host_key)))

    def reveal(self, code: str, question_id: str) -> None:
        """Reveal a question's answer: students then see it, and the question stops taking answers."""
        with self._write() as db:
            if self._live(db, code) is None:
                raise RoomNotFound(GONE)
            n = db.execute("UPDATE questions SET revealed = 1 WHERE code = ? AND question_id = ?",
                           (normalise_code(code), question_id)).rowcount
            if not n:
                raise PollError("this question was not asked in this room")

    # ------------------------------------------------------------------- everyone

    def room(self, code: str) -> Room | None:
        """The room and its current question (None: unknown or expired). The answer is only in it
        once revealed."""
        with self._connect() as db:
            row = db.execute(
                "SELECT r.question_id, q.prompt, q.choices, q.answer_index, q.why, q.revealed, r.created_at, "
                "r.expires_at FROM rooms r JOIN questions q ON q.code = r.code AND q.question_id = r.question_id "
                "WHERE r.code = ? AND r.expires_at > ?", (normalise_code(code), self.clock())).fetchone()
        if row is None:
            return None
        question_id, prompt, choices, answer_index, why, revealed, created, expires = row
        return Room(code=normalise_code(code), question_id=question_id, prompt=prompt,
                    choices=tuple(json.loads(choices)), revealed=bool(revealed),
                    answer_index=answer_index if revealed else None, why=why if revealed else "",
                    created_at=created, expires_at=expires)

    def is_revealed(self, code: str, question_id: str) -> bool:
        with self._connect() as db:
            if self._live(db, code) is None:
                return False
            row = db.execute("SELECT revealed FROM questions WHERE code = ? AND question_id = ?",
                             (normalise_code(code), question_id)).fetchone()
        return bool(row and row[0])

    def answer(self, code: str, question_id: str, voter: str, choice: str) -> None:
        """Record a voter's answer to the room's current question, replacing their earlier one.

        Raises RoomNotFound, QuestionClosed (revealed, or the room has moved on) or PollError (not
        one of the choices, a malformed voter token, the question is full)."""
        if not isinstance(voter, str) or not VOTER_RE.fullmatch(voter):
            raise PollError("not a valid voter token")
        with self._write() as db:
            row = self._live(db, code)
            if row is None:
                raise RoomNotFound(GONE)
            code = normalise_code(code)
            if row[0] != question_id:
                raise QuestionClosed("the teacher has moved on to another question")
            choices, revealed = db.execute("SELECT choices, revealed FROM questions WHERE code = ? AND "
                                           "question_id = ?", (code, question_id)).fetchone()
            if revealed:
                raise QuestionClosed("the answer has been revealed: this question is closed")
            if choice not in json.loads(choices):
                raise PollError("not one of the choices")
            known = db.execute("SELECT 1 FROM answers WHERE code = ? AND question_id = ? AND voter = ?",
                               (code, question_id, voter)).fetchone()
            if not known and db.execute("SELECT COUNT(*) FROM answers WHERE code = ? AND question_id = ?",
                                        (code, question_id)).fetchone()[0] >= MAX_VOTERS:
                raise PollError(f"this question already has {MAX_VOTERS} answers")
            db.execute("INSERT INTO answers VALUES (?, ?, ?, ?, ?) ON CONFLICT (code, question_id, voter) "
                       "DO UPDATE SET choice = excluded.choice, answered_at = excluded.answered_at",
                       (code, question_id, voter, choice, self.clock()))

    def my_answer(self, code: str, question_id: str, voter: str) -> str | None:
        """The answer this voter gave to the question (None: none yet)."""
        with self._connect() as db:
            if self._live(db, code) is None:
                return None
            row = db.execute("SELECT choice FROM answers WHERE code = ? AND question_id = ? AND voter = ?",
                             (normalise_code(code), question_id, voter)).fetchone()
        return row[0] if row else None

    def tally(self, code: str, question_id: str) -> dict[str, int]:
        """{choice: number of voters}, every choice of the question in its order (empty: unknown
        or expired room, or a question never asked there)."""
        with self._connect() as db:
            if self._live(db, code) is None:
                return {}
            code = normalise_code(code)
            row = db.execute("SELECT choices FROM questions WHERE code = ? AND question_id = ?",
                             (code, question_id)).fetchone()
            if row is None:
                return {}
            counts = dict(db.execute("SELECT choice, COUNT(*) FROM answers WHERE code = ? AND question_id = ? "
                                     "GROUP BY choice", (code, question_id)).fetchall())
        return {c: counts.get(c, 0) for c in json.loads(row[0])}

    def purge_expired(self) -> int:
        """Delete the expired rooms with their questions and answers; returns how many rooms."""
        with self._write() as db:
            return db.execute("DELETE FROM rooms WHERE expires_at <= ?", (self.clock(),)).rowcount


_STORES: dict[str, SQLitePollStore] = {}


def data_dir() -> Path:
    """Where the app keeps its data: $DLM_DATA_DIR, by default data/ in the repository."""
    return Path(os.environ.get("DLM_DATA_DIR") or ROOT / "data").expanduser().resolve()


def default_store() -> PollStore:
    """The poll store of this app: data_dir()/poll.sqlite3 (one object per data folder and process; the
    pages call this on every refresh, so the folder is looked up once)."""
    if os.environ.get("DLM_POLL_DATABASE_URL"):
        raise RuntimeError("DLM_POLL_DATABASE_URL is set, but no server-database PollStore is written yet "
                           "(see dlm_core/poll.py); unset it to use the SQLite file in DLM_DATA_DIR")
    key = os.environ.get("DLM_DATA_DIR", "")
    if key not in _STORES:
        _STORES[key] = SQLitePollStore(data_dir() / DB_NAME)
    return _STORES[key]
