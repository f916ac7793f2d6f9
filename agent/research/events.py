"""The research loop's events: one typed stream that the app renders, the CLI prints and the
recorder persists (every event but Token becomes a step row as it happens).

The loop knows nothing of the database: it describes what happened. Ids the database assigns
(run, session, turn, answer) are filled in by the recorder (`research/recorder.py`) as it
stores each event, so what consumers receive carries them.
"""

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
    """A run begins: a new question (or a follow-up in `session_id`), or a regenerate."""

    kind = "run_started"
    question: str
    model: str
    settings: dict[str, Any] = field(default_factory=dict)  # stored with the run, not the step
    session_id: int | None = None  # the session a follow-up continues; None starts one
    regenerates: int | None = None  # the run whose turn and evidence a regenerate reuses
    model_id: int | None = None  # the active registry row; None: the bare base model
    base_path: str | None = None
    base_fingerprint: str | None = None
    run_id: int | None = None  # filled in by the recorder
    turn_id: int | None = None  # filled in by the recorder

    def data(self) -> dict[str, Any]:
        data = asdict(self)
        del data["settings"]
        return data


@dataclass
class PlanReady(Event):
    kind = "plan_ready"
    round: int
    subquestions: list[dict[str, str]]  # question, tool, query
    fallback: bool = False  # the model's plan was unusable; the question itself is searched


@dataclass
class PlanReviewed(Event):
    """The user edited the plan before it ran; these searches replace round 1's."""

    kind = "plan_reviewed"
    subquestions: list[dict[str, str]]


@dataclass
class SearchIssued(Event):
    kind = "search_issued"
    query: str
    tool: str  # web_search or search_library
    subquestion: int
    source: str = "model"  # who proposed it: question, model, bridge or user
    # Where the query's words came from (agent/research/privacy.py): question, web, library, model.
    words_from: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class QueryWithheld(Event):
    """A web query that would have carried words seen only in the user's files: not sent
    (research.library_to_web is off). `words` says how many of its words were private."""

    kind = "query_withheld"
    query: str
    subquestion: int
    source: str
    words: int


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
    seconds: float = 0.0


@dataclass
class StepFailed(Event):
    kind = "step_failed"
    failed = True
    action: str  # web_search, fetch, search_library, plan, reflect
    target: str
    error: str


@dataclass
class StepRetried(Event):
    """A search or model call failed for a moment and is tried again after `wait_s`."""

    kind = "step_retried"
    action: str  # web_search, model
    target: str
    attempt: int  # the attempt that failed (from 1)
    wait_s: float
    error: str


@dataclass
class SubquestionDone(Event):
    kind = "subquestion_done"
    index: int
    question: str
    sources: int


@dataclass
class EvidenceChosen(Event):
    """The numbered passages the writer sees, whole (the step row keeps a summary)."""

    kind = "evidence_chosen"
    items: list[dict[str, Any]]  # number, title, uri, text, snippet, source_id, chunk_id, ...
    dropped_duplicates: int = 0
    tokens: int = 0
    reused_from_run: int | None = None

    def data(self) -> dict[str, Any]:
        data = asdict(self)
        data["items"] = [{k: v for k, v in i.items() if k != "text"} for i in self.items]
        return data


@dataclass
class Reflected(Event):
    kind = "reflected"
    round: int
    enough: bool
    new_queries: list[dict[str, str]]
    follow_links: list[str]
    bridges: int = 0  # of the new queries, those built from names the passages found


@dataclass
class LLMCall(Event):
    kind = "llm_call"
    purpose: str  # plan, reflect, write
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    seconds: float
    output: str = ""  # what the model wrote (for a write: the answer as streamed)
    # The exact messages of a plan or reflect call (a writer's are stored with its answer):
    # with `output`, what training on whole runs replays (train/trajectories.py).
    messages: list[dict[str, str]] | None = None


@dataclass
class BudgetExhausted(Event):
    kind = "budget_exhausted"
    reason: str


@dataclass
class Token(Event):
    kind = "token"
    text: str


@dataclass
class AnswerCancelled(Event):
    """The writer was stopped mid-answer: kept for the record, never as an answer (a cut-off
    text would teach the trainer to stop mid-sentence)."""

    kind = "answer_cancelled"
    text: str


@dataclass
class AnswerRejected(Event):
    """A written answer failed the checks (research/checks.py) and is not shown: the writer tries
    once more (`retrying`), or the answer will be quoted evidence. What was streamed of it is
    to be discarded."""

    kind = "answer_rejected"
    text: str
    problems: list[str]
    retrying: bool


@dataclass
class AnswerDone(Event):
    """The verified answer, with what is stored beside it so training can replay it."""

    kind = "answer_done"
    text: str
    citations: list[dict[str, Any]]
    verification: dict[str, Any]
    sources: list[dict[str, Any]] = field(default_factory=list)  # number, title, uri
    messages: list[dict[str, str]] = field(default_factory=list)  # exactly what the writer saw
    sampling: dict[str, Any] = field(default_factory=dict)
    # The short answer the model read off the evidence (the shown text's first line, without
    # its citations); None when the model wrote the whole answer, or gave none that held up.
    short_answer: str | None = None
    model_name: str = ""
    base_path: str | None = None
    adapter_path: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    answer_id: int | None = None  # filled in by the recorder
    run_id: int | None = None  # filled in by the recorder

    def data(self) -> dict[str, Any]:
        data = asdict(self)
        del data["messages"], data["sampling"]  # the answer row has them
        return data


@dataclass
class RunFinished(Event):
    kind = "run_finished"
    status: str  # done, cancelled, failed, or no_evidence (nothing found: no answer written)
    seconds: float
    llm_calls: int
    tokens: int
    pages: int
    steps: int
    error: str | None = None
    answer_id: int | None = None  # filled in by the recorder
    run_id: int | None = None  # filled in by the recorder
