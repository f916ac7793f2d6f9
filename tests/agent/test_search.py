"""Web search backends: the SearXNG client against a real local endpoint; backend choice."""

from __future__ import annotations

import pytest

from sleuth.agent.tools.search import (
    DdgsSearch,
    SearchError,
    SearchUnreachable,
    SearxngSearch,
    make_search,
)
from sleuth.store import ConfigError
from sleuth.store.settings import load_settings


async def test_searxng_client_reads_the_json_api(web):
    search = SearxngSearch(web.base)
    results = await search.search("Lyon founded Plancus", 3)
    await search.aclose()
    assert len(results) == 3
    assert results[0].url == web.url("/articles/plancus.html") or "lyon" in results[0].url
    assert all(r.url.startswith("http://127.0.0.1") and r.title for r in results)
    assert web.seen()[0].startswith("/search?q=Lyon+founded+Plancus&format=json")


async def test_searxng_failures_are_search_errors(web):
    with pytest.raises(SearchError, match="format=json"):
        await SearxngSearch(web.url("/strict")).search("x", 3)
    closed = SearxngSearch("http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(SearchUnreachable, match=r"cannot be reached \(connection refused\)"):
        await closed.search("x", 3)
    assert SearchUnreachable.attempts == 2  # tried once more at most, then not again this run


def test_backend_choice_follows_the_settings(web):
    assert isinstance(make_search(load_settings(None, env={})), DdgsSearch)
    searx = load_settings(
        None, env={}, flags={"search.backend": "searxng", "search.searxng_url": web.base}
    )
    assert isinstance(make_search(searx), SearxngSearch)
    assert make_search(load_settings(None, env={}, flags={"search.backend": "none"})) is None
    assert make_search(load_settings(None, env={}, flags={"network.local_only": True})) is None
    with pytest.raises(ConfigError, match="searxng_url is empty"):
        make_search(load_settings(None, env={}, flags={"search.backend": "searxng"}))


async def test_a_busy_search_server_is_retried_after_its_retry_after(store, web):
    from sleuth.agent.research.events import RunFinished, SearchDone, StepRetried
    from tests.agent.test_research import PLAN, assistant_for, collect, of, settings_for
    from tests.fakes import ScriptedLLM

    web.failures["/flaky/search"] = 1  # one 503 with Retry-After: 1, then results
    flags = {"search.searxng_url": web.base + "/flaky", "research.pages_per_query": 1}
    agent = assistant_for(store, ScriptedLLM([PLAN, "Plancus [1]."]), settings_for(web, **flags))
    events = await collect(agent.ask("Who founded Lyon?"))
    await agent.aclose()
    (retried,) = of(events, StepRetried)
    assert retried.action == "web_search" and retried.wait_s == 1.0 and "503" in retried.error
    assert all(e.results for e in of(events, SearchDone))
    run_id = of(events, RunFinished)[0].run_id
    assert "step_retried" in [s.kind for s in store.runs.steps(run_id)]  # recorded
