"""The executors: a round's searches and link follows, run concurrently within the run's
budget. Each search or page read becomes events on the run's stream; failures (a 404, a
timeout, a search backend down) become StepFailed events and the round goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from . import tools
from .budget import Budget
from .events import (
    BudgetExhausted,
    Event,
    PageFetched,
    QueryWithheld,
    SearchDone,
    SearchIssued,
    StepFailed,
    StepRetried,
    SubquestionDone,
)
from .fetch import FetchError
from .planner import SubQuestion
from .privacy import Boundary
from .retry import async_retrying
from .search import SearchError, SearchUnreachable

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
    emit: Callable[[Event], None] = lambda event: None

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
            reasons = "; ".join(dict.fromkeys(e for _, e in web_failed))
            said.append(
                f"web search failed for {len(web_failed)} of {len(web_failed) + len(web)} "
                f"quer{'y' if len(web_failed) == 1 else 'ies'} ({reasons})"
            )
        fetches = [e for a, _, e in self.failures if a == "fetch"]
        if fetches and not self.pages_read:
            reasons = "; ".join(dict.fromkeys(fetches))
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


class Executors:
    """Runs searches and fetches for the research loop, at most `concurrency` fetches at once."""

    def __init__(self, context: tools.ToolContext, concurrency: int):
        self.context = context
        self._fetch_slots = asyncio.Semaphore(concurrency)

    async def round(
        self, run: RunState, subquestions: list[SubQuestion], follow: list[str]
    ) -> None:
        """Search every sub-question and follow every chosen link, concurrently."""
        jobs = []
        for sub in subquestions:
            run.subquestions.append(sub)
            jobs.append(self._subquestion(run, len(run.subquestions) - 1, sub))
        jobs += [self._fetch(run, url, via="follow_link") for url in follow]
        await asyncio.gather(*jobs)

    async def _subquestion(self, run: RunState, index: int, sub: SubQuestion) -> None:
        if run.report_exhausted(run.budget.exhausted()):
            return
        private = run.boundary.withheld(sub.query) if sub.tool == "web_search" else []
        if private and sub.source != "user":  # the user's own query is theirs to send
            run.emit(QueryWithheld(sub.query, index, sub.source, len(private)))
            run.emit(SubquestionDone(index, sub.question, 0))
            return
        run.budget.charge_step()
        run.queries_run.append(sub.query)
        words_from = run.boundary.origins(sub.query)
        run.emit(SearchIssued(sub.query, sub.tool, index, sub.source, words_from))
        found = 0
        if sub.tool == "search_library":
            found = await self._search_library(run, index, sub)
        elif sub.tool == "web_search":
            found = await self._search_web(run, index, sub)
        run.emit(SubquestionDone(index, sub.question, found))

    async def _search_library(self, run: RunState, index: int, sub: SubQuestion) -> int:
        found = await tools.search_library(self.context, sub.query, run.library_sources)
        for result in found.results:
            run.pool.add(result.pop("source_id"))
            run.boundary.saw_library(result["title"], result["snippet"])
        run.emit(SearchDone(sub.query, sub.tool, index, found.results))
        return len(found.results)

    async def _search_web(self, run: RunState, index: int, sub: SubQuestion) -> int:
        def retried(attempt: int, wait: float, error: BaseException) -> None:
            run.emit(StepRetried("web_search", sub.query, attempt, round(wait, 2), str(error)))

        try:
            if run.unreachable:  # found unreachable in this run already: no request, no wait
                raise SearchUnreachable(run.unreachable)
            async for attempt in async_retrying(retried):
                with attempt:
                    found = await tools.web_search(self.context, sub.query)
        except SearchError as exc:
            if isinstance(exc, SearchUnreachable):
                run.unreachable = str(exc)
            run.emit(StepFailed("web_search", sub.query, str(exc)))
            return 0
        for result in found.results:
            run.boundary.saw_web(result.get("title"), result.get("snippet"))
        run.emit(SearchDone(sub.query, sub.tool, index, found.results, cached=found.cached))
        per_query = run.budget.limits.pages_per_query
        urls = [r["url"] for r in found.results if r["url"] not in run.seen_urls][:per_query]
        return sum(await asyncio.gather(*(self._fetch(run, url) for url in urls)))

    async def _fetch(self, run: RunState, url: str, *, via: str = "search") -> int:
        """Read one page into the run's pool (within the budget); returns 1 when read."""
        if url in run.seen_urls:
            return 0
        run.seen_urls.add(url)
        if run.report_exhausted(run.budget.fetch_refused()):
            return 0
        run.budget.charge_page()
        try:
            async with self._fetch_slots:
                read = await tools.fetch(self.context, url)
        except FetchError as exc:
            run.emit(StepFailed("fetch", url, str(exc)))
            return 0
        run.pool.add(read.source_id)
        self._add_links(run, read.links)
        run.emit(
            PageFetched(
                url,
                read.title,
                read.size,
                read.chunks,
                read.source_id,
                cached=read.cached,
                via=via,
                seconds=read.seconds,
            ),
        )
        return 1

    def _add_links(self, run: RunState, links: list[str]) -> None:
        for link in links:
            if len(run.links) >= run.budget.limits.max_links:
                return
            if link not in run.seen_urls and link not in run.links:
                run.links.append(link)
