"""The Store: one SQLite file (WAL, foreign keys on), every SQL statement Sleuth runs.

Other packages call these typed methods and never write SQL. Each write is its own short
`BEGIN IMMEDIATE` transaction, so a research run's steps are durable as they happen and a
crash loses at most the step in flight.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ._sqlite import sqlite_utils
from .errors import NotFound, StoreError, translate
from .migrations import MIGRATIONS

SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_S = 5.0

# Columns stored as JSON text, decoded on the way out.
_JSON_COLUMNS = {
    "settings",
    "plan",
    "data",
    "citations",
    "verification",
    "messages",
    "sampling",
    "config",
    "evaluation",
    "summary",
    "metrics",
    "results",
    "links",
}


def now() -> str:
    """The current time as an ISO-8601 UTC string (what every *_at column holds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _decode(row: dict[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    for key in _JSON_COLUMNS & row.keys():
        if isinstance(row[key], str):
            row[key] = json.loads(row[key])
    return row


class Store:
    """Sleuth's database. Open with `Store.open(path)`; safe to share between threads."""

    def __init__(self, db: sqlite_utils.Database, path: Path):
        self.db = db
        self.path = path
        self._lock = threading.RLock()

    # -- opening and migrating ---------------------------------------------------------------

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
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"Cannot create the folder {path.parent}: {exc.strerror}.") from exc
        try:
            conn = sqlite3.connect(path, timeout=busy_timeout, check_same_thread=False)
            db = sqlite_utils.Database(conn, execute_plugins=False)
            store = cls(db, path)
            # Reading the schema first makes a corrupt, foreign or newer file fail here, before
            # any pragma that would write to it.
            store._check_known(store._applied_migrations())
            db.execute("PRAGMA foreign_keys = ON")
            if db.journal_mode != "wal":
                db.enable_wal()
            db.execute("PRAGMA synchronous = NORMAL")
            if migrate:
                store.migrate()
        except sqlite3.Error as exc:
            raise translate(exc, path) from exc
        return store

    def close(self) -> None:
        """Close the connection (checkpointing the WAL)."""
        with self._lock:
            self.db.close()

    def _applied_migrations(self) -> list[str]:
        tables = {
            row[0]
            for row in self.db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            ).fetchall()
        }
        if "_migrations" not in tables:
            if tables - {"sqlite_sequence"}:
                raise StoreError(
                    f"{self.path} is an SQLite file but not a Sleuth database: point SLEUTH_HOME "
                    "elsewhere or move the file aside."
                )
            return []
        return [
            row[0] for row in self.db.execute("SELECT name FROM _migrations ORDER BY id").fetchall()
        ]

    def _check_known(self, applied: list[str]) -> list[str]:
        known = [m.__name__ for m in MIGRATIONS]
        if any(name not in known for name in applied) or len(applied) > len(known):
            raise StoreError(
                f"{self.path} was written by a newer Sleuth (schema {len(applied)}, this one "
                f"knows {len(known)}): upgrade Sleuth; the file was left unchanged."
            )
        return applied

    @property
    def schema_version(self) -> int:
        """How many migrations this database has had."""
        with self._read():
            return len(self._applied_migrations())

    def migrate(self, upto: int | None = None) -> list[str]:
        """Apply the migrations not yet applied (up to number `upto`); return their names."""
        known = [m.__name__ for m in MIGRATIONS]
        applied = self._check_known(self._applied_migrations())
        target = len(known) if upto is None else upto
        done = []
        for number, migration in enumerate(MIGRATIONS[:target], start=1):
            if migration.__name__ in applied:
                continue
            with self._write():
                if number == 1:
                    self.db.execute(
                        "CREATE TABLE IF NOT EXISTS _migrations (id INTEGER PRIMARY KEY, "
                        "name TEXT NOT NULL UNIQUE, applied_at TEXT NOT NULL)"
                    )
                migration(self.db)
                self.db.execute(
                    "INSERT INTO _migrations (id, name, applied_at) VALUES (?, ?, ?)",
                    [number, migration.__name__, now()],
                )
            done.append(migration.__name__)
        return done

    # -- transactions ------------------------------------------------------------------------

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One immediate transaction; sqlite errors become StoreError."""
        with self._lock:
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException as exc:
                if self.db.conn.in_transaction:
                    self.db.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError):
                    raise StoreError(f"Refused by the database: {exc}.") from exc
                if isinstance(exc, sqlite3.Error):
                    raise translate(exc, self.path) from exc
                raise

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise translate(exc, self.path) from exc

    def _insert(self, table: str, values: dict[str, Any]) -> int:
        for key in _JSON_COLUMNS & values.keys():
            if values[key] is not None and not isinstance(values[key], str):
                values[key] = _dumps(values[key])
        columns = ", ".join(f'"{k}"' for k in values)
        marks = ", ".join("?" for _ in values)
        cursor = self.db.execute(
            f"INSERT INTO {table} ({columns}) VALUES ({marks})", list(values.values())
        )
        return int(cursor.lastrowid)

    def _one(self, sql: str, params: list | tuple = ()) -> dict[str, Any] | None:
        with self._read():
            rows = list(self.db.query(sql, params))
        return _decode(rows[0]) if rows else None

    def _all(self, sql: str, params: list | tuple = ()) -> list[dict[str, Any]]:
        with self._read():
            return [_decode(row) for row in self.db.query(sql, params)]

    def _get(self, table: str, row_id: int, what: str) -> dict[str, Any]:
        row = self._one(f"SELECT * FROM {table} WHERE id = ?", [row_id])
        if row is None:
            raise NotFound(f"There is no {what} {row_id}: `sleuth history` lists the ids.")
        return row

    # -- sessions, turns, runs, steps --------------------------------------------------------

    def new_session(self, title: str) -> int:
        """Start a session (a conversation of turns); returns its id."""
        at = now()
        with self._write():
            return self._insert(
                "sessions", {"title": title[:200], "created_at": at, "updated_at": at}
            )

    def session(self, session_id: int) -> dict[str, Any]:
        """The session row."""
        return self._get("sessions", session_id, "session")

    def add_turn(self, session_id: int, question: str) -> int:
        """Append a question to a session; returns the turn id."""
        self.session(session_id)
        at = now()
        with self._write():
            position = self.db.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM turns WHERE session_id = ?",
                [session_id],
            ).fetchone()[0]
            turn_id = self._insert(
                "turns",
                {
                    "session_id": session_id,
                    "position": position,
                    "question": question,
                    "created_at": at,
                },
            )
            self.db.execute("UPDATE sessions SET updated_at = ? WHERE id = ?", [at, session_id])
        return turn_id

    def turn(self, turn_id: int) -> dict[str, Any]:
        """The turn row."""
        return self._get("turns", turn_id, "turn")

    def turns(self, session_id: int) -> list[dict[str, Any]]:
        """A session's turns in order."""
        return self._all("SELECT * FROM turns WHERE session_id = ? ORDER BY position", [session_id])

    def start_run(self, turn_id: int, settings: dict[str, Any], model_id: int | None = None) -> int:
        """Record the start of one research attempt at a turn; returns the run id."""
        with self._write():
            return self._insert(
                "runs",
                {
                    "turn_id": turn_id,
                    "status": "running",
                    "model_id": model_id,
                    "settings": settings,
                    "started_at": now(),
                },
            )

    def set_plan(self, run_id: int, plan: dict[str, Any]) -> None:
        """Store (or replace, after a reflection round or a user's edit) the run's plan."""
        with self._write():
            self.db.execute("UPDATE runs SET plan = ? WHERE id = ?", [_dumps(plan), run_id])

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        """Close a run as done, cancelled or failed."""
        if status not in {"done", "cancelled", "failed"}:
            raise ValueError(f"unknown run status {status!r}")
        with self._write():
            self.db.execute(
                "UPDATE runs SET status = ?, error = ?, ended_at = ? WHERE id = ?",
                [status, error, now(), run_id],
            )

    def run(self, run_id: int) -> dict[str, Any]:
        """The run row."""
        return self._get("runs", run_id, "run")

    def runs(self, turn_id: int) -> list[dict[str, Any]]:
        """All attempts at a turn, oldest first."""
        return self._all("SELECT * FROM runs WHERE turn_id = ? ORDER BY id", [turn_id])

    def add_step(
        self,
        run_id: int,
        kind: str,
        data: dict[str, Any],
        *,
        status: str = "ok",
        started_at: str | None = None,
        duration_ms: float | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
    ) -> int:
        """Persist one event of a run, committed at once; returns the step id."""
        with self._write():
            seq = self.db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE run_id = ?", [run_id]
            ).fetchone()[0]
            return self._insert(
                "steps",
                {
                    "run_id": run_id,
                    "seq": seq,
                    "kind": kind,
                    "status": status,
                    "data": data,
                    "started_at": started_at or now(),
                    "duration_ms": duration_ms,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                },
            )

    def steps(self, run_id: int) -> list[dict[str, Any]]:
        """A run's steps in the order they happened."""
        return self._all("SELECT * FROM steps WHERE run_id = ? ORDER BY seq", [run_id])

    # -- evidence and answers ----------------------------------------------------------------

    def add_evidence(self, run_id: int, items: list[dict[str, Any]]) -> None:
        """Store what the writer will see, numbered from 1 in the order given.

        Each item: uri, text, and optionally title, source_id, chunk_id, subquestion, score.
        Text and title are copied so the answer's context survives re-indexing.
        """
        with self._write():
            self.db.execute("DELETE FROM evidence WHERE run_id = ?", [run_id])
            for number, item in enumerate(items, start=1):
                self._insert(
                    "evidence",
                    {
                        "run_id": run_id,
                        "number": number,
                        "source_id": item.get("source_id"),
                        "chunk_id": item.get("chunk_id"),
                        "subquestion": item.get("subquestion"),
                        "title": item.get("title"),
                        "uri": item["uri"],
                        "text": item["text"],
                        "score": item.get("score"),
                    },
                )

    def evidence(self, run_id: int) -> list[dict[str, Any]]:
        """The numbered evidence of a run."""
        return self._all("SELECT * FROM evidence WHERE run_id = ? ORDER BY number", [run_id])

    def add_answer(
        self,
        run_id: int,
        *,
        text: str,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        citations: list[dict[str, Any]],
        verification: dict[str, Any] | None = None,
        model_id: int | None = None,
        model_name: str | None = None,
        base_path: str | None = None,
        adapter_path: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        duration_ms: float | None = None,
    ) -> int:
        """Store a run's answer with the exact writer messages and sampling; returns its id."""
        with self._write():
            return self._insert(
                "answers",
                {
                    "run_id": run_id,
                    "text": text,
                    "citations": citations,
                    "verification": verification,
                    "messages": messages,
                    "sampling": sampling,
                    "model_id": model_id,
                    "model_name": model_name,
                    "base_path": base_path,
                    "adapter_path": adapter_path,
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "duration_ms": duration_ms,
                    "created_at": now(),
                },
            )

    def answer(self, answer_id: int) -> dict[str, Any]:
        """The answer row, with its run's turn_id and session_id added."""
        row = self._one(
            "SELECT answers.*, runs.turn_id, turns.session_id, turns.question FROM answers "
            "JOIN runs ON runs.id = answers.run_id JOIN turns ON turns.id = runs.turn_id "
            "WHERE answers.id = ?",
            [answer_id],
        )
        if row is None:
            raise NotFound(f"There is no answer {answer_id}: `sleuth history` lists the ids.")
        return row

    def answer_for_run(self, run_id: int) -> dict[str, Any] | None:
        """The answer a run produced, if it got that far."""
        return self._one("SELECT * FROM answers WHERE run_id = ?", [run_id])

    def answers_for_turn(self, turn_id: int) -> list[dict[str, Any]]:
        """Every answer to a turn (one per run), oldest first, with its rating."""
        return self._all(
            "SELECT answers.*, ratings.thumb, ratings.stars, ratings.comment FROM answers "
            "JOIN runs ON runs.id = answers.run_id "
            "LEFT JOIN ratings ON ratings.answer_id = answers.id "
            "WHERE runs.turn_id = ? ORDER BY answers.id",
            [turn_id],
        )

    # -- feedback ----------------------------------------------------------------------------

    def rate(
        self,
        answer_id: int,
        *,
        thumb: int | None = None,
        stars: int | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Set (or change) the rating of an answer; fields left None keep their value."""
        if thumb is not None and thumb not in (-1, 1):
            raise StoreError("A thumb is +1 (up) or -1 (down).")
        if stars is not None and not 1 <= stars <= 5:
            raise StoreError(f"Stars go from 1 to 5, not {stars}.")
        self.answer(answer_id)
        at = now()
        with self._write():
            existing = self.db.execute(
                "SELECT id FROM ratings WHERE answer_id = ?", [answer_id]
            ).fetchone()
            if existing is None:
                self._insert(
                    "ratings",
                    {
                        "answer_id": answer_id,
                        "thumb": thumb,
                        "stars": stars,
                        "comment": comment,
                        "created_at": at,
                        "updated_at": at,
                    },
                )
            else:
                self.db.execute(
                    "UPDATE ratings SET thumb = COALESCE(?, thumb), stars = COALESCE(?, stars), "
                    "comment = COALESCE(?, comment), updated_at = ? WHERE answer_id = ?",
                    [thumb, stars, comment, at, answer_id],
                )
        return self.rating(answer_id)  # type: ignore[return-value]

    def clear_rating(self, answer_id: int) -> None:
        """Remove an answer's rating (the undo of a mistaken key press)."""
        with self._write():
            self.db.execute("DELETE FROM ratings WHERE answer_id = ?", [answer_id])

    def rating(self, answer_id: int) -> dict[str, Any] | None:
        """The rating of an answer, or None."""
        return self._one("SELECT * FROM ratings WHERE answer_id = ?", [answer_id])

    def compare(self, winner_id: int, loser_id: int, *, tie: bool = False) -> int:
        """Record that `winner_id` beat `loser_id` (or tied with it), replacing an earlier
        verdict on the same pair; returns the comparison id."""
        if winner_id == loser_id:
            raise StoreError("A comparison needs two different answers.")
        self.answer(winner_id)
        self.answer(loser_id)
        with self._write():
            self.db.execute(
                "DELETE FROM comparisons WHERE (winner_id = ? AND loser_id = ?) "
                "OR (winner_id = ? AND loser_id = ?)",
                [winner_id, loser_id, loser_id, winner_id],
            )
            return self._insert(
                "comparisons",
                {
                    "winner_id": winner_id,
                    "loser_id": loser_id,
                    "tie": int(tie),
                    "created_at": now(),
                },
            )

    def comparisons(self) -> list[dict[str, Any]]:
        """Every comparison, oldest first."""
        return self._all("SELECT * FROM comparisons ORDER BY id")

    def comparisons_for(self, answer_id: int) -> list[dict[str, Any]]:
        """Comparisons an answer took part in."""
        return self._all(
            "SELECT * FROM comparisons WHERE winner_id = ? OR loser_id = ? ORDER BY id",
            [answer_id, answer_id],
        )

    def feedback_counts(self) -> dict[str, int]:
        """How much feedback exists: what the trainer and the Train screen start from."""
        row = self._one(
            "SELECT (SELECT COUNT(*) FROM answers) AS answers, "
            "(SELECT COUNT(*) FROM ratings) AS ratings, "
            "(SELECT COUNT(*) FROM ratings WHERE thumb = 1 OR stars >= 4) AS positive, "
            "(SELECT COUNT(*) FROM ratings WHERE thumb = -1 OR stars <= 2) AS negative, "
            "(SELECT COUNT(*) FROM comparisons WHERE tie = 0) AS comparisons"
        )
        return dict(row or {})

    # -- history -----------------------------------------------------------------------------

    def history(self, limit: int = 20, query: str | None = None) -> list[dict[str, Any]]:
        """Recent sessions (newest first) with their turn count and answer ids.

        `query` searches questions and answers (full text); words are matched as prefixes.
        """
        params: list[Any] = []
        where = ""
        if query and query.strip():
            match = _fts_query(query)
            where = (
                "WHERE sessions.id IN ("
                "SELECT turns.session_id FROM turns_fts JOIN turns ON turns.id = turns_fts.rowid "
                "WHERE turns_fts MATCH ? UNION "
                "SELECT turns.session_id FROM answers_fts "
                "JOIN answers ON answers.id = answers_fts.rowid "
                "JOIN runs ON runs.id = answers.run_id JOIN turns ON turns.id = runs.turn_id "
                "WHERE answers_fts MATCH ?)"
            )
            params += [match, match]
        params.append(limit)
        sessions = self._all(
            f"SELECT sessions.* FROM sessions {where} ORDER BY updated_at DESC, id DESC LIMIT ?",
            params,
        )
        for session in sessions:
            session["turns"] = self._all(
                "SELECT turns.id, turns.position, turns.question, "
                "(SELECT json_group_array(answers.id) FROM answers JOIN runs "
                "ON runs.id = answers.run_id WHERE runs.turn_id = turns.id) AS answer_ids "
                "FROM turns WHERE session_id = ? ORDER BY position",
                [session["id"]],
            )
            for turn in session["turns"]:
                turn["answer_ids"] = json.loads(turn["answer_ids"] or "[]")
        return sessions

    # -- sources, chunks, documents ----------------------------------------------------------

    def save_source(
        self,
        *,
        kind: str,
        uri: str,
        text: str,
        content_hash: str,
        chunks: list[tuple[str, int, int]],
        title: str | None = None,
        published: str | None = None,
        content_type: str | None = None,
        links: list[str] | None = None,
    ) -> int:
        """Store a fetched page or read file with its chunks (text, start, end), replacing an
        earlier version of the same URI; returns the source id (stable across versions)."""
        with self._write():
            row = self.db.execute("SELECT id FROM sources WHERE uri = ?", [uri]).fetchone()
            values = {
                "kind": kind,
                "uri": uri,
                "title": title,
                "published": published,
                "content_type": content_type,
                "text": text,
                "content_hash": content_hash,
                "fetched_at": now(),
                "links": _dumps(links or []),
            }
            if row is None:
                source_id = self._insert("sources", values)
            else:
                source_id = row[0]
                sets = ", ".join(f"{k} = ?" for k in values)
                self.db.execute(
                    f"UPDATE sources SET {sets} WHERE id = ?", [*values.values(), source_id]
                )
                self.db.execute("DELETE FROM chunks WHERE source_id = ?", [source_id])
            for position, (chunk, start, end) in enumerate(chunks):
                self._insert(
                    "chunks",
                    {
                        "source_id": source_id,
                        "position": position,
                        "text": chunk,
                        "start": start,
                        "end": end,
                    },
                )
        return source_id

    def source(self, source_id: int) -> dict[str, Any]:
        """A source row (with its full text)."""
        return self._get("sources", source_id, "source")

    def source_by_uri(self, uri: str) -> dict[str, Any] | None:
        """The stored version of a URL or file path, if any."""
        return self._one("SELECT * FROM sources WHERE uri = ?", [uri])

    def chunks(self, source_id: int) -> list[dict[str, Any]]:
        """A source's chunks in reading order."""
        return self._all("SELECT * FROM chunks WHERE source_id = ? ORDER BY position", [source_id])

    def fresh_source(self, uri: str, max_age_s: float) -> dict[str, Any] | None:
        """The stored version of `uri` if it was fetched less than `max_age_s` ago."""
        row = self.source_by_uri(uri)
        if row is None or _age_s(row["fetched_at"]) > max_age_s:
            return None
        return row

    def search_chunks(
        self,
        text: str,
        *,
        source_ids: list[int] | None = None,
        kind: str | None = None,
        limit: int = 20,
    ) -> list[dict[str, Any]]:
        """Chunks ranked by BM25 against any of the words of `text` (best first), optionally
        only within some sources or one kind ("web", "file"). Each hit has its source's title
        and uri, and `score` (higher is better)."""
        match = _fts_any(text)
        if not match or source_ids == []:
            return []
        where, params = ["chunks_fts MATCH ?"], [match]
        if source_ids is not None:
            where.append("chunks.source_id IN (SELECT value FROM json_each(?))")
            params.append(_dumps(source_ids))
        if kind is not None:
            where.append("sources.kind = ?")
            params.append(kind)
        params.append(limit)
        return self._all(
            "SELECT chunks.id, chunks.source_id, chunks.position, chunks.text, sources.title, "
            "sources.uri, sources.kind, -bm25(chunks_fts) AS score FROM chunks_fts "
            "JOIN chunks ON chunks.id = chunks_fts.rowid "
            "JOIN sources ON sources.id = chunks.source_id "
            f"WHERE {' AND '.join(where)} ORDER BY bm25(chunks_fts) LIMIT ?",
            params,
        )

    def cached_search(self, backend: str, query: str, max_age_s: float) -> list | None:
        """Web-search results stored less than `max_age_s` ago, or None."""
        row = self._one(
            "SELECT * FROM search_cache WHERE backend = ? AND query = ?", [backend, query]
        )
        if row is None or _age_s(row["created_at"]) > max_age_s:
            return None
        return row["results"]

    def cache_search(self, backend: str, query: str, results: list) -> None:
        """Remember web-search results so a repeat run does not search again."""
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO search_cache (backend, query, results, created_at) "
                "VALUES (?, ?, ?, ?)",
                [backend, query, _dumps(results), now()],
            )

    def delete_source(self, source_id: int) -> None:
        """Forget a source and its chunks (evidence keeps its own copy of the text)."""
        with self._write():
            self.db.execute("DELETE FROM sources WHERE id = ?", [source_id])

    def save_document(
        self,
        *,
        path: str,
        root: str,
        size: int,
        mtime: float,
        sha256: str,
        status: str,
        source_id: int | None = None,
        error: str | None = None,
    ) -> int:
        """Record an indexed (or failed) user file; returns the document id."""
        values = {
            "path": path,
            "root": root,
            "source_id": source_id,
            "size": size,
            "mtime": mtime,
            "sha256": sha256,
            "status": status,
            "error": error,
            "indexed_at": now(),
        }
        with self._write():
            row = self.db.execute("SELECT id FROM documents WHERE path = ?", [path]).fetchone()
            if row is None:
                return self._insert("documents", values)
            sets = ", ".join(f"{k} = ?" for k in values)
            self.db.execute(f"UPDATE documents SET {sets} WHERE id = ?", [*values.values(), row[0]])
            return row[0]

    def document(self, path: str) -> dict[str, Any] | None:
        """The index record of a file path, if any."""
        return self._one("SELECT * FROM documents WHERE path = ?", [path])

    def documents(self, root: str | None = None) -> list[dict[str, Any]]:
        """Indexed files (optionally under one indexed folder), by path."""
        if root is None:
            return self._all("SELECT * FROM documents ORDER BY path")
        return self._all("SELECT * FROM documents WHERE root = ? ORDER BY path", [root])

    def library_summary(self) -> list[dict[str, Any]]:
        """Per indexed folder: files, indexed and failed counts, bytes and chunks."""
        return self._all(
            "SELECT documents.root, COUNT(*) AS files, "
            "SUM(documents.status = 'indexed') AS indexed, "
            "SUM(documents.status = 'failed') AS failed, SUM(documents.size) AS bytes, "
            "(SELECT COUNT(*) FROM chunks JOIN documents AS d ON d.source_id = chunks.source_id "
            " WHERE d.root = documents.root) AS chunks, MAX(documents.indexed_at) AS indexed_at "
            "FROM documents GROUP BY documents.root ORDER BY documents.root"
        )

    def remove_root(self, root: str) -> int:
        """Forget every file indexed under one folder (the files themselves are untouched);
        returns how many were forgotten."""
        with self._write():
            sources = [
                row[0]
                for row in self.db.execute(
                    "SELECT source_id FROM documents WHERE root = ? AND source_id IS NOT NULL",
                    [root],
                ).fetchall()
            ]
            count = self.db.execute("DELETE FROM documents WHERE root = ?", [root]).rowcount
            self.db.execute(
                "DELETE FROM sources WHERE id IN (SELECT value FROM json_each(?))",
                [_dumps(sources)],
            )
        return count

    def delete_document(self, path: str) -> None:
        """Forget an indexed file and its text."""
        with self._write():
            row = self.db.execute(
                "SELECT source_id FROM documents WHERE path = ?", [path]
            ).fetchone()
            self.db.execute("DELETE FROM documents WHERE path = ?", [path])
            if row is not None and row[0] is not None:
                self.db.execute("DELETE FROM sources WHERE id = ?", [row[0]])

    # -- training runs -----------------------------------------------------------------------

    def start_training_run(
        self, algo: str, config: dict[str, Any], parent_model_id: int | None, pid: int | None = None
    ) -> int:
        """Record the start of a training run; returns its id."""
        with self._write():
            return self._insert(
                "training_runs",
                {
                    "algo": algo,
                    "config": config,
                    "status": "running",
                    "parent_model_id": parent_model_id,
                    "started_at": now(),
                    "pid": pid,
                },
            )

    def resume_training_run(self, training_run_id: int, pid: int) -> None:
        """Mark a stopped training run as running again in process `pid`."""
        with self._write():
            self.db.execute(
                "UPDATE training_runs SET status = 'running', pid = ?, error = NULL, "
                "ended_at = NULL WHERE id = ?",
                [pid, training_run_id],
            )

    def record_checkpoint(self, training_run_id: int, step: int, path: str) -> None:
        """Remember a training run's latest checkpoint (what --resume starts from)."""
        with self._write():
            self.db.execute(
                "UPDATE training_runs SET checkpoint = ?, step = ? WHERE id = ?",
                [path, step, training_run_id],
            )

    def log_training_metrics(self, training_run_id: int, step: int, metrics: dict) -> None:
        """Store one step's metrics (loss, reward, ...); a repeated step replaces the old row."""
        with self._write():
            self.db.execute(
                "INSERT OR REPLACE INTO training_metrics (training_run_id, step, metrics, "
                "created_at) VALUES (?, ?, ?, ?)",
                [training_run_id, step, _dumps(metrics), now()],
            )

    def finish_training_run(
        self,
        training_run_id: int,
        status: str,
        *,
        error: str | None = None,
        evaluation: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        output_model_id: int | None = None,
    ) -> None:
        """Close a training run as done, failed or cancelled, with its results."""
        with self._write():
            self.db.execute(
                "UPDATE training_runs SET status = ?, error = ?, evaluation = ?, summary = ?, "
                "output_model_id = ?, ended_at = ? WHERE id = ?",
                [
                    status,
                    error,
                    _dumps(evaluation) if evaluation is not None else None,
                    _dumps(summary) if summary is not None else None,
                    output_model_id,
                    now(),
                    training_run_id,
                ],
            )

    def training_run(self, training_run_id: int) -> dict[str, Any]:
        """A training run row."""
        return self._get("training_runs", training_run_id, "training run")

    def training_runs(self) -> list[dict[str, Any]]:
        """Every training run, newest first."""
        return self._all("SELECT * FROM training_runs ORDER BY id DESC")

    def training_metrics(self, training_run_id: int) -> list[dict[str, Any]]:
        """A training run's per-step metrics in step order."""
        return self._all(
            "SELECT * FROM training_metrics WHERE training_run_id = ? ORDER BY step",
            [training_run_id],
        )

    # -- model registry ----------------------------------------------------------------------

    def register_model(
        self,
        *,
        name: str,
        base_path: str,
        base_fingerprint: str,
        adapter_path: str | None = None,
        parent_id: int | None = None,
        training_run_id: int | None = None,
        evaluation: dict[str, Any] | None = None,
    ) -> int:
        """Add a base model or an adapter to the registry (inactive); returns its id."""
        with self._write():
            return self._insert(
                "models",
                {
                    "name": name,
                    "base_path": base_path,
                    "base_fingerprint": base_fingerprint,
                    "adapter_path": adapter_path,
                    "parent_id": parent_id,
                    "training_run_id": training_run_id,
                    "active": 0,
                    "created_at": now(),
                    "evaluation": evaluation,
                },
            )

    def base_model(self, base_fingerprint: str, base_path: str, name: str) -> dict[str, Any]:
        """The registry row of a base model (no adapter), created on first use."""
        row = self._one(
            "SELECT * FROM models WHERE base_fingerprint = ? AND adapter_path IS NULL "
            "ORDER BY id LIMIT 1",
            [base_fingerprint],
        )
        if row is not None:
            return row
        model_id = self.register_model(
            name=name, base_path=base_path, base_fingerprint=base_fingerprint
        )
        return self.model(model_id)

    def model(self, model_id: int) -> dict[str, Any]:
        """A registry row."""
        return self._get("models", model_id, "model")

    def models(self, base_fingerprint: str | None = None) -> list[dict[str, Any]]:
        """Registry rows, oldest first (optionally only those over one base file)."""
        if base_fingerprint is None:
            return self._all("SELECT * FROM models ORDER BY id")
        return self._all(
            "SELECT * FROM models WHERE base_fingerprint = ? ORDER BY id", [base_fingerprint]
        )

    def active_model(self, base_fingerprint: str) -> dict[str, Any] | None:
        """The active registry row for a base file, if one was activated."""
        return self._one(
            "SELECT * FROM models WHERE base_fingerprint = ? AND active = 1", [base_fingerprint]
        )

    def activate_model(self, model_id: int) -> dict[str, Any]:
        """Make a registry row the active one for its base file (one row changes flag)."""
        row = self.model(model_id)
        with self._write():
            self.db.execute(
                "UPDATE models SET active = (id = ?) WHERE base_fingerprint = ?",
                [model_id, row["base_fingerprint"]],
            )
        return self.model(model_id)

    def set_model_evaluation(self, model_id: int, evaluation: dict[str, Any]) -> None:
        """Attach held-out evaluation results to a registry row."""
        with self._write():
            self.db.execute(
                "UPDATE models SET evaluation = ? WHERE id = ?", [_dumps(evaluation), model_id]
            )


_STOPWORDS = frozenset(
    "a an and are as at be by did do does for from had has have how in is it its of on or that "
    "the their this to was were what when where which who whom whose why will with".split()
)


def _words(text: str) -> list[str]:
    return [w for w in "".join(c if c.isalnum() else " " for c in text.lower()).split() if w]


def _fts_any(text: str) -> str:
    """Free text as an FTS5 query matching any of its content words (BM25 ranks the rest)."""
    words = list(dict.fromkeys(w for w in _words(text) if w not in _STOPWORDS))
    return " OR ".join(f'"{w}"' for w in words[:32])


def _age_s(timestamp: str) -> float:
    return (datetime.now(UTC) - datetime.fromisoformat(timestamp)).total_seconds()


def _fts_query(text: str) -> str:
    """A user's words as a safe FTS5 query: each word quoted, matched as a prefix, all required."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in text).split() if w]
    return " ".join(f'"{w}"*' for w in words) or '""'
