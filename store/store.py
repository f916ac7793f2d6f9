"""`Store`, what the rest of Sleuth holds: one object with an area per concern, each owning
its tables' SQL and returning frozen rows (rows.py), all writing through one `Database`
(database.py):

    store.runs      sessions, turns, runs, steps, evidence, answers, history  (runs.py)
    store.feedback  ratings and comparisons                                   (feedback.py)
    store.library   sources, chunks and their BM25 search, indexed files       (library.py)
    store.registry  model rows: base models and LoRA adapters                  (registry.py)
    store.training  training runs and their per-step metrics                  (training.py)
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ._sqlite import sqlite_utils
from .database import BUSY_TIMEOUT_S, SETUP_WAIT_S, Database, setting_up
from .errors import StoreError, translate
from .feedback import Feedback
from .library import Library
from .paths import private_dir, private_file
from .registry import Registry
from .runs import Runs
from .training import Training


class Store:
    """Sleuth's database. Open with `Store.open(path)`; safe to share between threads."""

    def __init__(self, database: Database):
        self.database = database
        self.runs = Runs(database)
        self.feedback = Feedback(database)
        self.library = Library(database)
        self.registry = Registry(database)
        self.training = Training(database)

    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils database (for inspection in tests and benchmarks)."""
        return self.database.utils

    @property
    def path(self) -> Path:
        return self.database.path

    @classmethod
    def open(
        cls, path: Path | str, *, migrate: bool = True, busy_timeout: float = BUSY_TIMEOUT_S
    ) -> Store:
        """Open (creating if needed) and migrate the database at `path`.

        Raises StoreError with one actionable sentence when the file is locked, corrupt, from a
        newer Sleuth, or cannot be written. A newer or corrupt file is never altered.
        `busy_timeout` is how long to wait for another writer before calling it locked.
        """
        path = Path(path).expanduser()
        try:
            private_dir(path.parent)
        except OSError as exc:
            raise StoreError(f"Cannot create the folder {path.parent}: {exc.strerror}.") from exc
        with setting_up(path, max(SETUP_WAIT_S, busy_timeout)):
            return cls._open(path, migrate, busy_timeout)

    @classmethod
    def _open(cls, path: Path, migrate: bool, busy_timeout: float) -> Store:
        # A file of no bytes is a database not yet written (SQLite's own reading of it).
        new = not path.exists() or path.stat().st_size == 0
        try:
            conn = sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False)
            if new:
                # The journal and WAL files take the database file's mode: 0600 for all three.
                private_file(path)
            database = Database(conn, path)
            # Reading the schema first makes a corrupt, foreign or newer file fail here, before
            # any pragma that would write to it.
            database.check_known(database.applied_migrations())
            database.utils.execute("PRAGMA foreign_keys = ON")
            if database.utils.journal_mode != "wal":
                database.utils.enable_wal()
            database.utils.execute("PRAGMA synchronous = NORMAL")
            store = cls(database)
            if migrate:
                database.migrate()
                store.close_abandoned()
        except sqlite3.Error as exc:
            raise translate(exc, path) from exc
        return store

    def migrate(self, upto: int | None = None) -> list[str]:
        """Apply the migrations not yet applied (up to number `upto`); return their names."""
        return self.database.migrate(upto)

    def close_abandoned(self) -> None:
        """Close what a process that is gone left running: research runs become
        'interrupted', training runs 'failed' (resumable). Every Sleuth does this on start."""
        self.runs.close_abandoned()
        self.training.close_abandoned()

    @property
    def schema_version(self) -> int:
        """How many migrations this database has had."""
        with self.database.read():
            return len(self.database.applied_migrations())

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self.database.lock:
            self.database.utils.close()
