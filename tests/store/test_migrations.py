"""Migrating a blank database and one at the oldest schema; refusing files we must not touch."""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from sleuth.store import SCHEMA_VERSION, Store, StoreError
from sleuth.store.migrations import MIGRATIONS


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_blank_database_gets_every_migration_once(tmp_path):
    store = Store.open(tmp_path / "new.db")
    assert store.schema_version == SCHEMA_VERSION == len(MIGRATIONS)
    tables = set(store.db.table_names())
    for table in [
        "sessions",
        "turns",
        "runs",
        "steps",
        "sources",
        "chunks",
        "chunks_fts",
        "documents",
        "evidence",
        "answers",
        "ratings",
        "comparisons",
        "models",
        "training_runs",
    ]:
        assert table in tables
    assert store.db.journal_mode == "wal"
    assert store.db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert store.migrate() == []  # nothing left to apply
    store.close()
    again = Store.open(tmp_path / "new.db")
    assert again.schema_version == SCHEMA_VERSION


def test_database_at_oldest_schema_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    old = Store.open(path, migrate=False)
    assert old.migrate(upto=1) == ["m001_initial"]
    # Rows written by the oldest schema, the way that Sleuth would have written them.
    old.db.execute(
        "INSERT INTO sessions (id, title, created_at, updated_at) VALUES (1, 'Rivers', 'a', 'a')"
    )
    old.db.execute(
        "INSERT INTO turns (id, session_id, position, question, created_at) "
        "VALUES (1, 1, 1, 'Which river flows through Paris?', 'a')"
    )
    old.close()

    store = Store.open(path)
    assert store.schema_version == SCHEMA_VERSION
    assert store.runs.turn(1).question == "Which river flows through Paris?"
    # The full-text index added later covers rows written before it existed.
    assert [s.id for s in store.runs.history(query="river")] == [1]


def test_newer_database_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / "newer.db"
    Store.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _migrations (id, name, applied_at) VALUES (99, 'm099_future', 'x')")
    conn.commit()
    conn.close()
    before = digest(path)
    with pytest.raises(StoreError, match="newer Sleuth"):
        Store.open(path)
    assert digest(path) == before


def test_corrupt_database_is_refused_and_left_unchanged(tmp_path):
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not an sqlite file at all\n" * 200)
    before = digest(path)
    with pytest.raises(StoreError, match="corrupt or not a Sleuth database"):
        Store.open(path)
    assert digest(path) == before


def test_someone_elses_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a Sleuth database"):
        Store.open(path)
    assert sqlite3.connect(path).execute("SELECT name FROM sqlite_master").fetchall() == [
        ("invoices",)
    ]


def test_locked_database_gives_one_clear_sentence_and_loses_nothing(tmp_path):
    path = tmp_path / "locked.db"
    first = Store.open(path)
    session_id = first.runs.new_session("kept")
    other = sqlite3.connect(path, timeout=0)
    other.execute("BEGIN EXCLUSIVE")  # another Sleuth in the middle of a write
    second = Store.open(path, busy_timeout=0.2)
    with pytest.raises(StoreError, match="locked by another program"):
        second.runs.new_session("blocked")
    other.rollback()
    other.close()
    assert second.runs.new_session("after") > session_id
    assert first.runs.session(session_id).title == "kept"


def test_opening_waits_while_another_process_sets_the_file_up(tmp_path):
    path = tmp_path / "sleuth.db"
    setup = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(setup, fcntl.LOCK_EX)  # another Sleuth switching the new file to WAL, migrating
    opened: list[Store] = []
    opener = threading.Thread(target=lambda: opened.append(Store.open(path)))
    opener.start()
    opener.join(0.5)
    assert opener.is_alive() and not path.exists()
    fcntl.flock(setup, fcntl.LOCK_UN)
    os.close(setup)
    opener.join(30)
    assert opened[0].schema_version == SCHEMA_VERSION
    opened[0].close()


def test_unwritable_folder_is_reported(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="Cannot create the folder"):
        Store.open(blocker / "sub" / "sleuth.db")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("database or disk is full", "the disk is full"),
        ("database is locked", "locked by another program"),
        ("file is not a database", "corrupt or not a Sleuth database"),
        ("database disk image is malformed", "corrupt"),
        ("attempt to write a readonly database", "for writing"),
    ],
)
def test_sqlite_errors_become_one_actionable_sentence(error, expected):
    from sleuth.store.errors import translate

    message = str(translate(sqlite3.OperationalError(error), "/home/me/sleuth.db"))
    assert expected in message and "/home/me/sleuth.db" in message
    assert message.count(".") >= 1 and "\n" not in message


def m099_broken(db) -> None:
    """Creates a table, then fails: the table must not survive."""
    db.executescript(
        """
        CREATE TABLE half_done (id INTEGER PRIMARY KEY);
        INSERT INTO half_done (id) VALUES (1);
        INSERT INTO no_such_table (id) VALUES (1);
        """
    )


def test_a_migration_that_fails_half_way_leaves_the_database_as_it_was(tmp_path):
    # A new database: the good migrations before the broken one are undone with it.
    fresh = Store.open(tmp_path / "fresh.db", migrate=False)
    with pytest.raises(StoreError):
        fresh.database.migrate(migrations=[*MIGRATIONS[:2], m099_broken])
    assert fresh.db.table_names() == []
    fresh.close()
    # A database in use: nothing it had changes.
    store = Store.open(tmp_path / "used.db")
    store.runs.new_session("kept")
    tables = set(store.db.table_names())
    with pytest.raises(StoreError):
        store.database.migrate(migrations=[*MIGRATIONS, m099_broken])
    assert set(store.db.table_names()) == tables
    assert store.schema_version == SCHEMA_VERSION
    assert store.runs.history()[0].title == "kept"
    store.close()
