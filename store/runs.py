"""Sessions, turns, research runs, their steps, evidence and answers, and the history.

A session is a conversation; each question is a turn; each attempt at a turn is a run (a
regenerate is a new run of the same turn); a run records its events as steps, the evidence the
writer saw, and at most one answer.
"""

from __future__ import annotations

import os
from typing import Any

from .database import Database, process_alive
from .errors import NotFound
from .rows import (
    Answer,
    Evidence,
    HistorySession,
    HistoryTurn,
    Run,
    RunSummary,
    Session,
    Step,
    Turn,
)

RUN_STATUSES = ("done", "cancelled", "failed", "interrupted", "no_evidence")

_ANSWERS = (
    "SELECT answers.*, runs.turn_id, turns.session_id, turns.question FROM answers "
    "JOIN runs ON runs.id = answers.run_id JOIN turns ON turns.id = runs.turn_id"
)


class Runs:
    def __init__(self, db: Database):
        self.db = db

    # -- sessions and turns ------------------------------------------------------------------

    def new_session(self, title: str) -> int:
        """Start a session (a conversation of turns); returns its id."""
        at = self.db.clock()
        with self.db.write():
            return self.db.insert(
                "sessions", {"title": title[:200], "created_at": at, "updated_at": at}
            )

    def session(self, session_id: int) -> Session:
        return self.db.get(Session, "sessions", session_id, "session")

    def add_turn(self, session_id: int, question: str) -> int:
        """Append a question to a session; returns the turn id."""
        self.session(session_id)
        at = self.db.clock()
        with self.db.write():
            position = self.db.execute(
                "SELECT COALESCE(MAX(position), 0) + 1 FROM turns WHERE session_id = ?",
                [session_id],
            ).fetchone()[0]
            turn_id = self.db.insert(
                "turns",
                {
                    "session_id": session_id,
                    "position": position,
                    "question": question,
                    "created_at": at,
                },
            )
            self.db.utils["sessions"].update(session_id, {"updated_at": at})
        return turn_id

    def turn(self, turn_id: int) -> Turn:
        return self.db.get(Turn, "turns", turn_id, "turn")

    def turns(self, session_id: int) -> list[Turn]:
        """A session's turns in order."""
        return self.db.query(
            Turn, "SELECT * FROM turns WHERE session_id = ? ORDER BY position", [session_id]
        )

    # -- runs and steps ----------------------------------------------------------------------

    def start_run(self, turn_id: int, settings: dict[str, Any], model_id: int | None = None) -> int:
        """Record the start of one research attempt at a turn; returns the run id."""
        with self.db.write():
            return self.db.insert(
                "runs",
                {
                    "turn_id": turn_id,
                    "status": "running",
                    "model_id": model_id,
                    "settings": settings,
                    "started_at": self.db.clock(),
                    "pid": os.getpid(),
                },
            )

    def set_plan(self, run_id: int, plan: dict[str, Any]) -> None:
        """Store (or replace, after the user edited it) the run's plan."""
        with self.db.write():
            self.db.utils["runs"].update(run_id, {"plan": plan})

    def finish_run(self, run_id: int, status: str, error: str | None = None) -> None:
        """Close a run as done, cancelled or failed."""
        if status not in RUN_STATUSES:
            raise ValueError(f"unknown run status {status!r}")
        with self.db.write():
            self.db.utils["runs"].update(
                run_id, {"status": status, "error": error, "ended_at": self.db.clock()}
            )

    def close_abandoned(self) -> int:
        """Runs still 'running' whose process is gone (killed, crashed, the machine turned
        off) become 'interrupted'; returns how many."""
        abandoned = [
            run
            for run in self.db.query(Run, "SELECT * FROM runs WHERE status = 'running'")
            if run.pid is None or (run.pid != os.getpid() and not process_alive(run.pid))
        ]
        for run in abandoned:
            self.finish_run(
                run.id,
                "interrupted",
                "the Sleuth process running it stopped (killed or crashed); its steps are kept",
            )
        return len(abandoned)

    def run(self, run_id: int) -> Run:
        return self.db.get(Run, "runs", run_id, "run")

    def runs(self, turn_id: int) -> list[Run]:
        """All attempts at a turn, oldest first."""
        return self.db.query(Run, "SELECT * FROM runs WHERE turn_id = ? ORDER BY id", [turn_id])

    def all_runs(self) -> list[RunSummary]:
        """Every run with its question and session, oldest first."""
        return self.db.query(
            RunSummary,
            "SELECT runs.*, turns.question, turns.session_id, turns.position AS turn_position "
            "FROM runs JOIN turns ON turns.id = runs.turn_id ORDER BY runs.id",
        )

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
        with self.db.write():
            seq = self.db.execute(
                "SELECT COALESCE(MAX(seq), 0) + 1 FROM steps WHERE run_id = ?", [run_id]
            ).fetchone()[0]
            return self.db.insert(
                "steps",
                {
                    "run_id": run_id,
                    "seq": seq,
                    "kind": kind,
                    "status": status,
                    "data": data,
                    "started_at": started_at or self.db.clock(),
                    "duration_ms": duration_ms,
                    "tokens_in": tokens_in,
                    "tokens_out": tokens_out,
                },
            )

    def steps(self, run_id: int) -> list[Step]:
        """A run's steps in the order they happened."""
        return self.db.query(Step, "SELECT * FROM steps WHERE run_id = ? ORDER BY seq", [run_id])

    # -- evidence and answers ----------------------------------------------------------------

    def add_evidence(self, run_id: int, items: list[dict[str, Any]]) -> None:
        """Store what the writer sees, numbered from 1 in the order given.

        Each item: uri, text, and optionally title, source_id, chunk_id, subquestion, score.
        Text and title are copied so the answer's context survives re-indexing.
        """
        with self.db.write():
            self.db.execute("DELETE FROM evidence WHERE run_id = ?", [run_id])
            self.db.utils["evidence"].insert_all(
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
                }
                for number, item in enumerate(items, start=1)
            )

    def evidence(self, run_id: int) -> list[Evidence]:
        """The numbered evidence of a run."""
        return self.db.query(
            Evidence, "SELECT * FROM evidence WHERE run_id = ? ORDER BY number", [run_id]
        )

    def add_answer(
        self,
        run_id: int,
        *,
        text: str,
        messages: list[dict[str, str]],
        sampling: dict[str, Any],
        citations: list[dict[str, Any]],
        verification: dict[str, Any] | None = None,
        short_answer: str | None = None,
        model_id: int | None = None,
        model_name: str | None = None,
        base_path: str | None = None,
        adapter_path: str | None = None,
        prompt_tokens: int | None = None,
        completion_tokens: int | None = None,
        duration_ms: float | None = None,
    ) -> int:
        """Store a run's answer with the exact writer messages and sampling; returns its id."""
        with self.db.write():
            return self.db.insert(
                "answers",
                {
                    "run_id": run_id,
                    "text": text,
                    "short_answer": short_answer,
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
                    "created_at": self.db.clock(),
                },
            )

    def answer(self, answer_id: int) -> Answer:
        """The answer, with its run's turn, session and question."""
        row = self.db.first(Answer, f"{_ANSWERS} WHERE answers.id = ?", [answer_id])
        if row is None:
            raise NotFound(f"There is no answer {answer_id}: `sleuth history` lists the ids.")
        return row

    def answer_for_run(self, run_id: int) -> Answer | None:
        """The answer a run produced, if it got that far."""
        return self.db.first(Answer, f"{_ANSWERS} WHERE answers.run_id = ?", [run_id])

    def answers_for_turn(self, turn_id: int) -> list[Answer]:
        """Every answer to a turn (one per run), oldest first."""
        return self.db.query(
            Answer, f"{_ANSWERS} WHERE runs.turn_id = ? ORDER BY answers.id", [turn_id]
        )

    # -- history -----------------------------------------------------------------------------

    def history(self, limit: int = 20, query: str | None = None) -> list[HistorySession]:
        """Recent sessions (newest first) with their turns and answer ids.

        `query` searches questions and answers (full text); words are matched as prefixes.
        """
        params: list[Any] = []
        where = ""
        if query and query.strip():
            match = _fts_prefix_query(query)
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
        sessions = self.db.query(
            Session,
            f"SELECT sessions.* FROM sessions {where} ORDER BY updated_at DESC, id DESC LIMIT ?",
            params,
        )
        return [
            HistorySession(
                id=s.id,
                title=s.title,
                created_at=s.created_at,
                updated_at=s.updated_at,
                turns=self.db.query(
                    HistoryTurn,
                    "SELECT turns.id, turns.position, turns.question, "
                    "(SELECT json_group_array(answers.id) FROM answers JOIN runs "
                    "ON runs.id = answers.run_id WHERE runs.turn_id = turns.id) AS answer_ids "
                    "FROM turns WHERE session_id = ? ORDER BY position",
                    [s.id],
                ),
            )
            for s in sessions
        ]


def _fts_prefix_query(text: str) -> str:
    """A user's words as a safe FTS5 query: each word quoted, matched as a prefix, all required."""
    words = [w for w in "".join(c if c.isalnum() else " " for c in text).split() if w]
    return " ".join(f'"{w}"*' for w in words) or '""'
