"""Numbered schema migrations, applied in order and recorded in `_migrations`.

A released migration is never edited: a change to the schema is a new function appended to
MIGRATIONS. A database that records a migration this Sleuth does not know was written by a
newer Sleuth; it is refused, never altered.
"""

from __future__ import annotations

from collections.abc import Callable

from ._sqlite import sqlite_utils


def m001_initial(db: sqlite_utils.Database) -> None:
    """Sessions, turns, runs, steps, sources, chunks, documents, evidence, answers, ratings,
    comparisons, the model registry and training runs."""
    db.executescript(
        """
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            title TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            question TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (session_id, position)
        );
        CREATE TABLE training_runs (
            id INTEGER PRIMARY KEY,
            algo TEXT NOT NULL,
            config TEXT NOT NULL,
            status TEXT NOT NULL,
            parent_model_id INTEGER REFERENCES models(id),
            output_model_id INTEGER REFERENCES models(id),
            started_at TEXT NOT NULL,
            ended_at TEXT,
            error TEXT,
            evaluation TEXT,
            summary TEXT
        );
        CREATE TABLE training_metrics (
            training_run_id INTEGER NOT NULL REFERENCES training_runs(id) ON DELETE CASCADE,
            step INTEGER NOT NULL,
            metrics TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (training_run_id, step)
        );
        CREATE TABLE models (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            base_path TEXT NOT NULL,
            base_fingerprint TEXT NOT NULL,
            adapter_path TEXT,
            parent_id INTEGER REFERENCES models(id),
            training_run_id INTEGER REFERENCES training_runs(id),
            active INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            evaluation TEXT
        );
        CREATE INDEX models_base ON models (base_fingerprint);
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            status TEXT NOT NULL,
            model_id INTEGER REFERENCES models(id),
            settings TEXT NOT NULL,
            plan TEXT,
            error TEXT,
            started_at TEXT NOT NULL,
            ended_at TEXT
        );
        CREATE INDEX runs_turn ON runs (turn_id);
        CREATE TABLE steps (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            data TEXT NOT NULL,
            started_at TEXT NOT NULL,
            duration_ms REAL,
            tokens_in INTEGER,
            tokens_out INTEGER,
            UNIQUE (run_id, seq)
        );
        CREATE TABLE sources (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL,
            uri TEXT NOT NULL UNIQUE,
            title TEXT,
            published TEXT,
            content_type TEXT,
            text TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            fetched_at TEXT NOT NULL
        );
        CREATE TABLE chunks (
            id INTEGER PRIMARY KEY,
            source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
            position INTEGER NOT NULL,
            text TEXT NOT NULL,
            start INTEGER NOT NULL,
            "end" INTEGER NOT NULL,
            UNIQUE (source_id, position)
        );
        CREATE TABLE documents (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            root TEXT NOT NULL,
            source_id INTEGER REFERENCES sources(id) ON DELETE SET NULL,
            size INTEGER NOT NULL,
            mtime REAL NOT NULL,
            sha256 TEXT NOT NULL,
            status TEXT NOT NULL,
            error TEXT,
            indexed_at TEXT NOT NULL
        );
        CREATE INDEX documents_root ON documents (root);
        CREATE TABLE evidence (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            source_id INTEGER REFERENCES sources(id) ON DELETE SET NULL,
            chunk_id INTEGER REFERENCES chunks(id) ON DELETE SET NULL,
            subquestion TEXT,
            title TEXT,
            uri TEXT NOT NULL,
            text TEXT NOT NULL,
            score REAL,
            UNIQUE (run_id, number)
        );
        CREATE TABLE answers (
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL UNIQUE REFERENCES runs(id) ON DELETE CASCADE,
            text TEXT NOT NULL,
            citations TEXT NOT NULL,
            verification TEXT,
            messages TEXT NOT NULL,
            sampling TEXT NOT NULL,
            model_id INTEGER REFERENCES models(id),
            model_name TEXT,
            base_path TEXT,
            adapter_path TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            duration_ms REAL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE ratings (
            id INTEGER PRIMARY KEY,
            answer_id INTEGER NOT NULL UNIQUE REFERENCES answers(id) ON DELETE CASCADE,
            thumb INTEGER CHECK (thumb IN (-1, 1)),
            stars INTEGER CHECK (stars BETWEEN 1 AND 5),
            comment TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE comparisons (
            id INTEGER PRIMARY KEY,
            winner_id INTEGER NOT NULL REFERENCES answers(id) ON DELETE CASCADE,
            loser_id INTEGER NOT NULL REFERENCES answers(id) ON DELETE CASCADE,
            tie INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            CHECK (winner_id != loser_id)
        );
        """
    )


def m002_full_text(db: sqlite_utils.Database) -> None:
    """FTS5 indexes (kept current by triggers): chunks for retrieval, questions and answers for
    searching history."""
    db["chunks"].enable_fts(["text"], fts_version="FTS5", create_triggers=True, tokenize="porter")
    db["turns"].enable_fts(["question"], fts_version="FTS5", create_triggers=True)
    db["answers"].enable_fts(["text"], fts_version="FTS5", create_triggers=True)


def m003_search_cache(db: sqlite_utils.Database) -> None:
    """Cached web-search results, and the links found in each fetched page (which the planner
    may follow)."""
    db.executescript(
        """
        CREATE TABLE search_cache (
            backend TEXT NOT NULL,
            query TEXT NOT NULL,
            results TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (backend, query)
        );
        ALTER TABLE sources ADD COLUMN links TEXT;
        """
    )


def m004_training_process(db: sqlite_utils.Database) -> None:
    """Which process runs a training run and its last checkpoint, so a run whose process was
    killed is noticed and can be resumed."""
    db.executescript(
        """
        ALTER TABLE training_runs ADD COLUMN pid INTEGER;
        ALTER TABLE training_runs ADD COLUMN checkpoint TEXT;
        ALTER TABLE training_runs ADD COLUMN step INTEGER NOT NULL DEFAULT 0;
        """
    )


def m005_run_owners_and_page_addresses(db: sqlite_utils.Database) -> None:
    """Which process runs a research run (a run whose process is gone is closed as
    interrupted at the next start), and the address each page was fetched from (the page
    cache serves a page only if the address policy in force would fetch it)."""
    db.executescript(
        """
        ALTER TABLE runs ADD COLUMN pid INTEGER;
        ALTER TABLE sources ADD COLUMN address TEXT;
        """
    )


def m006_corrections(db: sqlite_utils.Database) -> None:
    """What the user says the right answer was: stored with the rating of the answer it
    corrects; the trainer makes it an SFT target and the preferred side of a DPO pair."""
    db.executescript("ALTER TABLE ratings ADD COLUMN correction TEXT;")


def m007_short_answers(db: sqlite_utils.Database) -> None:
    """The short answer the model read off the evidence, kept apart from the shown text (which
    quotes the supporting sentences under it): what is shown first, exported, and trained on."""
    db.executescript("ALTER TABLE answers ADD COLUMN short_answer TEXT;")


def m008_reward_models(db: sqlite_utils.Database) -> None:
    """Reward models beside the adapters: a registry row of kind "reward" names its file
    (reward_path); one row of each kind is active over a base file."""
    db.executescript(
        """
        ALTER TABLE models ADD COLUMN kind TEXT NOT NULL DEFAULT 'model';
        ALTER TABLE models ADD COLUMN reward_path TEXT;
        """
    )


Migration = Callable[[sqlite_utils.Database], None]

MIGRATIONS: list[Migration] = [
    m001_initial,
    m002_full_text,
    m003_search_cache,
    m004_training_process,
    m005_run_owners_and_page_addresses,
    m006_corrections,
    m007_short_answers,
    m008_reward_models,
]
