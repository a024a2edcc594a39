"""The poll's database: versioned schema upgrades, the store chosen by DLM_POLL_DATABASE_URL, and the one
sentence a teacher gets when the database cannot be used (damaged, not writable, unreachable)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_poll import CHOICES, empty_postgres, voter

from dlm_core.classroom import poll, poll_schema
from dlm_core.classroom.poll import PollUnavailable, SQLitePollStore, SQLPollStore

ROOT = Path(__file__).resolve().parent.parent

# What the poll's SQLite file held before its schema was versioned (the app's SCHEMA until then).
OLD_SCHEMA = """
CREATE TABLE rooms (code TEXT PRIMARY KEY, question_id TEXT NOT NULL, host_hash TEXT, created_at REAL NOT NULL,
                    expires_at REAL NOT NULL);
CREATE TABLE questions (code TEXT NOT NULL REFERENCES rooms(code) ON DELETE CASCADE, question_id TEXT NOT NULL,
    prompt TEXT NOT NULL, choices TEXT NOT NULL, answer_index INTEGER, why TEXT NOT NULL DEFAULT '',
    revealed INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (code, question_id));
CREATE TABLE answers (code TEXT NOT NULL, question_id TEXT NOT NULL, voter TEXT NOT NULL, choice TEXT NOT NULL,
    answered_at REAL NOT NULL, PRIMARY KEY (code, question_id, voter),
    FOREIGN KEY (code, question_id) REFERENCES questions(code, question_id) ON DELETE CASCADE);
CREATE INDEX rooms_expiry ON rooms(expires_at);
INSERT INTO rooms VALUES ('ABCDEFGH', 'q1', NULL, 1000.0, 9e12);
INSERT INTO questions VALUES ('ABCDEFGH', 'q1', 'Which?', '["masked", "uniform", "gaussian"]', 0, 'why', 0);
INSERT INTO answers VALUES ('ABCDEFGH', 'q1', 'voter-0001-abcdef', 'uniform', 1001.0);
"""


def test_a_file_from_before_versioning_is_upgraded_in_place_with_its_data(tmp_path):
    path = tmp_path / "poll.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
    store = SQLitePollStore(path)
    assert poll_schema.version(store.engine) == poll_schema.SCHEMA_VERSION == 2
    assert store.tally("ABCDEFGH", "q1") == {"masked": 0, "uniform": 1, "gaussian": 0}
    assert [q.asked_at for q in store.history("ABCDEFGH")] == [1000.0]  # filled in by step 2 from the room
    store.answer("ABCDEFGH", "q1", voter(2), "masked")
    store.close()
    again = SQLitePollStore(path)  # opening again changes nothing
    assert poll_schema.upgrade(again.engine) == (2, 2)
    assert again.tally("ABCDEFGH", "q1") == {"masked": 1, "uniform": 1, "gaussian": 0}


def test_a_database_newer_than_the_app_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'poll.sqlite3'}"
    SQLPollStore(url).close()
    with sqlite3.connect(tmp_path / "poll.sqlite3") as db:
        db.execute("UPDATE poll_schema SET version = 99")
    with pytest.raises(PollUnavailable, match="schema version 99, newer than this app"):
        SQLPollStore(url)


def test_replicas_starting_at_once_upgrade_a_new_postgres_database_once(pg_url):
    empty_postgres(pg_url)
    stores, errors, barrier = [], [], threading.Barrier(6)

    def replica():
        try:
            barrier.wait(timeout=30)
            stores.append(SQLPollStore(pg_url))
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=replica) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors and len(stores) == 6
    with stores[0].engine.connect() as db:
        assert db.execute(sa.text("SELECT version FROM poll_schema")).scalars().all() == [2]  # one row
    code = stores[0].open_room("q", "Which?", CHOICES)
    stores[3].answer(code, "q", voter(1), "masked")
    assert stores[5].tally(code, "q")["masked"] == 1
    for s in stores:
        s.close()


def test_the_command_line_reports_and_upgrades_the_version(tmp_path):
    url = f"sqlite:///{tmp_path / 'p.sqlite3'}"

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "dlm_core.classroom.poll_schema", *args, "--url", url],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    r = cli("status")
    assert r.returncode == 0 and r.stdout.strip().endswith("schema version 0 (this app: 2)"), r.stdout + r.stderr
    r = cli("upgrade")
    assert r.returncode == 0 and r.stdout.strip().endswith("schema version 0 -> 2"), r.stderr
    assert cli("status").stdout.strip().endswith("schema version 2 (this app: 2)")
    (tmp_path / "bad.sqlite3").write_bytes(b"not a database at all" * 100)
    r = subprocess.run([sys.executable, "-m", "dlm_core.classroom.poll_schema", "upgrade", "--url",
                        f"sqlite:///{tmp_path / 'bad.sqlite3'}"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr.startswith("error: The poll database") and "Traceback" not in r.stderr


# -------------------------------------------------------------- which store, from the environment


def test_default_store_is_the_sqlite_file_in_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("DLM_POLL_DATABASE_URL", raising=False)
    monkeypatch.setenv("DLM_DATA_DIR", str(tmp_path / "here"))
    store = poll.default_store()
    assert store.is_sqlite and store.path == (tmp_path / "here" / "poll.sqlite3").resolve() and store.path.exists()
    assert poll.default_store() is store
    monkeypatch.delenv("DLM_DATA_DIR")
    assert poll.data_dir() == ROOT / "data"


def test_default_store_is_the_server_named_by_the_url(pg_url, monkeypatch, tmp_path):
    empty_postgres(pg_url)
    monkeypatch.setenv("DLM_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DLM_POLL_DATABASE_URL", pg_url)
    store = poll.default_store()
    assert not store.is_sqlite and store.engine.dialect.name == "postgresql" and store.engine.driver == "psycopg"
    assert poll.default_store() is store and not (tmp_path / "poll.sqlite3").exists()  # never a file instead
    password = pg_url.split(":")[2].split("@")[0]
    assert password not in store.where and "***" in store.where


@pytest.mark.parametrize("url, says", [
    ("postgresql://dlm:secret@127.0.0.1:1/dlm", "The poll database at postgresql://dlm:***@127.0.0.1:1/dlm "
                                                 "cannot be used"),
    ("not a url", "DLM_POLL_DATABASE_URL is not a database URL"),
    ("mysql://u@h/db", "the poll runs on SQLite or PostgreSQL, not on mysql"),
])
def test_a_database_that_cannot_be_used_is_one_sentence(url, says, monkeypatch):
    monkeypatch.setenv("DLM_POLL_DATABASE_URL", url)
    with pytest.raises(PollUnavailable) as e:
        poll.default_store()
    assert str(e.value).startswith(says) and "secret" not in str(e.value) and "\n" not in str(e.value)


def test_a_damaged_or_unwritable_file_is_one_sentence_with_its_path(tmp_path):
    bad = tmp_path / "damaged.sqlite3"
    bad.write_bytes(b"\x00garbage, not SQLite" * 500)
    with pytest.raises(PollUnavailable) as e:
        SQLitePollStore(bad)
    assert str(e.value) == (f"The poll database {bad} is damaged or is not a SQLite file: move it away (the poll "
                            "then starts a new, empty one) or set DLM_DATA_DIR to another folder.")
    folder = tmp_path / "a-directory.sqlite3"
    folder.mkdir()
    with pytest.raises(PollUnavailable, match=f"^The poll database {folder} cannot be written"):
        SQLitePollStore(folder)
    (tmp_path / "file").write_text("x")
    with pytest.raises(PollUnavailable, match=f"^The poll database {tmp_path / 'file' / 'poll.sqlite3'} cannot be "
                                              "written .*set DLM_DATA_DIR to another folder"):
        SQLitePollStore(tmp_path / "file" / "poll.sqlite3")


def test_a_file_damaged_while_the_app_runs_is_one_sentence_too(tmp_path):
    path = tmp_path / "poll.sqlite3"
    store = SQLitePollStore(path)
    code = store.open_room("q", "Which?", CHOICES)
    store.close()
    for p in tmp_path.glob("poll.sqlite3*"):
        p.write_bytes(b"\xff" * 8192)
    with pytest.raises(PollUnavailable, match="is damaged or is not a SQLite file"):
        store.tally(code, "q")
