"""The live class poll: rooms, questions and anonymous answers, behind one interface (`PollStore`).

A teacher opens a room for a question and gets a short code; students join with the code and
answer; the teacher watches the tally and reveals the answer, then may move the room on to the
next question (the answers are kept per question, and `history(code)` lists every question asked in
the room with its tally; `tallies_csv` writes them as CSV, counts only). A room expires `hours` after
it was opened (then `room()` is None and `purge_expired()` deletes it with its answers).

Nothing personal is stored: a voter is a random token made by the student's browser, one answer
per voter and question (answering again replaces the earlier answer). A room also keeps the hash
of the teacher's key (`new_host_key()`), so that only the teacher can move the room on or reveal.

Where it is stored: `default_store()` reads `DLM_POLL_DATABASE_URL`. Unset, it is one SQLite file,
`$DLM_DATA_DIR/poll.sqlite3` (by default `data/` in the repository), which several server processes on
one machine may share. Set to `postgresql://user:password@host:5432/db`, it is that PostgreSQL server,
which the replicas of a department share (deploy/). One class serves both (poll_store.SQLPollStore, on
SQLAlchemy Core; psycopg 3 for PostgreSQL); the tables and their versioned upgrades are in poll_schema;
the rules every store keeps (codes, limits, errors, the interface) in poll_rules. This module is what
the pages import.

A database that cannot be used raises `PollUnavailable`, whose message is one sentence for the
teacher (what is wrong, and the file's path or the server's URL without its password).
"""

from __future__ import annotations

import threading

from dlm_core.classroom.poll_rules import (  # noqa: F401 - the poll's public names, in one place
    ALPHABET,
    CODE_LENGTH,
    MAX_CHOICE,
    MAX_CHOICES,
    MAX_HOURS,
    MAX_ID,
    MAX_PROMPT,
    VOTER_RE,
    AskedQuestion,
    PollError,
    PollStore,
    PollUnavailable,
    QuestionClosed,
    Room,
    RoomNotFound,
    new_code,
    new_host_key,
    new_voter,
    normalise_code,
    tallies_csv,
)
from dlm_core.classroom.poll_schema import DB_NAME, SCHEMA_VERSION, data_dir, database_url  # noqa: F401
from dlm_core.classroom.poll_store import SQLitePollStore, SQLPollStore  # noqa: F401

_STORES: dict[str, SQLPollStore] = {}
_LOCK = threading.Lock()


def default_store() -> PollStore:
    """The poll store of this app, from `database_url()` (one object per URL and process, made under a
    lock: the pages call this on every refresh, from many threads). Raises PollUnavailable (one sentence)
    where the database cannot be used; it is tried again on the next call."""
    url = database_url()
    store = _STORES.get(url)
    if store is None:
        with _LOCK:
            store = _STORES.get(url)
            if store is None:
                store = _STORES[url] = SQLPollStore(url)
    return store
