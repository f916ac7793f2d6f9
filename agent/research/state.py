"""What one research run knows while it runs, and the services its steps use: emit an event,
stream a token, make a model call that is accounted and recorded, know the deadline.

The loop (loop.py) makes a RunState for each run and wires its stream; the executors, the
reflection and the writer all work through it, so none of them reaches into the loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sleuth.agent.models.llm import Completion

from .budget import Budget, Deadline
from .events import BudgetExhausted, Event, LLMCall, StepRetried
from .planner import SubQuestion
from .privacy import Boundary

# Model calls whose messages are stored with the call: a write's and a read's are stored with
# the answer they made, once.
_ANSWERING = ("write", "read")

History = Sequence[tuple[str, str]]  # earlier (question, answer) pairs of the session


@dataclass
class RunState:
    """What one run knows while it runs, and how it reports (`emit` puts an event on the
    run's stream)."""

    question: str
    history: History
    budget: Budget
    tools: list[str]
    seed: int
    boundary: Boundary
    search_backend: str | None = None  # the web search backend's name, for advice
    library_sources: list[int] | None = None  # restrict library search to these sources
    subquestions: list[SubQuestion] = field(default_factory=list)
    queries_run: list[str] = field(default_factory=list)
    pool: set[int] = field(default_factory=set)  # source ids this run found
    seen_urls: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    steps: int = 0  # events emitted so far (tokens are not counted)
    pages_read: int = 0  # pages read (the budget counts attempts)
    searched: list[tuple[str, str, int]] = field(default_factory=list)  # tool, query, results
    failures: list[tuple[str, str, str]] = field(default_factory=list)  # action, target, error
    exhausted: str | None = None  # the limit that stopped research, if one did
    unreachable: str | None = None  # why the search backend cannot be reached, once it cannot
    emit: Callable[[Event], None] = lambda event: None  # from the event loop
    stream: Callable[[str], None] = lambda piece: None  # a token of the answer, from any thread
    cancel: threading.Event = field(default_factory=threading.Event)

    def deadline(self, also: Callable[[], bool] | None = None) -> Deadline:
        """The stop signal of a model call: the user's cancel, the run's time running out, or
        (`also`) a reason of the caller's."""
        return Deadline(self.cancel, self.budget.deadline, also)

    def cancelled(self) -> bool:
        return self.cancel.is_set()

    async def call(self, purpose: str, fn: Callable[[], Any]) -> Any:
        """Run one model call on the worker thread, charge it to the budget and record it."""
        result = await asyncio.to_thread(fn)
        completion: Completion | None = result[1] if isinstance(result, tuple) else result
        if completion is not None:
            for retry in completion.retries:  # a busy model server, tried again
                self.emit(StepRetried("model", purpose, **retry))
            self.budget.charge_llm(completion.prompt_tokens, completion.completion_tokens)
            self.emit(
                LLMCall(
                    purpose,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    completion.cached_tokens,
                    round(completion.seconds, 3),
                    output=completion.text,
                    messages=completion.messages if purpose not in _ANSWERING else None,
                )
            )
        return result

    def report_exhausted(self, reason: str | None) -> bool:
        """Say once per run that a limit was reached; returns whether one was."""
        if reason and self.exhausted is None:
            self.exhausted = reason
            self.emit(BudgetExhausted(reason))
        return reason is not None

    def why_nothing_found(self) -> str:
        """What was tried and what failed, in a sentence or two a person can act on."""
        said = []
        web = [q for tool, q, _ in self.searched if tool == "web_search"]
        web_failed = [(t, e) for a, t, e in self.failures if a == "web_search"]
        if web_failed:
            reasons = "; ".join(sorted(set(e for _, e in web_failed)))
            said.append(
                f"web search failed for {len(web_failed)} of {len(web_failed) + len(web)} "
                f"quer{'y' if len(web_failed) == 1 else 'ies'} ({reasons})"
            )
        fetches = [e for a, _, e in self.failures if a == "fetch"]
        if fetches and not self.pages_read:
            reasons = "; ".join(sorted(set(fetches)))  # the same words whatever finished first
            said.append(f"none of the {len(fetches)} page(s) found could be read ({reasons})")
        elif web and not fetches and not self.pages_read and not web_failed:
            said.append(f"web search found nothing to read for {len(web)} quer(ies)")
        library = [q for tool, q, n in self.searched if tool == "search_library" and not n]
        if library and len(library) == sum(t == "search_library" for t, _, _ in self.searched):
            said.append(f"the library has no match for {library[0]!r}")
        if self.exhausted and not self.searched:
            said.append(f"the {self.exhausted} before any search ran")
        if not said:
            said.append("no search found anything to read")
        if self.exhausted and not self.searched:
            hint = "raise the limit (--budget seconds=N, tokens=N)"
        elif self.unreachable and self.search_backend == "searxng":
            hint = (
                "start the SearXNG instance at search.searxng_url, switch to "
                "search.backend=ddgs, or ask over your files with --library PATH"
            )
        elif self.unreachable:
            hint = (
                "check the network connection, point search.backend=searxng at a SearXNG you "
                "run, or ask over your files with --library PATH"
            )
        else:
            other = "ddgs" if self.search_backend == "searxng" else "searxng"
            hint = f"try --library PATH, another question, or search.backend={other}"
        text = "; ".join(said)
        return f"No answer: nothing was found to answer from: {text}. To go on, {hint}."
