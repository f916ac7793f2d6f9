"""The database: one SQLite file (WAL, foreign keys on), opened, migrated and written to here.

`Database` holds the connection, its transactions and the migrations; each store area
(store.py) writes through it. Each write is its own short `BEGIN IMMEDIATE` transaction, so a
research run's steps are durable as they happen and a crash loses at most the step in flight.
sqlite-utils does what it is good at (inserts, upserts, `table.get`, full-text indexes);
queries that join or aggregate are SQL, next to the method that needs them.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from ._sqlite import Database as UtilsDatabase
from ._sqlite import sqlite_utils
from .errors import NotFound, StoreError, translate
from .migrations import MIGRATIONS
from .rows import make

SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_S = 5.0
# How long opening waits for another process that is setting the same file up (WAL, migrations).
SETUP_WAIT_S = 60.0

Row = TypeVar("Row")


@contextlib.contextmanager
def setting_up(path: Path, wait_s: float) -> Iterator[None]:
    """Hold the database's setup lock (an flock on `<file>.lock` beside it) while a process
    opens it. Switching a new file to WAL and migrating it are steps in which SQLite may answer
    "locked" at once, without waiting out the busy timeout (a reader that wants to write while
    another process writes is a deadlock to SQLite). One process at a time does them; the rest
    wait their turn here and find the file ready. Released as soon as the store is open."""
    try:
        import fcntl
    except ImportError:  # not POSIX: SQLite's own locking alone
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:  # a folder we cannot write to: SQLite says so, in its words
        yield
        return
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise translate(sqlite3.OperationalError("database is locked"), path) from None
                time.sleep(0.02)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def now() -> str:
    """The current time as an ISO-8601 UTC string (what every *_at column holds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def process_alive(pid: int) -> bool:
    """Whether a process with this id is running on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


# The command that lists a kind of row's ids, where it is not `sleuth history`.
_LISTED_BY = {"model": "sleuth models"}


class Database:
    """The connection, its transactions and the migrations; what every store area shares.
    Safe to share between threads (one lock serialises statements)."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.utils = UtilsDatabase(conn, execute_plugins=False)
        self.path = path
        self.lock = threading.RLock()
        # The time every *_at column gets; tests fix it to draw stable screenshots.
        self.clock: Callable[[], str] = now

    # -- transactions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """One immediate transaction; sqlite errors become StoreError."""
        with self.lock:
            try:
                self.utils.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc
            try:
                yield
                self.utils.execute("COMMIT")
            except BaseException as exc:
                if self.utils.conn.in_transaction:
                    self.utils.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise StoreError(f"Refused by the database: {exc}.") from exc
                if isinstance(exc, sqlite_utils.db.NotFoundError):
                    raise NotFound(
                        "A row this change needed is gone (deleted by another Sleuth?)."
                    ) from exc
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path) from exc
                raise

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self.lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc

    # -- statements --------------------------------------------------------------------------

    def insert(self, table: str, values: dict[str, Any]) -> int:
        """Insert one row (inside `write()`); dicts and lists are stored as JSON. Returns its id."""
        return int(self.utils[table].insert(values).last_pk)

    def execute(self, sql: str, params: Sequence | None = None) -> sqlite3.Cursor:
        """One statement (inside `write()` for writes)."""
        return self.utils.execute(sql, params or [])

    def query(self, cls: type[Row], sql: str, params: Sequence = ()) -> list[Row]:
        """Rows of `cls` for a SELECT."""
        with self.read():
            return [make(cls, row) for row in self.utils.query(sql, params)]

    def first(self, cls: type[Row], sql: str, params: Sequence = ()) -> Row | None:
        """The first row of a SELECT, or None."""
        rows = self.query(cls, sql, params)
        return rows[0] if rows else None

    def get(self, cls: type[Row], table: str, row_id: int, what: str) -> Row:
        """The row with this id, or NotFound naming what was asked for."""
        with self.read():
            try:
                return make(cls, self.utils[table].get(row_id))
            except sqlite_utils.db.NotFoundError:
                lists = _LISTED_BY.get(what, "sleuth history")
                raise NotFound(f"There is no {what} {row_id}: `{lists}` lists the ids.") from None

    def scalar(self, sql: str, params: Sequence = ()) -> Any:
        """The first column of the first row of a SELECT."""
        with self.read():
            row = self.utils.execute(sql, params).fetchone()
        return row[0] if row else None

    # -- migrations --------------------------------------------------------------------------

    def applied_migrations(self) -> list[str]:
        tables = set(self.utils.table_names())
        if "_migrations" not in tables:
            if tables - {"sqlite_sequence"}:
                raise StoreError(
                    f"{self.path} is an SQLite file but not a Sleuth database: point SLEUTH_HOME "
                    "elsewhere or move the file aside."
                )
            return []
        return [
            row[0]
            for row in self.utils.execute("SELECT name FROM _migrations ORDER BY id").fetchall()
        ]

    def check_known(self, applied: list[str], migrations=None) -> list[str]:
        known = [m.__name__ for m in (MIGRATIONS if migrations is None else migrations)]
        if any(name not in known for name in applied) or len(applied) > len(known):
            raise StoreError(
                f"{self.path} was written by a newer Sleuth (schema {len(applied)}, this one "
                f"knows {len(known)}): upgrade Sleuth; the file was left unchanged."
            )
        return applied

    def migrate(self, upto: int | None = None, migrations=None) -> list[str]:
        """Apply the migrations not yet applied (up to number `upto`); return their names.

        What is applied is read and changed under one write lock (`BEGIN IMMEDIATE`), so any
        number of Sleuth processes may open a new or old database at once: the first migrates,
        the others wait and then find nothing to do (an up-to-date database takes no lock).
        All of it is one transaction: a failing statement leaves the database as it was.
        """
        migrations = MIGRATIONS if migrations is None else migrations
        target = len(migrations) if upto is None else upto
        wanted = {m.__name__ for m in migrations[:target]}
        if wanted <= set(self.check_known(self.applied_migrations(), migrations)):
            return []  # up to date: no need to wait for another writer
        done = []
        with self.write():
            applied = self.check_known(self.applied_migrations(), migrations)
            for number, migration in enumerate(migrations[:target], start=1):
                if migration.__name__ in applied:
                    continue
                if number == 1:
                    self.utils.execute(
                        "CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, "
                        "name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
                    )
                migration(self.utils)
                self.insert(
                    "_migrations",
                    {"id": number, "name": migration.__name__, "applied_at": self.clock()},
                )
                done.append(migration.__name__)
        return done
