"""The research loop's events: one typed stream that the app renders, the CLI prints and the
store persists (every event but Token becomes a step row as it happens)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass
class Event:
    kind: ClassVar[str] = "event"
    failed: ClassVar[bool] = False

    def data(self) -> dict[str, Any]:
        """What is stored in the step row."""
        return asdict(self)


@dataclass
class RunStarted(Event):
    kind = "run_started"
    run_id: int
    session_id: int
    turn_id: int
    question: str
    model: str


@dataclass
class PlanReady(Event):
    kind = "plan_ready"
    round: int
    subquestions: list[dict[str, str]]  # question, tool, query
    fallback: bool = False  # the model's plan was unusable; the question itself is searched


@dataclass
class SearchIssued(Event):
    kind = "search_issued"
    query: str
    tool: str  # web_search or search_library
    subquestion: int


@dataclass
class SearchDone(Event):
    kind = "search_done"
    query: str
    tool: str
    subquestion: int
    results: list[dict[str, Any]]  # title, url/uri, snippet
    cached: bool = False


@dataclass
class PageFetched(Event):
    kind = "page_fetched"
    url: str
    title: str
    bytes: int
    chunks: int
    source_id: int
    cached: bool = False
    via: str = "search"  # search or follow_link


@dataclass
class StepFailed(Event):
    kind = "step_failed"
    failed = True
    action: str  # web_search, fetch, search_library, plan, reflect
    target: str
    error: str


@dataclass
class SubquestionDone(Event):
    kind = "subquestion_done"
    index: int
    question: str
    sources: int


@dataclass
class EvidenceChosen(Event):
    kind = "evidence_chosen"
    items: list[dict[str, Any]]  # number, title, uri, subquestion, score
    dropped_duplicates: int = 0
    tokens: int = 0
    reused_from_run: int | None = None


@dataclass
class Reflected(Event):
    kind = "reflected"
    round: int
    enough: bool
    new_queries: list[dict[str, str]]
    follow_links: list[str]


@dataclass
class LLMCall(Event):
    kind = "llm_call"
    purpose: str  # plan, reflect, write
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    seconds: float


@dataclass
class BudgetExhausted(Event):
    kind = "budget_exhausted"
    reason: str


@dataclass
class Token(Event):
    kind = "token"
    text: str


@dataclass
class AnswerDone(Event):
    kind = "answer_done"
    answer_id: int
    text: str
    citations: list[dict[str, Any]]
    verification: dict[str, Any]
    sources: list[dict[str, Any]] = field(default_factory=list)  # number, title, uri


@dataclass
class RunFinished(Event):
    kind = "run_finished"
    run_id: int
    status: str  # done, cancelled, failed
    seconds: float
    llm_calls: int
    tokens: int
    pages: int
    steps: int
    answer_id: int | None = None
    error: str | None = None
