"""Web search backends: ddgs (keyless, the default), SearXNG (at a configured URL), none.

The search endpoint is the user's own choice (often a SearXNG on localhost), so it is not
subject to the private-address rule that guards page fetches; local-only mode turns search off.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import asdict, dataclass
from typing import Protocol

import httpx

from sleuth.agent.retry import TRANSIENT_STATUS, Transient, retry_after
from sleuth.store import ConfigError
from sleuth.store.settings import Settings, redact_url


class SearchError(Exception):
    """A search that failed (no network, rate limit, bad answer); recorded, not fatal."""


class SearchUnavailable(SearchError, Transient):
    """A search that may work in a moment (busy, restarting, unreachable): retried."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class SearchUnreachable(SearchUnavailable):
    """The backend cannot be reached at all (connection refused, no such host): tried once
    more, and then the run stops asking it (agent/research/executors.py)."""

    attempts = 2


@dataclass
class SearchResult:
    title: str
    url: str
    snippet: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class SearchBackend(Protocol):
    name: str

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        """Results for `query`, best first."""
        ...


class SearxngSearch:
    """A SearXNG instance's JSON API (the instance must allow `format=json`)."""

    name = "searxng"

    def __init__(self, base_url: str, timeout: float = 15.0):
        self.base_url = base_url.rstrip("/")
        self.shown = redact_url(self.base_url)  # what messages say: no password in them
        self._client = httpx.AsyncClient(timeout=timeout, follow_redirects=True)

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        try:
            response = await self._client.get(
                self.base_url + "/search", params={"q": query, "format": "json"}
            )
        except httpx.ConnectError as exc:  # refused, or no such host: nothing is listening
            raise SearchUnreachable(
                f"SearXNG at {self.shown} cannot be reached ({_reason(exc)})"
            ) from exc
        except httpx.HTTPError as exc:
            raise SearchUnavailable(
                f"SearXNG at {self.shown} unreachable ({exc.__class__.__name__})"
            ) from exc
        if response.status_code == 403:
            raise SearchError("SearXNG refused format=json: enable it in the instance's settings")
        if response.status_code in TRANSIENT_STATUS:
            raise SearchUnavailable(
                f"SearXNG answered HTTP {response.status_code}",
                retry_after(response.headers.get("retry-after")),
            )
        if response.status_code != 200:
            raise SearchError(f"SearXNG answered HTTP {response.status_code}")
        try:
            items = response.json().get("results", [])
        except ValueError as exc:
            raise SearchError("SearXNG sent something that is not JSON") from exc
        results = []
        for item in items:
            url = item.get("url") or ""
            if url.startswith(("http://", "https://")):
                results.append(
                    SearchResult(item.get("title") or url, url, item.get("content") or "")
                )
        return results[:max_results]

    async def aclose(self) -> None:
        await self._client.aclose()


def _reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words: "connection refused", "unknown host"."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen).lower()
        if isinstance(seen, ConnectionRefusedError) or "refused" in text:
            return "connection refused"
        if isinstance(seen, socket.gaierror) or "name or service" in text:
            return "unknown host"
        seen = seen.__cause__ or seen.__context__
    return exc.__class__.__name__


class DdgsSearch:
    """Keyless metasearch through the `ddgs` package (blocking; runs on a thread)."""

    name = "ddgs"

    def __init__(self, timeout: int = 10):
        self.timeout = timeout

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        return await asyncio.to_thread(self._search, query, max_results)

    def _search(self, query: str, max_results: int) -> list[SearchResult]:
        from ddgs import DDGS
        from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

        try:
            items = DDGS(timeout=self.timeout).text(query, max_results=max_results)
        except DDGSException as exc:
            first_line = str(exc).splitlines()[0][:160] if str(exc) else exc.__class__.__name__
            transient = isinstance(exc, RatelimitException | TimeoutException)
            error = SearchUnavailable if transient else SearchError
            raise error(f"web search failed: {first_line}") from exc
        return [
            SearchResult(item.get("title") or item["href"], item["href"], item.get("body") or "")
            for item in items
            if str(item.get("href", "")).startswith(("http://", "https://"))
        ]

    async def aclose(self) -> None:
        return None


def make_search(settings: Settings) -> SearxngSearch | DdgsSearch | None:
    """The configured backend, or None when web search is off (backend none, local-only)."""
    if settings.network.local_only or settings.search.backend == "none":
        return None
    if settings.search.backend == "searxng":
        if not settings.search.searxng_url:
            raise ConfigError("search.backend is searxng but search.searxng_url is empty: set it.")
        return SearxngSearch(settings.search.searxng_url, timeout=settings.network.fetch_timeout_s)
    return DdgsSearch(timeout=int(settings.network.fetch_timeout_s))
