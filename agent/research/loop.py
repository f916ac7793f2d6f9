"""The research loop: plan, execute (concurrently), choose evidence, reflect, write, verify.

`Researcher.ask()` is an async generator of typed events (events.py). It never touches the
database: the recorder persists what it emits (recorder.py) and the assistant joins the two
(assistant.py). LLM calls run one at a time on a worker thread; fetches run
concurrently on the event loop under a semaphore. `cancel()` (safe from any thread) stops the
run at once; the run still ends with RunFinished, and what it found is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sleuth.agent.errors import AgentError
from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.models.llm import LLM
from sleuth.agent.text import search_terms
from sleuth.agent.tools.fetch import Fetcher
from sleuth.agent.tools.search import SearchBackend
from sleuth.agent.tools.toolbox import Corpus, OffLoop, ToolContext

from . import rounds
from .budget import Budget, Limits
from .events import (
    Event,
    EvidenceChosen,
    PageFetched,
    PlanReady,
    PlanReviewed,
    RunFinished,
    RunStarted,
    SearchDone,
    StepFailed,
    Token,
)
from .evidence import QUESTION_WEIGHT, Ranking, Selection, evidence_block, select_evidence, snippet
from .executors import Executors
from .hops import Bridge, about
from .picker import RewardModel
from .planner import SubQuestion, history_text, question_searches
from .privacy import Boundary
from .state import History, RunState
from .writer import Writer, WriterSettings

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # control characters: spaces in a question
MAX_QUESTION_CHARS = 2000  # a question, not a document: plans and prompts repeat it
QUERY_WORDS = 4  # of a bridge's search: its name and as many words of what is asked of it


class NothingFound(AgentError):
    """Every search failed or matched nothing: the run ends without an answer, saying why."""


def check_question(question: str) -> None:
    """Refuse, in one sentence, a question no run should start from: empty (or only spaces,
    punctuation and control characters), or a document."""
    if not question.strip():
        raise AgentError("Ask a question: the question was empty.")
    if not any(ch.isalnum() for ch in question):
        raise AgentError("Ask a question in words: the question had no letter or digit.")
    if len(question) > MAX_QUESTION_CHARS:
        raise AgentError(
            f"The question is {len(question):,} characters long; a question may have at "
            f"most {MAX_QUESTION_CHARS:,}. Put a long text in a file and index it with "
            "`sleuth index`, then ask about it."
        )


ReviewPlan = Callable[[list[SubQuestion]], Awaitable[list[SubQuestion]]]
_DONE = object()


@dataclass(frozen=True)
class LoopSettings:
    """What the loop is allowed and how it samples; built from the user's settings by the
    assistant, so the loop itself needs nothing from the store."""

    limits: Limits
    temperature: float = 0.3  # the writer's
    repeat_penalty: float = 1.1  # the writer's (agent/models/llm.py Sampling)
    concurrency: int = 8  # fetches in flight at once
    max_results: int = 6  # search results read per web query
    local_only: bool = False
    planner: str = "model"  # or "none": search the question itself, once, without a plan
    library_to_web: bool = False  # may web queries carry words found in the user's files?
    answer: str = "read"  # read: a short answer read off the evidence; write: free text
    record: dict[str, Any] = field(default_factory=dict)  # the settings stored with each run


class Researcher:
    """Runs research over the web and the library with one model; one run at a time."""

    def __init__(
        self,
        library: Corpus,
        llm: LLM,
        model: ModelInfo,
        settings: LoopSettings,
        *,
        search: SearchBackend | None = None,
        fetcher: Fetcher,
    ):
        self.corpus = OffLoop(library)  # the store, reached off the event loop only
        self.llm = llm
        self.model = model
        self.settings = settings
        self.search = search
        self.fetcher = fetcher
        self._cancel = threading.Event()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self.executors = Executors(
            ToolContext(self.corpus, fetcher, search, max_results=settings.max_results),
            settings.concurrency,
        )
        self.writer = Writer(
            llm,
            model,
            WriterSettings(
                answer=settings.answer,
                temperature=settings.temperature,
                repeat_penalty=settings.repeat_penalty,
                answer_tokens=settings.limits.answer_tokens,
            ),
            picker=RewardModel.load(model.reward_path) if model.reward_path else None,
        )

    # -- public API ------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the current run now (from any thread); what was found is kept."""
        self._cancel.set()
        if self._task is not None and self._loop is not None and not self._task.done():
            self._loop.call_soon_threadsafe(self._task.cancel)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def aclose(self) -> None:
        await self.fetcher.aclose()
        if self.search is not None and hasattr(self.search, "aclose"):
            await self.search.aclose()

    async def tools(self, *, use_web: bool = True, use_library: bool = True) -> list[str]:
        """The tools a run may use now."""
        tools = []
        if use_web and self.search is not None and not self.settings.local_only:
            tools.append("web_search")
        if use_library and await self.corpus.has_documents():
            tools.append("search_library")
        return tools

    async def ask(
        self,
        question: str,
        *,
        session_id: int | None = None,
        history: History = (),
        seen: Sequence[dict[str, Any]] = (),
        use_web: bool = True,
        use_library: bool = True,
        library_sources: list[int] | None = None,
        seed: int | None = None,
        review: ReviewPlan | None = None,
    ) -> AsyncIterator[Event]:
        """Research `question` (a follow-up in `session_id`, after `history`, whose answers
        were read from the passages `seen`); yields events."""
        question = " ".join(_CONTROL.sub(" ", question).split())
        check_question(question)
        run = self._new_run(question, history, seed)
        run.boundary.recall([q for q, _ in history], [a for _, a in history], seen)
        run.library_sources = library_sources
        started = self._started(run, session_id=session_id)
        work = self._research(run, started, review, use_web=use_web, use_library=use_library)
        async with contextlib.aclosing(self._drive(work)) as events:
            async for event in events:
                yield event

    async def rewrite(
        self,
        question: str,
        *,
        regenerates: int,
        evidence: list[dict[str, Any]],
        messages: list[dict[str, str]] | None,
        seed: int | None = None,
    ) -> AsyncIterator[Event]:
        """Write a new answer to the turn of run `regenerates` from its evidence (a new run),
        so the two answers share one prompt and can be compared."""
        run = self._new_run(question, (), seed)
        started = self._started(run, regenerates=regenerates)
        work = self._rewrite(run, started, regenerates, evidence, messages)
        async with contextlib.aclosing(self._drive(work)) as events:
            async for event in events:
                yield event

    # -- driving a run ---------------------------------------------------------------------

    def _new_run(self, question: str, history: History, seed: int | None) -> RunState:
        run = RunState(
            question=question,
            history=list(history),
            budget=Budget(self.settings.limits),
            tools=[],
            seed=seed if seed is not None else random.randrange(2**31),
            boundary=Boundary(question, library_to_web=self.settings.library_to_web),
            search_backend=self.search.name if self.search is not None else None,
            cancel=self._cancel,
        )
        run.emit = lambda event: self._emit(run, event)
        run.stream = self._stream
        return run

    def _stream(self, piece: str) -> None:
        """A token of the answer onto the run's stream, from the model's worker thread."""
        assert self._loop is not None and self._queue is not None
        self._loop.call_soon_threadsafe(self._queue.put_nowait, Token(piece))

    def _started(self, run: RunState, **where: int | None) -> RunStarted:
        return RunStarted(
            question=run.question,
            model=self.model.name,
            settings=self.settings.record,
            model_id=self.model.model_id,
            base_path=self.model.base_path,
            base_fingerprint=self.model.base_fingerprint,
            **where,
        )

    async def _drive(self, work: Awaitable[None]) -> AsyncIterator[Event]:
        # The check and the task creation happen before the first await: two runs started in
        # the same instant cannot both pass it, and a refused run has emitted nothing.
        if self.running:
            work.close()  # type: ignore[attr-defined]
            raise AgentError("A research run is already in progress: wait for it or cancel it.")
        self._cancel.clear()
        self._loop = asyncio.get_running_loop()
        self._queue = queue = asyncio.Queue()
        task = asyncio.ensure_future(work)
        self._task = task
        task.add_done_callback(lambda _: queue.put_nowait(_DONE))
        try:
            while (item := await queue.get()) is not _DONE:
                yield item
            await task  # re-raise what the run could not record
        finally:
            if not task.done():  # the consumer stopped listening: stop the run
                self.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _emit(self, run: RunState, event: Event) -> None:
        if not isinstance(event, Token):
            run.steps += 1
        match event:  # what the run remembers to say, at the end, what it tried
            case SearchDone(tool=tool, query=query, results=results):
                run.searched.append((tool, query, len(results)))
            case StepFailed(action=action, target=target, error=error):
                run.failures.append((action, target, error))
            case PageFetched():
                run.pages_read += 1
        assert self._queue is not None
        self._queue.put_nowait(event)

    async def _finish(self, run: RunState, status: str, error: str | None = None) -> None:
        self._emit(
            run,
            RunFinished(
                status=status,
                seconds=round(run.budget.elapsed, 3),
                llm_calls=run.budget.llm_calls,
                tokens=run.budget.llm_tokens,
                pages=run.pages_read,
                steps=run.steps + 1,
                error=error,
            ),
        )

    async def _guarded(self, run: RunState, body: Awaitable[None]) -> None:
        """Run `body`, and end the run whatever happens: done, cancelled or failed."""
        try:
            await body
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            await self._finish(run, "cancelled")
            return
        except NothingFound as exc:
            await self._finish(run, "no_evidence", str(exc))
            return
        except AgentError as exc:
            await self._finish(run, "failed", str(exc))
            return
        except Exception as exc:
            await self._finish(run, "failed", f"internal error: {exc.__class__.__name__}: {exc}")
            raise
        await self._finish(run, "done")

    # -- the research itself ---------------------------------------------------------------

    async def _research(
        self,
        run: RunState,
        started: RunStarted,
        review: ReviewPlan | None,
        *,
        use_web: bool,
        use_library: bool,
    ) -> None:
        async def body() -> None:
            self._emit(run, started)
            run.tools = await self.tools(use_web=use_web, use_library=use_library)
            if not run.tools:
                raise AgentError(
                    "Nothing to search: web search is off and the library is empty. Index files "
                    "with `sleuth index PATH` or turn web search on."
                )
            if self.settings.planner == "none":
                subquestions = question_searches(run.question, run.tools)
                self._emit(run, PlanReady(1, [s.as_dict() for s in subquestions]))
            else:
                subquestions = await rounds.plan(run, self.llm)
            if review is not None:
                subquestions = await review(subquestions)
                self._emit(run, PlanReviewed([s.as_dict() for s in subquestions]))
            follow: list[str] = []
            round_number = 1
            while True:
                await self.executors.round(run, subquestions, follow)
                if self.settings.planner == "none" or not run.budget.another_round(round_number):
                    run.report_exhausted(run.budget.exhausted())
                    break
                chosen = (await self._choose_evidence(run)).items
                subquestions, follow = await rounds.next_round(run, self.llm, chosen, round_number)
                if not (subquestions or follow):
                    break
                round_number += 1
                self._emit(run, PlanReady(round_number, [s.as_dict() for s in subquestions]))
            selection = await self._choose_evidence(run)
            bridges: list[Bridge] = []
            if self.settings.answer == "read" and selection.items:
                selection, bridges = await self._follow(run, selection)
            self._emit(
                run, EvidenceChosen(selection.items, selection.dropped_duplicates, selection.tokens)
            )
            if not selection.items:  # never an answer from the model's memory
                raise NothingFound(run.why_nothing_found())
            history = history_text(run.history)
            items = selection.items
            messages = self.writer.messages(run.question, items, history, bridges)
            await self.writer.answer(
                run, run.question, items, messages, seed=run.seed, bridges=bridges
            )

        await self._guarded(run, body())

    async def _rewrite(self, run, started, regenerates, evidence, messages) -> None:
        async def body() -> None:
            self._emit(run, started)
            items = [
                {**item, "number": number, "snippet": snippet(item["text"])}
                for number, item in enumerate(evidence, start=1)
            ]
            self._emit(run, EvidenceChosen(items, reused_from_run=regenerates))
            messages_used = messages or self.writer.messages(run.question, items)
            await self.writer.answer(
                run, run.question, items, messages_used, seed=run.seed, again=True
            )

        await self._guarded(run, body())

    async def _follow(self, run: RunState, selection: Selection) -> tuple[Selection, list]:
        """Read a two-step question's bridges in order (hops.py); for a bridge no passage is
        about yet, search for it with what the question asks of it, and choose the evidence
        again. Returns the evidence chosen and the bridges read."""
        chosen = selection

        async def search(bridge: Bridge) -> list[dict]:
            nonlocal chosen
            if about(bridge.name, chosen.items) or run.budget.exhausted():
                return chosen.items
            asked = bridge.hop.then(bridge.name)
            named = set(search_terms(bridge.name))
            rest = [w for w in search_terms(asked) if w not in named]
            query = " ".join([bridge.name, *rest[:QUERY_WORDS]])
            subs = [SubQuestion(asked, tool, query, "bridge") for tool in run.tools]
            await self.executors.round(run, subs, [])
            chosen = await self._choose_evidence(run)
            return chosen.items

        bridges, _ = await self.writer.follow(run, run.question, selection.items, search)
        return chosen, bridges

    async def _choose_evidence(self, run: RunState) -> Selection:
        """The passages the writer sees, chosen from this run's pool (evidence.py)."""
        limits = run.budget.limits
        queries = list(dict.fromkeys([run.question] + [s.question for s in run.subquestions]))
        rankings = [
            Ranking(
                query,
                await self.corpus.search_chunks(
                    search_terms(query), source_ids=sorted(run.pool), limit=limits.evidence_k
                ),
                QUESTION_WEIGHT if index == 0 else 1.0,
            )
            for index, query in enumerate(queries)
        ]
        selection = select_evidence(
            rankings,
            k=limits.evidence_k,
            token_budget=limits.evidence_tokens,
            cost=lambda item: self.llm.count_tokens(evidence_block([item])),
            reserve=limits.evidence_k // 2,
            each_best=True,
        )
        for item in selection.items:  # what the model and the bridges read from here on
            run.boundary.saw(item)
        return selection
