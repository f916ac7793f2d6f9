"""Every limit on a research run, counted and checked in one place.

`Limits` are what the settings allow (fixed for a run); `Budget` counts what a run has used
against them. The loop asks the budget before each search, fetch, round and model call, and
takes its sizes (sub-questions, pages per query, evidence, answer length) from the limits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limits:
    """What one run may use. The fields without a default are the user's research settings
    (store/settings.py, their one source of defaults and bounds; assistant.py `limits_from`
    copies them in); the rest are the loop's own constants."""

    max_rounds: int
    max_subquestions: int
    max_steps: int  # searches, fetches and reads
    max_pages: int
    pages_per_query: int
    max_seconds: float
    max_llm_tokens: int
    evidence_k: int
    evidence_tokens: int
    answer_tokens: int
    max_links: int = 30  # links offered to the planner for following
    new_queries: int = 3  # searches a reflection may add
    follow_links: int = 3  # links a reflection may choose to read


@dataclass
class Budget:
    """What one run has used of its limits.

    Research stops issuing new work when a limit is reached; the writer still runs on what
    was found, so a run that hits its budget still ends in an answer.
    """

    limits: Limits
    steps: int = 0
    pages: int = 0
    llm_tokens: int = 0
    llm_calls: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def charge_step(self) -> None:
        self.steps += 1

    def charge_page(self) -> None:
        self.pages += 1
        self.steps += 1

    def charge_llm(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.llm_calls += 1
        self.llm_tokens += prompt_tokens + completion_tokens

    def exhausted(self) -> str | None:
        """Why no more research may start, or None while it may."""
        limits = self.limits
        if self.steps >= limits.max_steps:
            return (
                f"step budget reached ({self.steps}/{limits.max_steps} searches, fetches and reads)"
            )
        if self.elapsed >= limits.max_seconds:
            return f"time budget reached ({self.elapsed:.0f}/{limits.max_seconds:.0f} s)"
        if self.llm_tokens >= limits.max_llm_tokens:
            return f"token budget reached ({self.llm_tokens}/{limits.max_llm_tokens} tokens)"
        return None

    def fetch_refused(self) -> str | None:
        """Why no more pages may be read, or None while one may."""
        if self.pages >= self.limits.max_pages:
            return f"page budget reached ({self.limits.max_pages} pages)"
        return self.exhausted()

    @property
    def deadline(self) -> float:
        """When the run's time is up, on the monotonic clock."""
        return self.started + self.limits.max_seconds

    def another_round(self, finished_round: int) -> bool:
        """Whether a reflection round may follow round `finished_round`."""
        return finished_round < self.limits.max_rounds and self.exhausted() is None


class Deadline:
    """A model call's stop signal: set when the run is cancelled or its time is up. Model
    backends check `is_set()` between tokens (as they do a threading.Event), so a slow plan or
    answer stops at the run's deadline instead of running on past it."""

    def __init__(self, cancel: threading.Event, at: float, also: Callable[[], bool] | None = None):
        self.cancel, self.at, self.also = cancel, at, also

    def is_set(self) -> bool:
        return (
            self.cancel.is_set()
            or time.monotonic() >= self.at
            or (self.also is not None and self.also())
        )

    @property
    def expired(self) -> bool:
        """Whether the time ran out (rather than the user cancelling)."""
        return not self.cancel.is_set() and time.monotonic() >= self.at

    def wait(self, timeout: float | None = None) -> bool:
        left = self.at - time.monotonic()
        wait = left if timeout is None else min(timeout, left)
        return self.cancel.wait(max(wait, 0)) or self.is_set()
