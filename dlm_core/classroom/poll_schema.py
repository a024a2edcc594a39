"""The poll's database: its tables, their versioned upgrades, and the engine (pool, timeouts) for SQLite
or PostgreSQL, through SQLAlchemy Core.

Schema. Explicit and versioned: `MIGRATIONS[i]` takes the database from version i to i + 1, and the
table `poll_schema` holds the version reached (one row). `upgrade(engine)` applies the missing steps in
one transaction, under a lock (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE), so replicas
starting together upgrade once. A database newer than this code is refused, never used half-understood.
A SQLite file made before versioning (the three tables, no `poll_schema`) counts as version 0 and
is upgraded in place: step 1 is the original `CREATE TABLE IF NOT EXISTS`, so it keeps its data.

    python -m dlm_core.classroom.poll_schema status  [--url URL]   # the version of the database
    python -m dlm_core.classroom.poll_schema upgrade [--url URL]   # bring it to SCHEMA_VERSION

(URL: by default `DLM_POLL_DATABASE_URL`, else the SQLite file of `DLM_DATA_DIR`.) The app also upgrades
when it opens the store, so a new SQLite file needs no step; a department runs `upgrade` once, before its
replicas start (deploy/department.py does).

Engine. SQLite: a pool of connections to one file, WAL, a busy timeout, foreign keys on; every write is
`BEGIN IMMEDIATE` (it never has to upgrade a read lock, which in WAL mode fails at once instead of
waiting), reads a plain deferred BEGIN (one snapshot per operation). PostgreSQL (psycopg 3): a pool of
`DLM_POLL_POOL_SIZE` (default 5) connections plus 10 more under a burst, per process, checked before use
(a restarted database server costs one failed check, not an error on screen), recycled after 30 min; a
5 s connect timeout, a 10 s statement timeout, a 5 s lock timeout and a 30 s idle-in-transaction timeout,
so a stuck operation fails in seconds instead of holding a student's page. Every operation of the
store holds a connection for a few milliseconds, so 15 connections serve hundreds of voters per replica.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event

from dlm_core import ROOT
from dlm_core.classroom.poll_rules import PollUnavailable

DB_NAME = "poll.sqlite3"

meta = sa.MetaData()
rooms = sa.Table(
    "rooms", meta,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("question_id", sa.Text, nullable=False),
    sa.Column("host_hash", sa.Text),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False),
)
questions = sa.Table(
    "questions", meta,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("question_id", sa.Text, primary_key=True),
    sa.Column("prompt", sa.Text, nullable=False),
    sa.Column("choices", sa.Text, nullable=False),  # a JSON list
    sa.Column("answer_index", sa.Integer),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("revealed", sa.Integer, nullable=False),
    sa.Column("asked_at", sa.Double),  # version 2: when the question was first asked in the room
)
answers = sa.Table(
    "answers", meta,
    sa.Column("code", sa.Text, primary_key=True),
    sa.Column("question_id", sa.Text, primary_key=True),
    sa.Column("voter", sa.Text, primary_key=True),
    sa.Column("choice", sa.Text, nullable=False),
    sa.Column("answered_at", sa.Double, nullable=False),
)

# One list of statements per step; the same SQL for both databases (DOUBLE PRECISION is a REAL in SQLite).
MIGRATIONS: list[list[str]] = [
    [  # 0 -> 1: the three tables (exactly what the SQLite files of before versioning hold)
        """CREATE TABLE IF NOT EXISTS rooms (
            code TEXT PRIMARY KEY,
            question_id TEXT NOT NULL,
            host_hash TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            expires_at DOUBLE PRECISION NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS questions (
            code TEXT NOT NULL REFERENCES rooms(code) ON DELETE CASCADE,
            question_id TEXT NOT NULL,
            prompt TEXT NOT NULL,
            choices TEXT NOT NULL,
            answer_index INTEGER,
            why TEXT NOT NULL DEFAULT '',
            revealed INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (code, question_id))""",
        """CREATE TABLE IF NOT EXISTS answers (
            code TEXT NOT NULL,
            question_id TEXT NOT NULL,
            voter TEXT NOT NULL,
            choice TEXT NOT NULL,
            answered_at DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (code, question_id, voter),
            FOREIGN KEY (code, question_id) REFERENCES questions(code, question_id) ON DELETE CASCADE)""",
        "CREATE INDEX IF NOT EXISTS rooms_expiry ON rooms(expires_at)",
    ],
    [  # 1 -> 2: when each question was first asked (the teacher's record lists them in that order)
        "ALTER TABLE questions ADD COLUMN asked_at DOUBLE PRECISION",
        "UPDATE questions SET asked_at = (SELECT created_at FROM rooms WHERE rooms.code = questions.code)",
    ],
]
SCHEMA_VERSION = len(MIGRATIONS)
_LOCK_ID = 7_242_022  # PostgreSQL advisory lock taken while upgrading


def normalise_url(url: str) -> str:
    """postgresql://... means psycopg 3 (SQLAlchemy's default PostgreSQL driver would be psycopg2)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def public_url(url: str) -> str:
    """The URL as it may be shown: without its password."""
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(an unreadable URL)"


def make_engine(url: str, *, busy_timeout_s: float = 15.0) -> sa.Engine:
    """An engine for the poll: the pool, timeouts and per-connection settings of the module docstring."""
    try:
        parsed = sa.make_url(normalise_url(url))
    except sa.exc.ArgumentError as e:
        raise PollUnavailable(f"DLM_POLL_DATABASE_URL is not a database URL ({e}); "
                              "write it as postgresql://user:password@host:5432/database") from None
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(parsed, pool_size=5, max_overflow=10, pool_timeout=30,
                                  connect_args={"timeout": busy_timeout_s, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn, _record) -> None:
            dbapi_conn.isolation_level = None  # transactions are begun by us (below), not by the driver
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")  # with WAL: a crash of the app loses no commit
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("poll_write") else "BEGIN")

        return engine
    if parsed.get_backend_name() != "postgresql":
        raise PollUnavailable(f"the poll runs on SQLite or PostgreSQL, not on {parsed.get_backend_name()} "
                              f"({public_url(url)})")
    pool_size = int(os.environ.get("DLM_POLL_POOL_SIZE") or 5)
    return sa.create_engine(
        parsed, pool_size=pool_size, max_overflow=10, pool_timeout=10, pool_pre_ping=True, pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "dlm-visualiser",
                      "options": "-c statement_timeout=10000 -c lock_timeout=5000 "
                                 "-c idle_in_transaction_session_timeout=30000"})


def describe(error: BaseException, where: str, sqlite: bool) -> str:
    """One sentence for the teacher: what is wrong with the poll's database, and where it is."""
    text = str(getattr(error, "orig", None) or error).strip().splitlines()[0] if str(error).strip() else \
        type(error).__name__
    low = text.lower()
    if isinstance(error, sa.exc.TimeoutError):
        return f"The poll database at {where} is overloaded (no free connection within the time allowed); try again."
    if not sqlite:
        return f"The poll database at {where} cannot be used: {text}."
    if "not a database" in low or "malformed" in low or "file is encrypted" in low:
        return (f"The poll database {where} is damaged or is not a SQLite file: move it away (the poll then "
                "starts a new, empty one) or set DLM_DATA_DIR to another folder.")
    if "locked" in low or "busy" in low:
        return f"The poll database {where} is locked by another program; try again in a moment."
    if isinstance(error, OSError) or any(w in low for w in ("readonly", "read-only", "unable to open",
                                                            "permission", "disk i/o", "not a directory")):
        return (f"The poll database {where} cannot be written ({text}): check that its folder exists and the "
                "server may write there, or set DLM_DATA_DIR to another folder.")
    return f"The poll database {where} cannot be used: {text}."


def _begin_write(engine: sa.Engine):
    return engine.connect().execution_options(poll_write=True)


def version(engine: sa.Engine) -> int:
    """The schema version of the database (0: no poll tables, or tables from before versioning)."""
    with engine.connect() as db:
        if not sa.inspect(db).has_table("poll_schema"):
            return 0
        return int(db.execute(sa.text("SELECT version FROM poll_schema")).scalar_one_or_none() or 0)


def upgrade(engine: sa.Engine) -> tuple[int, int]:
    """Apply the missing migrations in one transaction, under a lock; returns (version before, after).
    A database newer than this code raises PollUnavailable."""
    with _begin_write(engine) as db, db.begin():
        if engine.dialect.name == "postgresql":
            db.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
        db.execute(sa.text("CREATE TABLE IF NOT EXISTS poll_schema (version INTEGER NOT NULL)"))
        before = db.execute(sa.text("SELECT version FROM poll_schema")).scalar_one_or_none()
        if before is None:
            db.execute(sa.text("INSERT INTO poll_schema (version) VALUES (0)"))
            before = 0
        if before > SCHEMA_VERSION:
            raise PollUnavailable(f"the poll database is at schema version {before}, newer than this app "
                                  f"({SCHEMA_VERSION}): update the app before using it")
        for step in MIGRATIONS[before:]:
            for statement in step:
                db.execute(sa.text(statement))
        db.execute(sa.text("UPDATE poll_schema SET version = :v"), {"v": SCHEMA_VERSION})
    return before, SCHEMA_VERSION


def prepare_sqlite_file(engine: sa.Engine) -> None:
    """WAL mode, once (it is kept in the file; it cannot be set inside a transaction)."""
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA journal_mode=WAL")
    finally:
        raw.close()


def data_dir() -> Path:
    """Where the app keeps its data: $DLM_DATA_DIR, by default data/ in the repository."""
    return Path(os.environ.get("DLM_DATA_DIR") or ROOT / "data").expanduser().resolve()


def database_url() -> str:
    """The poll's database: $DLM_POLL_DATABASE_URL, else the SQLite file data_dir()/poll.sqlite3."""
    return os.environ.get("DLM_POLL_DATABASE_URL") or f"sqlite:///{data_dir() / DB_NAME}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m dlm_core.classroom.poll_schema", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["status", "upgrade"])
    ap.add_argument("--url", help="the database (default: DLM_POLL_DATABASE_URL, else the SQLite file)")
    a = ap.parse_args(argv)
    url = a.url or database_url()
    try:
        engine = make_engine(url)
        try:
            if a.command == "upgrade":
                before, after = upgrade(engine)
                print(f"{public_url(url)}: schema version {before} -> {after}")
            else:
                print(f"{public_url(url)}: schema version {version(engine)} (this app: {SCHEMA_VERSION})")
        finally:
            engine.dispose()
    except (PollUnavailable, sa.exc.SQLAlchemyError, sqlite3.Error, OSError) as e:
        msg = e if isinstance(e, PollUnavailable) else describe(e, public_url(url), url.startswith("sqlite"))
        print(f"error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
