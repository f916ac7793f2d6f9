"""The research tools: typed functions with docstrings.

Each does one thing and returns data; the research loop wraps them with budgets and events.
Following a link is `fetch` of a link the reflection step chose by its number from the links
found in pages already read (the model never writes a URL itself).
The planner is offered the tools in PLANNER_TOOLS by name and docstring, and the JSON schema
of their arguments comes from their signatures: every parameter after `ctx` without a
default is one the model fills in (`query` below); parameters with defaults are the loop's.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sleuth.agent.text import chunk_text, search_terms
from sleuth.store.rows import ChunkHit, Source

from .fetch import Fetcher, FetchError
from .search import SearchBackend

SEARCH_CACHE_S = 24 * 3600
PAGE_CACHE_S = 24 * 3600
MAX_PAGE_CHARS = 200_000  # text kept per page; the rest of a huge page is not chunked


class Corpus(Protocol):
    """Where the tools keep and search what they read: the store's library (sources, chunks,
    the search cache). A Protocol so the research loop can hold one without the store."""

    def has_documents(self) -> bool: ...
    def search_chunks(
        self,
        words: Sequence[str],
        *,
        source_ids: Sequence[int] | None = None,
        kind: str | None = None,
        limit: int = 20,
    ) -> list[ChunkHit]: ...
    def cached_search(self, backend: str, query: str, max_age_s: float) -> list | None: ...
    def cache_search(self, backend: str, query: str, results: list) -> None: ...
    def fresh_source(self, uri: str, max_age_s: float) -> Source | None: ...
    def chunk_count(self, source_id: int) -> int: ...
    def save_source(self, **fields: Any) -> int: ...


class OffLoop:
    """A Corpus whose every call runs on a worker thread, awaited: SQLite never runs on the
    event loop (in the app that loop draws the screen, and a database busy for its 5 s
    timeout must not freeze it). What the research loop and the tools reach the store by."""

    def __init__(self, corpus: Corpus):
        self.corpus = corpus

    async def has_documents(self) -> bool:
        return await asyncio.to_thread(self.corpus.has_documents)

    async def search_chunks(self, words: Sequence[str], **options: Any) -> list[ChunkHit]:
        return await asyncio.to_thread(self.corpus.search_chunks, words, **options)

    async def cached_search(self, backend: str, query: str, max_age_s: float) -> list | None:
        return await asyncio.to_thread(self.corpus.cached_search, backend, query, max_age_s)

    async def cache_search(self, backend: str, query: str, results: list) -> None:
        await asyncio.to_thread(self.corpus.cache_search, backend, query, results)

    async def fresh_source(self, uri: str, max_age_s: float) -> Source | None:
        return await asyncio.to_thread(self.corpus.fresh_source, uri, max_age_s)

    async def chunk_count(self, source_id: int) -> int:
        return await asyncio.to_thread(self.corpus.chunk_count, source_id)

    async def save_source(self, **fields: Any) -> int:
        return await asyncio.to_thread(lambda: self.corpus.save_source(**fields))


@dataclass
class ToolContext:
    """What the tools work with."""

    library: OffLoop
    fetcher: Fetcher
    search: SearchBackend | None = None
    max_results: int = 6


@dataclass
class Found:
    """Search results: title, url or uri, snippet (and for the library, source_id and score)."""

    results: list[dict]
    cached: bool = False


@dataclass
class Read:
    """A page or file now in the store, chunked for retrieval."""

    url: str
    source_id: int
    title: str
    size: int
    chunks: int
    links: list[str] = field(default_factory=list)
    cached: bool = False
    seconds: float = 0.0


async def web_search(ctx: ToolContext, query: str) -> Found:
    """Search the web.

    query: a few keywords
    """
    assert ctx.search is not None, "web_search needs a search backend"
    cached = await ctx.library.cached_search(ctx.search.name, query, SEARCH_CACHE_S)
    if cached is not None:
        return Found(cached, cached=True)
    results = [r.as_dict() for r in await ctx.search.search(query, ctx.max_results)]
    await ctx.library.cache_search(ctx.search.name, query, results)
    return Found(results)


async def search_library(
    ctx: ToolContext, query: str, source_ids: list[int] | None = None
) -> Found:
    """Search the user's own files.

    query: a few keywords
    """
    hits = await ctx.library.search_chunks(
        search_terms(query), kind="file", source_ids=source_ids, limit=20
    )
    best: dict[int, ChunkHit] = {}
    for hit in hits:  # one result per file, its best passage
        best.setdefault(hit.source_id, hit)
    return Found(
        [
            {
                "title": h.title,
                "uri": h.uri,
                "snippet": " ".join(h.text.split())[:160],
                "score": round(h.score, 3),
                "source_id": h.source_id,
            }
            for h in best.values()
        ]
    )


async def fetch(ctx: ToolContext, url: str) -> Read:
    """Read a web page or a PDF at an http(s) URL (from the store when read recently).

    url: the address to read
    """
    cached = await ctx.library.fresh_source(url, PAGE_CACHE_S)
    if cached is not None and cached.address is not None:
        # A page read while, say, private hosts were allowed is not served once they are not.
        refusal = ctx.fetcher.refusal(url, cached.address)
        if refusal:
            raise FetchError(refusal)
        return Read(
            url,
            cached.id,
            cached.title or url,
            len(cached.text),
            await ctx.library.chunk_count(cached.id),
            cached.links or [],
            cached=True,
        )
    page = await ctx.fetcher.fetch(url)
    text = page.text[:MAX_PAGE_CHARS]
    chunks = await asyncio.to_thread(chunk_text, text)
    source_id = await ctx.library.save_source(
        kind="web",
        uri=url,
        title=page.title,
        text=text,
        content_hash=hashlib.sha256(text.encode("utf-8", "replace")).hexdigest(),
        chunks=[(c.text, c.start, c.end) for c in chunks],
        published=page.published,
        content_type=page.content_type,
        links=page.links,
        address=page.address,
    )
    return Read(
        url, source_id, page.title, page.size, len(chunks), page.links, seconds=page.seconds
    )


Tool = Callable[..., Awaitable[object]]
PLANNER_TOOLS: dict[str, Tool] = {"web_search": web_search, "search_library": search_library}

_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean"}


def parameters_schema(tool: Tool) -> dict:
    """JSON schema of the arguments the model fills in, from the signature and docstring."""
    hints = typing.get_type_hints(tool)
    docs = dict(re.findall(r"^\s*(\w+): (.+)$", inspect.getdoc(tool) or "", re.M))
    properties, required = {}, []
    for name, parameter in list(inspect.signature(tool).parameters.items())[1:]:
        if parameter.default is not inspect.Parameter.empty:
            continue  # the loop's, not the model's
        properties[name] = {"type": _JSON_TYPES[hints[name]]}
        if name in docs:
            properties[name]["description"] = docs[name]
        required.append(name)
    return {"type": "object", "properties": properties, "required": required}


def describe(name: str) -> str:
    """One line for the planner's prompt: the tool, what it does, what its arguments are."""
    tool = PLANNER_TOOLS[name]
    summary = (inspect.getdoc(tool) or "").splitlines()[0]
    arguments = "; ".join(
        f"the {arg} is {spec.get('description', spec['type'])}"
        for arg, spec in parameters_schema(tool)["properties"].items()
    )
    return (
        f"{name}: {summary} {arguments[0].upper() + arguments[1:]}."
        if arguments
        else f"{name}: {summary}"
    )
