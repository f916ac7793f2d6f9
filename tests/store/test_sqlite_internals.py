"""The part of sqlite-utils that store/_sqlite.py overrides and that is not its public API.

sqlite-utils is pinned (pyproject.toml) to the version this was read from: `Database` runs
some of its own scripts through the private `_executescript`, which store/_sqlite.py replaces
so that a migration's statements all run in one transaction. A version that stops calling it
would commit half a migration silently; this fails first, by name."""

from __future__ import annotations

import sqlite3
from importlib import metadata

import pytest

from sleuth.store._sqlite import Database, sqlite_utils

PINNED = "4.2.1"


def test_the_installed_sqlite_utils_is_the_pinned_one():
    assert metadata.version("sqlite-utils") == PINNED, (
        "sqlite-utils changed: check _executescript is still how it runs scripts, then move "
        "the pin in pyproject.toml"
    )


def test_sqlite_utils_runs_its_scripts_through_the_methods_sleuth_replaces(tmp_path):
    assert callable(getattr(sqlite_utils.Database, "_executescript", None))
    ran: list[str] = []

    class Spy(Database):
        def executescript(self, sql):
            ran.append(sql)
            return super().executescript(sql)

        _executescript = executescript

    db = Spy(tmp_path / "spy.db")
    db["notes"].insert({"id": 1, "body": "a made-up note"}, pk="id")
    db["notes"].enable_fts(["body"], create_triggers=True)  # the public method
    db.enable_counts()  # the private one
    assert any("CREATE VIRTUAL TABLE" in sql for sql in ran)
    assert any("_counts" in sql for sql in ran)


def test_a_failing_script_leaves_nothing_of_itself_behind(tmp_path):
    db = Database(tmp_path / "atomic.db")
    db.execute("BEGIN IMMEDIATE")  # as store/database.py opens every write
    with pytest.raises(sqlite3.OperationalError):
        db.executescript("CREATE TABLE kept (id INTEGER);\nCREATE TABLE broken (;")
    db.conn.rollback()
    assert "kept" not in db.table_names()
