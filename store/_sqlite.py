"""The one place sqlite-utils is imported, and the one place SQL scripts are run."""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Iterator


def _import_sqlite_utils():
    """sqlite-utils imports pandas and numpy, when installed, only to map their types in
    inserts, which Sleuth never does; that is half a second of the app's start-up. Hide the
    two (if not imported yet) while it imports; they import normally afterwards."""
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            del sys.modules[name]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()


def statements(script: str) -> Iterator[str]:
    """The complete statements of an SQL script, one at a time (triggers with their inner
    semicolons stay whole: sqlite3 itself says when a statement is complete)."""
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            if pending.strip():
                yield pending.strip()
            pending = ""
    if pending.strip():
        yield pending.strip()


class Database(sqlite_utils.Database):
    """sqlite-utils' Database, with scripts run inside the open transaction.

    sqlite3's `executescript` COMMITs whatever transaction is open before it runs, which would
    make a migration half-applied when one of its statements fails. Every script here (ours,
    and the ones sqlite-utils runs for us, such as `enable_fts`) runs statement by statement
    in the caller's transaction instead, whatever sqlite-utils version is installed.
    """

    def executescript(self, sql: str) -> sqlite3.Cursor:
        cursor = self.conn.cursor()
        for statement in statements(sql):
            cursor.execute(statement)
        return cursor

    _executescript = executescript
