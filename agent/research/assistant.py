"""The assistant: what the app, the command line and the benchmarks run research through.

It joins the research loop (which only emits events) to the recorder (which stores them), and
reads from the store what a run starts from: the session's earlier turns, the library folders
to search, and for a regenerate the old run's evidence and writer prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import fields
from typing import Any

from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.models.llm import LLM
from sleuth.agent.tools.fetch import Fetcher
from sleuth.agent.tools.search import SearchBackend
from sleuth.store import Store
from sleuth.store.settings import ResearchSettings, Settings

from .budget import Limits
from .events import Event
from .loop import LoopSettings, Researcher, ReviewPlan
from .recorder import EVIDENCE_KEYS, Recorder


def limits_from(research: ResearchSettings) -> Limits:
    """The loop's limits, from the user's research settings (every setting of the same name)."""
    names = {f.name for f in fields(Limits)} & {f.name for f in fields(ResearchSettings)}
    return Limits(**{name: getattr(research, name) for name in names})


def loop_settings(settings: Settings) -> LoopSettings:
    """What the loop needs of the user's settings."""
    return LoopSettings(
        limits=limits_from(settings.research),
        temperature=settings.research.temperature,
        repeat_penalty=settings.research.repeat_penalty,
        concurrency=settings.network.concurrency,
        max_results=settings.search.max_results,
        local_only=settings.network.local_only,
        planner=settings.research.planner,
        answer=settings.research.answer,
        library_to_web=settings.research.library_to_web,
        record=settings.as_dict(),
    )


class Assistant:
    """Research runs over one model, recorded as they happen; one run at a time."""

    def __init__(
        self,
        store: Store,
        llm: LLM,
        model: ModelInfo,
        settings: Settings,
        *,
        search: SearchBackend | None = None,
        fetcher: Fetcher | None = None,
    ):
        self.store = store
        self.settings = settings
        self.researcher = Researcher(
            store.library,
            llm,
            model,
            loop_settings(settings),
            search=search,
            fetcher=fetcher or Fetcher(settings.network),
        )
        self.recorder = Recorder(store)

    @property
    def search(self) -> SearchBackend | None:
        return self.researcher.search

    @property
    def running(self) -> bool:
        return self.researcher.running

    def cancel(self) -> None:
        """Stop the current run (from any thread); what it found is kept."""
        self.researcher.cancel()

    async def aclose(self) -> None:
        await self.researcher.aclose()

    async def ask(
        self,
        question: str,
        *,
        session_id: int | None = None,
        use_web: bool = True,
        use_library: bool = True,
        library_roots: list[str] | None = None,
        seed: int | None = None,
        review: ReviewPlan | None = None,
    ) -> AsyncIterator[Event]:
        """Research `question` (a follow-up when `session_id` is given); yields the recorded
        events. A session that does not exist raises NotFound before anything is written.
        What the run starts from is read on a worker thread, never on the event loop."""
        history, seen, library_sources = await asyncio.to_thread(
            self._starting_point, session_id, library_roots
        )
        events = self.researcher.ask(
            question,
            session_id=session_id,
            history=history,
            seen=seen,
            use_web=use_web,
            use_library=use_library,
            library_sources=library_sources,
            seed=seed,
            review=review,
        )
        recorded = self.recorder.record(events, cancel=self.researcher.cancel)
        async with contextlib.aclosing(recorded):
            async for event in recorded:
                yield event

    def _starting_point(
        self, session_id: int | None, library_roots: list[str] | None
    ) -> tuple[list[tuple[str, str]], list[dict[str, Any]], list[int] | None]:
        """The session's earlier turns, the evidence they were answered from (so that words
        the session saw only in the user's files stay private in a follow-up), and the
        library sources a run may search."""
        history = self.history(session_id) if session_id is not None else []
        seen = self.session_evidence(session_id) if session_id is not None else []
        if library_roots is None:
            return history, seen, None
        sources = [
            document.source_id
            for root in library_roots
            for document in self.store.library.documents(root=root)
            if document.source_id is not None
        ]
        return history, seen, sources

    async def regenerate(self, run_id: int, *, seed: int | None = None) -> AsyncIterator[Event]:
        """A new answer to the same turn from the same evidence and writer prompt (a new run),
        so the two answers can be compared."""
        question, evidence, messages = await asyncio.to_thread(self._what_was_answered, run_id)
        events = self.researcher.rewrite(
            question, regenerates=run_id, evidence=evidence, messages=messages, seed=seed
        )
        recorded = self.recorder.record(events, cancel=self.researcher.cancel)
        async with contextlib.aclosing(recorded):
            async for event in recorded:
                yield event

    def _what_was_answered(self, run_id: int) -> tuple[str, list[dict[str, Any]], list | None]:
        """A run's question, the evidence its writer saw, and the writer's messages."""
        runs = self.store.runs
        turn = runs.turn(runs.run(run_id).turn_id)
        evidence: list[dict[str, Any]] = [
            {k: getattr(row, k) for k in EVIDENCE_KEYS} for row in runs.evidence(run_id)
        ]
        previous = runs.answer_for_run(run_id)
        return turn.question, evidence, previous.messages if previous else None

    def session_evidence(self, session_id: int) -> list[dict[str, Any]]:
        """The passages every answer of the session was read from, each with its side ("web"
        for a page fetched over http(s), "file" for anything else: the user's library)."""
        runs = self.store.runs
        items = []
        for turn in runs.turns(session_id):
            for answer in runs.answers_for_turn(turn.id):
                for row in runs.evidence(answer.run_id):
                    web = (row.uri or "").startswith(("http://", "https://"))
                    kind = "web" if web else "file"
                    items.append({"title": row.title, "text": row.text, "kind": kind})
        return items

    def history(self, session_id: int) -> list[tuple[str, str]]:
        """The session's earlier questions with their latest answers."""
        self.store.runs.session(session_id)
        pairs = []
        for turn in self.store.runs.turns(session_id):
            answers = self.store.runs.answers_for_turn(turn.id)
            if answers:
                pairs.append((turn.question, answers[-1].text))
        return pairs
