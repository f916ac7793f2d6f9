"""What the store returns: one frozen dataclass per kind of row, JSON columns already decoded.

Callers read attributes (`answer.messages`, `run.status`), never column names in strings, so a
renamed column is a type error in one place instead of a KeyError in three.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

# Columns stored as JSON text, decoded on the way out.
JSON_COLUMNS = frozenset(
    {
        "settings",
        "plan",
        "data",
        "citations",
        "candidates",
        "verification",
        "messages",
        "sampling",
        "config",
        "evaluation",
        "summary",
        "metrics",
        "results",
        "links",
        "answer_ids",
    }
)

Row = TypeVar("Row")


def make(cls: type[Row], mapping: dict[str, Any]) -> Row:
    """A row dataclass from a query's mapping: its fields picked by name, JSON decoded."""
    values = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.name in mapping:
            value = mapping[f.name]
            if f.name in JSON_COLUMNS and isinstance(value, str):
                value = json.loads(value)
            values[f.name] = value
    return cls(**values)


# -- sessions and runs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    id: int
    title: str
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class Turn:
    id: int
    session_id: int
    position: int
    question: str
    created_at: str


@dataclass(frozen=True)
class Run:
    """One research attempt at a turn (a regenerate is another run of the same turn)."""

    id: int
    turn_id: int
    status: str  # running, done, cancelled, failed, no_evidence, interrupted (process died)
    settings: dict
    started_at: str
    model_id: int | None = None
    plan: dict | None = None
    error: str | None = None
    ended_at: str | None = None
    pid: int | None = None  # the process running it


@dataclass(frozen=True)
class RunSummary(Run):
    """A run with its question and session, as exports list them."""

    question: str = ""
    session_id: int = 0
    turn_position: int = 0


@dataclass(frozen=True)
class Step:
    """One recorded event of a run."""

    id: int
    run_id: int
    seq: int
    kind: str
    status: str  # ok or failed
    data: dict
    started_at: str
    duration_ms: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None


@dataclass(frozen=True)
class Evidence:
    """A numbered passage the writer saw; text and title are copies, so the answer's context
    survives re-indexing."""

    id: int
    run_id: int
    number: int
    uri: str
    text: str
    title: str | None = None
    source_id: int | None = None
    chunk_id: int | None = None
    subquestion: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class Answer:
    """A run's answer with the exact writer messages and sampling, and where it belongs."""

    id: int
    run_id: int
    text: str
    citations: list
    messages: list
    sampling: dict
    created_at: str
    turn_id: int
    session_id: int
    question: str
    verification: dict | None = None
    short_answer: str | None = None  # what the model read off the evidence (answer = "read")
    model_id: int | None = None
    model_name: str | None = None
    base_path: str | None = None
    adapter_path: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    duration_ms: float | None = None


@dataclass(frozen=True)
class HistoryTurn:
    id: int
    position: int
    question: str
    answer_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class HistorySession:
    """A session as the history lists it: its turns and the ids of their answers."""

    id: int
    title: str
    created_at: str
    updated_at: str
    turns: list[HistoryTurn] = field(default_factory=list)


# -- feedback ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rating:
    id: int
    answer_id: int
    created_at: str
    updated_at: str
    thumb: int | None = None  # +1 or -1
    stars: int | None = None  # 1..5
    comment: str | None = None
    correction: str | None = None  # what the user says the right answer was


@dataclass(frozen=True)
class Comparison:
    id: int
    winner_id: int
    loser_id: int
    tie: int
    created_at: str


@dataclass(frozen=True)
class RatedAnswer:
    """An answer with the feedback on it, as training reads it (None where unrated)."""

    answer_id: int
    run_id: int
    turn_id: int
    messages: list
    text: str  # what the model wrote to `messages`: a reader's short answer, or a whole answer
    thumb: int | None = None
    stars: int | None = None
    correction: str | None = None
    reads: bool = False  # `messages` is the reader's prompt (the model read a short answer)


@dataclass(frozen=True)
class ReaderChoice:
    """An answer the reader chose among candidates (verification.candidates), with the
    feedback on it: what a reward model learns from."""

    answer_id: int
    turn_id: int
    candidates: list  # [{"text", "features", "shows"?, "score"?}]
    shown: int | None = None  # the candidate shown, by index
    thumb: int | None = None
    stars: int | None = None
    correction: str | None = None


@dataclass(frozen=True)
class FeedbackCounts:
    answers: int = 0
    ratings: int = 0
    positive: int = 0
    negative: int = 0
    comparisons: int = 0
    corrections: int = 0


# -- library -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """A fetched page or an indexed file, with its full text."""

    id: int
    kind: str  # web or file
    uri: str
    text: str
    content_hash: str
    fetched_at: str
    title: str | None = None
    published: str | None = None
    content_type: str | None = None
    links: list = field(default_factory=list)
    address: str | None = None  # the IP address a web page was fetched from


@dataclass(frozen=True)
class Chunk:
    id: int
    source_id: int
    position: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class ChunkHit:
    """A chunk found by a search, with its source's title and uri; higher score is better."""

    id: int
    source_id: int
    position: int
    text: str
    uri: str
    kind: str
    score: float
    title: str | None = None


@dataclass(frozen=True)
class Document:
    """An indexed (or failed) user file."""

    id: int
    path: str
    root: str
    size: int
    mtime: float
    sha256: str
    status: str  # indexed or failed
    indexed_at: str
    source_id: int | None = None
    error: str | None = None


@dataclass(frozen=True)
class LibraryRoot:
    """An indexed folder with its counts."""

    root: str
    files: int
    indexed: int
    failed: int
    bytes: int
    chunks: int
    indexed_at: str


# -- models and training -------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    """A registry row: a base model file, or a LoRA adapter over one (kind "model"); or a
    reward model that chooses among the reader's candidates over one (kind "reward")."""

    id: int
    name: str
    base_path: str
    base_fingerprint: str
    active: int
    created_at: str
    adapter_path: str | None = None
    parent_id: int | None = None
    training_run_id: int | None = None
    evaluation: dict | None = None
    kind: str = "model"
    reward_path: str | None = None


@dataclass(frozen=True)
class TrainingRun:
    id: int
    algo: str
    config: dict
    status: str  # running, done, cancelled, failed
    started_at: str
    parent_model_id: int | None = None
    output_model_id: int | None = None
    ended_at: str | None = None
    error: str | None = None
    evaluation: dict | None = None
    summary: dict | None = None
    pid: int | None = None
    checkpoint: str | None = None
    step: int = 0


@dataclass(frozen=True)
class TrainingMetric:
    training_run_id: int
    step: int
    metrics: dict
    created_at: str
