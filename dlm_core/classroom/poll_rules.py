"""The class poll's rules, independent of where it is stored: what a room and a question are, what is
refused (`PollError` and its kinds), the interface every store implements (`PollStore`), and the
tallies of a room as CSV (counts only). The stores are in poll_store; `poll` is the public face."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

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
GONE = "no such room, or it has expired"


class PollError(ValueError):
    """An operation the poll refuses; its message can be shown to the user as it is."""


class RoomNotFound(PollError):
    """No such room, or it has expired."""


class QuestionClosed(PollError):
    """The question is no longer taking answers (revealed, or the room has moved on)."""


class PollUnavailable(RuntimeError):
    """The poll's database cannot be used (unreachable, damaged, not writable, busy). Its message is one
    sentence for the teacher: what is wrong and where (a file's path, or the server's URL without its
    password)."""


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


@dataclass(frozen=True)
class AskedQuestion:
    """One question asked in a room, with its tally (for the teacher's record of the lecture)."""

    question_id: str
    prompt: str
    tally: dict[str, int]  # every choice, in order
    revealed: bool
    answer_index: int | None  # None until revealed
    asked_at: float


@runtime_checkable
class PollStore(Protocol):
    """What the pages need from a poll store (poll_store.SQLPollStore, on SQLite or PostgreSQL)."""

    def open_room(self, question_id: str, prompt: str, choices: Sequence[str], hours: float = 4, *,
                  answer_index: int | None = None, why: str = "", host_key: str | None = None) -> str: ...

    def set_question(self, code: str, question_id: str, prompt: str, choices: Sequence[str], *,
                     answer_index: int | None = None, why: str = "") -> None: ...

    def room(self, code: str) -> Room | None: ...

    def is_host(self, code: str, host_key: str) -> bool: ...

    def answer(self, code: str, question_id: str, voter: str, choice: str) -> None: ...

    def my_answer(self, code: str, question_id: str, voter: str) -> str | None: ...

    def tally(self, code: str, question_id: str) -> dict[str, int]: ...

    def history(self, code: str) -> list[AskedQuestion]: ...

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


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_question(question_id: str, prompt: str, choices: Sequence[str], answer_index: int | None,
                   why: str) -> tuple[str, ...]:
    """The choices as a tuple, or PollError saying what is wrong with the question."""
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


def check_hours(hours: float) -> None:
    if not 0 < hours <= MAX_HOURS:
        raise PollError(f"a room lasts more than 0 and at most {MAX_HOURS:g} hours")


CSV_COLUMNS = ("question_number", "question", "choice", "count", "share_percent", "is_the_answer")


def tallies_csv(history: Sequence[AskedQuestion]) -> str:
    """The room's tallies as CSV, one row per question and choice: counts only, nothing about who answered.
    `is_the_answer` is yes/no once the question was revealed, empty before."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for n, q in enumerate(history, 1):
        total = sum(q.tally.values())
        for i, (choice, count) in enumerate(q.tally.items()):
            mark = "" if not q.revealed or q.answer_index is None else ("yes" if i == q.answer_index else "no")
            w.writerow([n, _plain_cell(q.prompt), _plain_cell(choice), count,
                        f"{100 * count / total:.1f}" if total else "0.0", mark])
    return out.getvalue()


def _plain_cell(text: str) -> str:
    """A cell a spreadsheet will not run as a formula (=, +, -, @ at the start: CSV injection)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
