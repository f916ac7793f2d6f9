"""The executors: a round's searches and link follows, run concurrently within the run's
budget. Each search or page read becomes events on the run's stream; failures (a 404, a
timeout, a search backend down) become StepFailed events and the round goes on.
"""

from __future__ import annotations

import asyncio

from sleuth.agent.retry import async_retrying
from sleuth.agent.tools import toolbox
from sleuth.agent.tools.fetch import FetchError
from sleuth.agent.tools.search import SearchError, SearchUnreachable

from .events import (
    PageFetched,
    QueryWithheld,
    SearchDone,
    SearchIssued,
    StepFailed,
    StepRetried,
    SubquestionDone,
)
from .planner import SubQuestion
from .state import RunState


class Executors:
    """Runs searches and fetches for the research loop, at most `concurrency` fetches at once."""

    def __init__(self, context: toolbox.ToolContext, concurrency: int):
        self.context = context
        self._fetch_slots = asyncio.Semaphore(concurrency)

    async def round(
        self, run: RunState, subquestions: list[SubQuestion], follow: list[str]
    ) -> None:
        """Search every sub-question at once; then read, at once, the pages each search found
        (its first pages_per_query results that no sub-question before it claimed) and the
        links chosen to follow. Pages are claimed in the plan's order, not in the order the
        searches happen to finish, so a run reads the same pages whatever the timing."""
        first = len(run.subquestions)
        run.subquestions += subquestions
        found = await asyncio.gather(
            *(self._search(run, first + i, sub) for i, sub in enumerate(subquestions))
        )
        per_query = run.budget.limits.pages_per_query
        reads = []
        for i, (sub, result) in enumerate(zip(subquestions, found, strict=True)):
            if isinstance(result, list):  # a web search's results: the pages to read
                result = self._claim(run, [r["url"] for r in result], per_query)
            reads.append(self._finish(run, first + i, sub, result))
        reads += [self._fetch(run, url, via="follow_link") for url in self._claim(run, follow)]
        await asyncio.gather(*reads)

    @staticmethod
    def _claim(run: RunState, urls: list[str], limit: int | None = None) -> list[str]:
        """The first `limit` of `urls` not read or claimed yet in this run, now claimed."""
        claimed = [url for url in dict.fromkeys(urls) if url not in run.seen_urls][:limit]
        run.seen_urls.update(claimed)
        return claimed

    async def _search(self, run: RunState, index: int, sub: SubQuestion) -> int | list | None:
        """Run one sub-question's search: the library's hits (a count), the web's results (a
        list, read in the round's second half), or None when it was not run."""
        if run.report_exhausted(run.budget.exhausted()):
            return None
        private = run.boundary.withheld(sub.query) if sub.tool == "web_search" else []
        if private and sub.source != "user":  # the user's own query is theirs to send
            run.emit(QueryWithheld(sub.query, index, sub.source, len(private)))
            run.emit(SubquestionDone(index, sub.question, 0))
            return None
        run.budget.charge_step()
        run.queries_run.append(sub.query)
        words_from = run.boundary.origins(sub.query)
        run.emit(SearchIssued(sub.query, sub.tool, index, sub.source, words_from))
        if sub.tool == "search_library":
            return await self._search_library(run, index, sub)
        if sub.tool == "web_search":
            return await self._search_web(run, index, sub)
        return 0

    async def _finish(self, run: RunState, index: int, sub, result: int | list | None) -> None:
        """Read a web search's claimed pages; say the sub-question is done, with its count."""
        if result is None:
            return
        if isinstance(result, list):
            result = sum(await asyncio.gather(*(self._fetch(run, url) for url in result)))
        run.emit(SubquestionDone(index, sub.question, result))

    async def _search_library(self, run: RunState, index: int, sub: SubQuestion) -> int:
        found = await toolbox.search_library(self.context, sub.query, run.library_sources)
        for result in found.results:
            run.pool.add(result.pop("source_id"))
            run.boundary.saw_library(result["title"], result["snippet"])
        run.emit(SearchDone(sub.query, sub.tool, index, found.results))
        return len(found.results)

    async def _search_web(self, run: RunState, index: int, sub: SubQuestion) -> list[dict]:
        def retried(attempt: int, wait: float, error: BaseException) -> None:
            run.emit(StepRetried("web_search", sub.query, attempt, round(wait, 2), str(error)))

        try:
            if run.unreachable:  # found unreachable in this run already: no request, no wait
                raise SearchUnreachable(run.unreachable)
            async for attempt in async_retrying(retried):
                with attempt:
                    found = await toolbox.web_search(self.context, sub.query)
        except SearchError as exc:
            if isinstance(exc, SearchUnreachable):
                run.unreachable = str(exc)
            run.emit(StepFailed("web_search", sub.query, str(exc)))
            return []
        for result in found.results:
            run.boundary.saw_web(result.get("title"), result.get("snippet"))
        run.emit(SearchDone(sub.query, sub.tool, index, found.results, cached=found.cached))
        return found.results

    async def _fetch(self, run: RunState, url: str, *, via: str = "search") -> int:
        """Read one page the round claimed into the run's pool (within the budget); returns 1
        when read."""
        if run.report_exhausted(run.budget.fetch_refused()):
            return 0
        run.budget.charge_page()
        try:
            async with self._fetch_slots:
                read = await toolbox.fetch(self.context, url)
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
