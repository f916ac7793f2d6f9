"""The tools: schemas from signatures, and caching in the store."""

from __future__ import annotations

import pytest

from sleuth.agent.tools import toolbox as tools
from sleuth.agent.tools.fetch import Fetcher, FetchError
from sleuth.agent.tools.library import index_paths
from sleuth.agent.tools.search import SearxngSearch
from sleuth.store.settings import NetworkSettings


def test_the_planner_sees_each_tool_by_its_docstring_and_signature():
    assert (
        tools.describe("web_search") == "web_search: Search the web. The query is a few keywords."
    )
    assert tools.parameters_schema(tools.search_library) == {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "a few keywords"}},
        "required": ["query"],  # source_ids has a default: the loop's, not the model's
    }
    assert tools.parameters_schema(tools.fetch)["properties"]["url"]["type"] == "string"


@pytest.fixture
def context(store, web, network):
    ctx = tools.ToolContext(
        tools.OffLoop(store.library), Fetcher(network), SearxngSearch(web.base), max_results=3
    )
    yield ctx


async def test_web_search_and_fetch_are_cached_in_the_store(context, web):
    first = await tools.web_search(context, "Lyon founder")
    again = await tools.web_search(context, "Lyon founder")
    assert not first.cached and again.cached and again.results == first.results
    url = first.results[0]["url"]
    read = await tools.fetch(context, url)
    assert read.chunks >= 1 and context.library.corpus.source(read.source_id).uri == url
    before = len(web.seen())
    cached = await tools.fetch(context, url)
    assert cached.cached and cached.source_id == read.source_id and len(web.seen()) == before
    await context.fetcher.aclose()


async def test_search_library_gives_one_result_per_file(context, store, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "long.md").write_text("# Rivers\n\n" + "The Rhône is a river. " * 200)
    (notes / "short.md").write_text("# Saône\n\nThe Saône is a river too.")
    index_paths(store, [notes])
    found = await tools.search_library(context, "river")
    assert sorted(r["title"] for r in found.results) == ["Rivers", "Saône"]
    only = await tools.search_library(context, "river", source_ids=[found.results[0]["source_id"]])
    assert len(only.results) == 1
    await context.fetcher.aclose()


async def test_the_page_cache_serves_nothing_the_policy_in_force_would_refuse(store, web, network):
    allowed = tools.ToolContext(tools.OffLoop(store.library), Fetcher(network), None)
    read = await tools.fetch(allowed, web.url("/articles/lyon.html"))
    assert store.library.source(read.source_id).address == "127.0.0.1"
    # Private hosts are turned off: the cached copy of a loopback page is refused too.
    strict = tools.ToolContext(tools.OffLoop(store.library), Fetcher(NetworkSettings()), None)
    before = len(web.seen())
    with pytest.raises(FetchError, match="private or loopback"):
        await tools.fetch(strict, web.url("/articles/lyon.html"))
    # ... unless that one host is allowed by name.
    one_host = NetworkSettings(allowed_hosts=web.base.removeprefix("http://"))
    by_name = tools.ToolContext(tools.OffLoop(store.library), Fetcher(one_host), None)
    assert (await tools.fetch(by_name, web.url("/articles/lyon.html"))).cached
    assert len(web.seen()) == before
    for context in (allowed, strict, by_name):
        await context.fetcher.aclose()
