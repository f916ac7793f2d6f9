"""Every limit on a research run, counted and checked in one place."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from sleuth.store.settings import ResearchSettings


@dataclass
class Budget:
    """Limits on steps (searches, fetches, reads), pages, model tokens and wall-clock time.

    Research stops issuing new work when any limit is reached; the writer still runs on what
    was found, so a run that hits its budget still ends in an answer.
    """

    max_steps: int
    max_pages: int
    max_llm_tokens: int
    max_seconds: float
    max_rounds: int
    steps: int = 0
    pages: int = 0
    llm_tokens: int = 0
    llm_calls: int = 0
    started: float = field(default_factory=time.monotonic)

    @classmethod
    def from_settings(cls, research: ResearchSettings) -> Budget:
        return cls(
            max_steps=research.max_steps,
            max_pages=research.max_pages,
            max_llm_tokens=research.max_llm_tokens,
            max_seconds=research.max_seconds,
            max_rounds=research.max_rounds,
        )

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def charge_step(self) -> None:
        self.steps += 1

    def charge_page(self) -> None:
        self.pages += 1

    def charge_llm(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.llm_calls += 1
        self.llm_tokens += prompt_tokens + completion_tokens

    def exhausted(self) -> str | None:
        """Why no more research may start, or None while it may."""
        if self.steps >= self.max_steps:
            return (
                f"step budget reached ({self.steps}/{self.max_steps} searches, fetches and reads)"
            )
        if self.elapsed >= self.max_seconds:
            return f"time budget reached ({self.elapsed:.0f}/{self.max_seconds:.0f} s)"
        if self.llm_tokens >= self.max_llm_tokens:
            return f"token budget reached ({self.llm_tokens}/{self.max_llm_tokens} tokens)"
        return None

    def pages_left(self) -> int:
        return max(0, self.max_pages - self.pages)
