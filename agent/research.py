"""The research loop: plan, execute (concurrently), choose evidence, reflect, write, verify.

`Researcher.ask()` is an async generator of typed events. Each event is written to the store
as it is emitted (tokens excepted: the answer is stored whole), so a crash loses at most the
step in flight. LLM calls run one at a time on a worker thread; fetches run concurrently on the
event loop under a semaphore. `cancel()` (safe from any thread) stops the run at once and
keeps everything found so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sleuth.store import Store, StoreError
from sleuth.store.settings import Settings

from . import tools
from .budget import Budget
from .errors import AgentError
from .events import (
    AnswerDone,
    BudgetExhausted,
    Event,
    EvidenceChosen,
    LLMCall,
    PageFetched,
    PlanReady,
    Reflected,
    RunFinished,
    RunStarted,
    SearchDone,
    SearchIssued,
    StepFailed,
    SubquestionDone,
    Token,
)
from .fetch import Fetcher, FetchError
from .llm import LLM, Completion, Sampling
from .models import ModelInfo
from .planner import SubQuestion, history_text, make_plan, reflect
from .search import SearchBackend, SearchError
from .text import near_duplicate
from .writer import evidence_block, verify, writer_messages

MAX_LINKS = 30  # links offered to the planner for following
RRF_K = 10  # reciprocal-rank fusion: small, so the top few ranks of each query dominate
QUESTION_WEIGHT = 2.0  # the user's own question outweighs any one sub-question

ReviewPlan = Callable[[list[SubQuestion]], Awaitable[list[SubQuestion]]]
_DONE = object()


@dataclass
class _Run:
    """What one run knows while it runs."""

    run_id: int
    session_id: int
    turn_id: int
    question: str
    history: str
    budget: Budget
    tools: list[str]
    seed: int
    library_sources: list[int] | None = None  # restrict library search to these sources
    subquestions: list[SubQuestion] = field(default_factory=list)
    queries_run: list[str] = field(default_factory=list)
    pool: set[int] = field(default_factory=set)  # source ids this run found
    seen_urls: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    answer_id: int | None = None
    exhausted_reported: bool = False


class Researcher:
    """Runs research over the web and the library with one model; one run at a time."""

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
        self.llm = llm
        self.model = model
        self.settings = settings
        self.search = search
        self.fetcher = fetcher or Fetcher(settings.network)
        self._cancel = threading.Event()
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._fetch_slots = asyncio.Semaphore(settings.network.concurrency)
        self.tool_context = tools.ToolContext(
            store, self.fetcher, search, max_results=settings.search.max_results
        )

    # -- public API ------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop the current run now (from any thread); what was found is kept."""
        self._cancel.set()
        if self._task is not None and self._loop is not None and not self._task.done():
            self._loop.call_soon_threadsafe(self._task.cancel)

    async def aclose(self) -> None:
        await self.fetcher.aclose()
        if self.search is not None and hasattr(self.search, "aclose"):
            await self.search.aclose()

    def tools(self, *, use_web: bool = True, use_library: bool = True) -> list[str]:
        """The tools a run may use now."""
        tools = []
        if use_web and self.search is not None and not self.settings.network.local_only:
            tools.append("web_search")
        if use_library and self.store.documents():
            tools.append("search_library")
        return tools

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
        """Research `question` (a follow-up when `session_id` is given); yields events."""
        question = " ".join(question.split())
        if not question:
            raise AgentError("Ask a question: the question was empty.")
        if session_id is None:
            session_id = self.store.new_session(question)
        history = self._history(session_id)
        turn_id = self.store.add_turn(session_id, question)
        run = self._new_run(session_id, turn_id, question, history, seed)
        run.tools = self.tools(use_web=use_web, use_library=use_library)
        if library_roots is not None:
            run.library_sources = [
                d["source_id"]
                for root in library_roots
                for d in self.store.documents(root=root)
                if d["source_id"] is not None
            ]
        async with contextlib.aclosing(self._drive(self._research(run, review))) as events:
            async for event in events:
                yield event

    async def regenerate(self, run_id: int, *, seed: int | None = None) -> AsyncIterator[Event]:
        """Write a new answer to the same turn from the same evidence (a new run), so the two
        answers share one prompt and can be compared."""
        old = self.store.run(run_id)
        turn = self.store.turn(old["turn_id"])
        evidence = [dict(row) for row in self.store.evidence(run_id)]
        previous = self.store.answer_for_run(run_id)
        run = self._new_run(turn["session_id"], turn["id"], turn["question"], "", seed)
        messages = previous["messages"] if previous else None
        work = self._rewrite(run, run_id, evidence, messages)
        async with contextlib.aclosing(self._drive(work)) as events:
            async for event in events:
                yield event

    # -- driving a run ---------------------------------------------------------------------

    def _new_run(self, session_id, turn_id, question, history, seed) -> _Run:
        model_id = self.model.model_id
        run_id = self.store.start_run(turn_id, self.settings.as_dict(), model_id)
        return _Run(
            run_id=run_id,
            session_id=session_id,
            turn_id=turn_id,
            question=question,
            history=history,
            budget=Budget.from_settings(self.settings.research),
            tools=[],
            seed=seed if seed is not None else random.randrange(2**31),
        )

    async def _drive(self, work: Awaitable[None]) -> AsyncIterator[Event]:
        if self._task is not None and not self._task.done():
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

    def _emit(
        self,
        run: _Run,
        event: Event,
        *,
        duration_ms: float | None = None,
        tokens: tuple[int, int] | None = None,
    ) -> None:
        if not isinstance(event, Token):
            self.store.add_step(
                run.run_id,
                event.kind,
                event.data(),
                status="failed" if event.failed else "ok",
                duration_ms=duration_ms,
                tokens_in=tokens[0] if tokens else None,
                tokens_out=tokens[1] if tokens else None,
            )
        assert self._queue is not None
        self._queue.put_nowait(event)

    async def _finish(self, run: _Run, status: str, error: str | None = None) -> None:
        self.store.finish_run(run.run_id, status, error)
        steps = self.store.steps(run.run_id)
        self._emit(
            run,
            RunFinished(
                run_id=run.run_id,
                status=status,
                seconds=round(run.budget.elapsed, 3),
                llm_calls=run.budget.llm_calls,
                tokens=run.budget.llm_tokens,
                pages=run.budget.pages,
                steps=len(steps) + 1,
                answer_id=run.answer_id,
                error=error,
            ),
        )

    async def _guarded(self, run: _Run, body: Awaitable[None]) -> None:
        """Run `body`, and close the run whatever happens: done, cancelled or failed."""
        try:
            await body
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None:
                current.uncancel()
            await self._finish(run, "cancelled")
            return
        except (AgentError, StoreError) as exc:
            await self._finish(run, "failed", str(exc))
            return
        except Exception as exc:
            await self._finish(run, "failed", f"internal error: {exc.__class__.__name__}: {exc}")
            raise
        await self._finish(run, "done")

    # -- the research itself ---------------------------------------------------------------

    async def _research(self, run: _Run, review: ReviewPlan | None) -> None:
        async def body() -> None:
            self._emit(
                run,
                RunStarted(run.run_id, run.session_id, run.turn_id, run.question, self.model.name),
            )
            if not run.tools:
                raise AgentError(
                    "Nothing to search: web search is off and the library is empty. Index files "
                    "with `sleuth index PATH` or turn web search on."
                )
            subquestions = await self._plan(run)
            if review is not None:
                subquestions = await review(subquestions)
                self.store.set_plan(run.run_id, _plan_record(subquestions, reviewed=True))
            follow: list[str] = []
            for round_number in range(1, run.budget.max_rounds + 1):
                await self._execute(run, subquestions, follow)
                if round_number == run.budget.max_rounds or self._check_budget(run):
                    break
                evidence, _, _ = self._select_evidence(run)
                reflection = await self._reflect(run, evidence, round_number)
                if reflection.enough or not (reflection.new_queries or reflection.follow_links):
                    break
                subquestions, follow = reflection.new_queries, reflection.follow_links
                self._emit(run, PlanReady(round_number + 1, [s.as_dict() for s in subquestions]))
            evidence, dropped, tokens = self._select_evidence(run)
            self.store.add_evidence(run.run_id, evidence)
            self._emit(run, EvidenceChosen(_evidence_summary(evidence), dropped, tokens))
            messages = writer_messages(run.question, evidence, run.history)
            await self._write(run, evidence, messages)

        await self._guarded(run, body())

    async def _rewrite(self, run, old_run_id, evidence, messages) -> None:
        async def body() -> None:
            self._emit(
                run,
                RunStarted(run.run_id, run.session_id, run.turn_id, run.question, self.model.name),
            )
            self.store.add_evidence(run.run_id, evidence)
            self._emit(run, EvidenceChosen(_evidence_summary(evidence), reused_from_run=old_run_id))
            await self._write(run, evidence, messages or writer_messages(run.question, evidence))

        await self._guarded(run, body())

    async def _llm(self, run: _Run, purpose: str, call: Callable[[], Any]) -> Any:
        """Run one model call on the worker thread and account for it."""
        started = time.perf_counter()
        result = await asyncio.to_thread(call)
        completion: Completion | None = result[1] if isinstance(result, tuple) else result
        if completion is not None:
            run.budget.charge_llm(completion.prompt_tokens, completion.completion_tokens)
            self._emit(
                run,
                LLMCall(
                    purpose,
                    completion.prompt_tokens,
                    completion.completion_tokens,
                    completion.cached_tokens,
                    round(completion.seconds, 3),
                ),
                duration_ms=(time.perf_counter() - started) * 1000,
                tokens=(completion.prompt_tokens, completion.completion_tokens),
            )
        return result

    async def _plan(self, run: _Run) -> list[SubQuestion]:
        research = self.settings.research
        subquestions, _, error = await self._llm(
            run,
            "plan",
            lambda: make_plan(
                self.llm,
                run.question,
                run.tools,
                max_subquestions=research.max_subquestions,
                history=self._history_pairs(run.session_id, run.turn_id),
                seed=run.seed,
                cancel=self._cancel,
            ),
        )
        if error:
            self._emit(run, StepFailed("plan", "model", error))
        self.store.set_plan(run.run_id, _plan_record(subquestions))
        self._emit(run, PlanReady(1, [s.as_dict() for s in subquestions], fallback=bool(error)))
        return subquestions

    async def _reflect(self, run: _Run, evidence: list[dict], round_number: int):
        reflection, _ = await self._llm(
            run,
            "reflect",
            lambda: reflect(
                self.llm,
                run.question,
                run.tools,
                queries_run=run.queries_run,
                evidence=evidence,
                links=run.links[:MAX_LINKS],
                seed=run.seed + round_number,
                cancel=self._cancel,
            ),
        )
        self._emit(
            run,
            Reflected(
                round_number,
                reflection.enough,
                [q.as_dict() for q in reflection.new_queries],
                reflection.follow_links,
            ),
        )
        return reflection

    def _check_budget(self, run: _Run) -> bool:
        reason = run.budget.exhausted()
        if reason and not run.exhausted_reported:
            run.exhausted_reported = True
            self._emit(run, BudgetExhausted(reason))
        return reason is not None

    async def _execute(self, run: _Run, subquestions: list[SubQuestion], follow: list[str]) -> None:
        jobs = []
        for sub in subquestions:
            run.subquestions.append(sub)
            jobs.append(self._subquestion(run, len(run.subquestions) - 1, sub))
        jobs += [self._fetch(run, url, via="follow_link") for url in follow]
        await asyncio.gather(*jobs)

    async def _subquestion(self, run: _Run, index: int, sub: SubQuestion) -> None:
        if self._check_budget(run):
            return
        run.budget.charge_step()
        run.queries_run.append(sub.query)
        self._emit(run, SearchIssued(sub.query, sub.tool, index))
        found = 0
        if sub.tool == "search_library":
            found = await self._search_library(run, index, sub)
        elif sub.tool == "web_search":
            found = await self._search_web(run, index, sub)
        self._emit(run, SubquestionDone(index, sub.question, found))

    def _tool_failed(self, run: _Run, action: str, target: str, exc: Exception) -> int:
        self._emit(run, StepFailed(action, target, str(exc)))
        return 0

    async def _search_library(self, run: _Run, index: int, sub: SubQuestion) -> int:
        found = await tools.search_library(self.tool_context, sub.query, run.library_sources)
        for result in found.results:
            run.pool.add(result.pop("source_id"))
        self._emit(run, SearchDone(sub.query, sub.tool, index, found.results))
        return len(found.results)

    async def _search_web(self, run: _Run, index: int, sub: SubQuestion) -> int:
        try:
            found = await tools.web_search(self.tool_context, sub.query)
        except SearchError as exc:
            return self._tool_failed(run, "web_search", sub.query, exc)
        self._emit(run, SearchDone(sub.query, sub.tool, index, found.results, cached=found.cached))
        per_query = self.settings.research.pages_per_query
        urls = [r["url"] for r in found.results if r["url"] not in run.seen_urls][:per_query]
        return sum(await asyncio.gather(*(self._fetch(run, url) for url in urls)))

    async def _fetch(self, run: _Run, url: str, *, via: str = "search") -> int:
        """Read one page into the run's pool (within the budgets); returns 1 when read."""
        if url in run.seen_urls:
            return 0
        run.seen_urls.add(url)
        if self._check_budget(run):
            return 0
        if run.budget.pages_left() <= 0:
            if not run.exhausted_reported:
                run.exhausted_reported = True
                reason = f"page budget reached ({run.budget.max_pages} pages)"
                self._emit(run, BudgetExhausted(reason))
            return 0
        run.budget.charge_page()
        run.budget.charge_step()
        try:
            async with self._fetch_slots:
                read = await tools.fetch(self.tool_context, url)
        except FetchError as exc:
            return self._tool_failed(run, "fetch", url, exc)
        run.pool.add(read.source_id)
        self._add_links(run, read.links)
        self._emit(
            run,
            PageFetched(
                url, read.title, read.size, read.chunks, read.source_id, cached=read.cached, via=via
            ),
            duration_ms=read.seconds * 1000 if not read.cached else None,
        )
        return 1

    def _add_links(self, run: _Run, links: list[str]) -> None:
        for link in links:
            if len(run.links) >= MAX_LINKS:
                return
            if link not in run.seen_urls and link not in run.links:
                run.links.append(link)

    def _select_evidence(self, run: _Run) -> tuple[list[dict], int, int]:
        """The passages the writer sees: BM25 over this run's pool for the question and for
        each sub-question, fused by weighted reciprocal rank (the question counts double; a
        passage several queries find rises), near-duplicates dropped, best first, within the
        evidence token budget. Returns (evidence, duplicates dropped, tokens)."""
        research = self.settings.research
        queries = list(dict.fromkeys([run.question] + [s.question for s in run.subquestions]))
        fused: dict[int, float] = {}
        hits: dict[int, dict] = {}
        found_by: dict[int, str] = {}
        for index, query in enumerate(queries):
            weight = QUESTION_WEIGHT if index == 0 else 1.0
            ranked = self.store.search_chunks(
                query, source_ids=sorted(run.pool), limit=research.evidence_k
            )
            for rank, hit in enumerate(ranked):
                fused[hit["id"]] = fused.get(hit["id"], 0.0) + weight / (RRF_K + rank + 1)
                hits.setdefault(hit["id"], hit)
                found_by.setdefault(hit["id"], query)
        chosen: list[dict] = []
        dropped = tokens = 0
        for chunk_id in sorted(fused, key=lambda c: -fused[c]):
            if len(chosen) >= research.evidence_k:
                break
            hit = hits[chunk_id]
            if any(near_duplicate(hit["text"], c["text"]) for c in chosen):
                dropped += 1
                continue
            item = {
                "uri": hit["uri"],
                "title": hit["title"],
                "text": hit["text"],
                "source_id": hit["source_id"],
                "chunk_id": chunk_id,
                "subquestion": found_by[chunk_id],
                "score": round(fused[chunk_id], 5),
            }
            cost = self.llm.count_tokens(evidence_block([item]))
            if tokens + cost > research.evidence_tokens:
                continue
            tokens += cost
            chosen.append(item)
        return chosen, dropped, tokens

    async def _write(self, run: _Run, evidence: list[dict], messages: list[dict]) -> None:
        research = self.settings.research
        sampling = Sampling(
            temperature=research.temperature, max_tokens=research.answer_tokens, seed=run.seed
        )
        loop = asyncio.get_running_loop()
        queue = self._queue
        assert queue is not None

        pieces: list[str] = []

        def on_token(piece: str) -> None:
            pieces.append(piece)
            loop.call_soon_threadsafe(queue.put_nowait, Token(piece))

        try:
            completion = await self._llm(
                run,
                "write",
                lambda: self.llm.chat(messages, sampling, on_token=on_token, cancel=self._cancel),
            )
        except asyncio.CancelledError:
            completion = None
        if completion is None or completion.finish_reason == "cancelled":
            # Kept as a step for the record, never as an answer: a cut-off text would teach
            # the trainer to stop mid-sentence.
            self.store.add_step(run.run_id, "answer_cancelled", {"text": "".join(pieces)})
            raise asyncio.CancelledError
        checked = verify(completion.text, evidence)
        run.answer_id = self.store.add_answer(
            run.run_id,
            text=checked.text,
            messages=messages,
            sampling=sampling.as_dict(),
            citations=checked.citations,
            verification=checked.verification,
            model_id=self.model.model_id,
            model_name=self.model.name,
            base_path=self.model.base_path,
            adapter_path=self.model.adapter_path,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            duration_ms=completion.seconds * 1000,
        )
        sources = [
            {"number": n, "title": item.get("title") or item["uri"], "uri": item["uri"]}
            for n, item in enumerate(evidence, start=1)
        ]
        self._emit(
            run,
            AnswerDone(
                run.answer_id, checked.text, checked.citations, checked.verification, sources
            ),
        )

    # -- sessions ----------------------------------------------------------------------------

    def _history_pairs(
        self, session_id: int, before_turn: int | None = None
    ) -> list[tuple[str, str]]:
        pairs = []
        for turn in self.store.turns(session_id):
            if before_turn is not None and turn["id"] >= before_turn:
                break
            answers = self.store.answers_for_turn(turn["id"])
            if answers:
                pairs.append((turn["question"], answers[-1]["text"]))
        return pairs

    def _history(self, session_id: int) -> str:
        return history_text(self._history_pairs(session_id))


def _plan_record(subquestions: list[SubQuestion], reviewed: bool = False) -> dict[str, Any]:
    return {"subquestions": [s.as_dict() for s in subquestions], "reviewed": reviewed}


def _evidence_summary(evidence: list[dict]) -> list[dict]:
    return [
        {
            "number": n,
            "title": e.get("title"),
            "uri": e["uri"],
            "subquestion": e.get("subquestion"),
            "score": e.get("score"),
            "snippet": _snippet(e["text"]),
        }
        for n, e in enumerate(evidence, start=1)
    ]


def _snippet(text: str) -> str:
    """The start of a passage as one line, without Markdown heading marks."""
    return " ".join(text.replace("#", " ").split())[:200]
