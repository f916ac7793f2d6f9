"""Fetching pages safely.

A page is data, never instructions. The fetcher follows only http(s); resolves the host itself
and checks every address against the policy (agent/tools/addresses.py: metadata, link-local and
other special-purpose addresses always refused, private ones unless allowed); then connects to
the address it checked, so a DNS answer cannot change between the check and the connection.
Every redirect hop is checked the same way. Size (after decompression, as it streams), time
and redirects are capped; binary types are skipped; text is extracted in worker processes with
a time limit (agent/tools/extract.py). Failures raise FetchError, which the research loop records as
a failed step and moves past.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import zlib
from urllib.parse import urljoin, urlsplit

import httpx

from sleuth.store.settings import NetworkSettings

from .addresses import address_problem
from .extract import PDF_TYPE, Extractor, FetchError, Page

USER_AGENT = "Sleuth/0.1 (research assistant; +https://github.com/sleuth)"
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/x-rst")

__all__ = ["Fetcher", "FetchError", "Page"]


class Fetcher:
    """Fetches http(s) URLs under the network settings' limits."""

    def __init__(self, network: NetworkSettings, *, user_agent: str = USER_AGENT):
        self.network = network
        self.allowed_hosts = allowed_hosts(network.allowed_hosts)
        self.extractor = Extractor()
        # No keep-alive: requests go to pinned IP addresses, and a pooled TLS connection must
        # never carry a request for another host name that happens to share the address.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(
                network.fetch_timeout_s, connect=min(10.0, network.fetch_timeout_s)
            ),
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={
                "User-Agent": user_agent,
                "Accept": "text/html,application/pdf,text/*;q=0.8",
                "Accept-Encoding": "gzip, deflate",  # the ones decoded here, within the cap
            },
        )

    async def aclose(self) -> None:
        await self._client.aclose()
        await self.extractor.aclose()

    def refusal(self, url: str, address: str) -> str | None:
        """Why the policy in force would not fetch `url` from `address` (None: it would).
        The page cache asks this before serving a page fetched under another policy."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        allow = self.network.allow_private_hosts or _allowlisted(
            self.allowed_hosts, parts.hostname or "", port
        )
        problem = address_problem(ipaddress.ip_address(address), allow)
        return f"refused: {parts.hostname} is {problem}" if problem else None

    async def fetch(self, url: str) -> Page:
        """Fetch and read one URL. Raises FetchError for anything that stops it."""
        if self.network.local_only:
            raise FetchError("local-only mode: nothing is fetched from the network")
        started = time.perf_counter()
        warming = asyncio.ensure_future(self.extractor.warm_up())  # alongside the download
        try:
            async with asyncio.timeout(self.network.fetch_timeout_s):
                final_url, content_type, charset, body, address = await self._download(url)
        except TimeoutError as exc:
            raise FetchError(f"timed out after {self.network.fetch_timeout_s:g} s") from exc
        finally:
            await warming
        page = await self.extractor.extract(
            final_url, content_type, body, charset, timeout=self.network.fetch_timeout_s
        )
        page.seconds = time.perf_counter() - started
        page.address = address
        return page

    async def _download(self, url: str) -> tuple[str, str, str | None, bytes, str]:
        seen: set[str] = set()
        current = url
        for _ in range(self.network.max_redirects + 1):
            if current in seen:
                raise FetchError("redirect loop")
            seen.add(current)
            request, address = await self._pinned_request(current)
            try:
                response = await self._client.send(request, stream=True)
            except httpx.TimeoutException as exc:
                raise FetchError(f"timed out after {self.network.fetch_timeout_s:g} s") from exc
            except httpx.HTTPError as exc:
                raise FetchError(f"connection failed ({exc.__class__.__name__})") from exc
            try:
                if response.is_redirect:
                    location = response.headers.get("location")
                    if not location:
                        raise FetchError(f"HTTP {response.status_code} without a Location")
                    current = urljoin(current, location)
                    continue
                if response.status_code >= 400:
                    raise FetchError(f"HTTP {response.status_code}")
                content_type, charset = _content_type(response.headers.get("content-type", ""))
                if content_type and not _readable(content_type):
                    raise FetchError(f"skipped binary content ({content_type})")
                body = await self._read_capped(response)
                if not content_type:
                    content_type = _sniff(body)
                    if not _readable(content_type):
                        raise FetchError("skipped binary content (unknown type)")
                return current, content_type, charset, body, address
            finally:
                await response.aclose()
        raise FetchError(f"more than {self.network.max_redirects} redirects")

    async def _pinned_request(self, url: str) -> tuple[httpx.Request, str]:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise FetchError("malformed URL") from exc
        if parts.scheme not in ("http", "https"):
            raise FetchError(
                f"refused: only http(s) URLs are fetched, not {parts.scheme or 'a bare path'}"
            )
        host = parts.hostname
        if not host:
            raise FetchError("malformed URL: no host")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = await self._checked_address(host, port)
        request = self._client.build_request("GET", url)
        pinned = request.url.copy_with(host=address)
        extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
        return httpx.Request(
            "GET", pinned, headers=request.headers, extensions={**request.extensions, **extensions}
        ), address

    async def _checked_address(self, host: str, port: int) -> str:
        try:
            literal = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            candidates = [literal]
        else:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
            except socket.gaierror as exc:
                raise FetchError(f"could not resolve {host}") from exc
            candidates = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        allow = self.network.allow_private_hosts or _allowlisted(self.allowed_hosts, host, port)
        for ip in candidates:  # every answer must pass: a mixed answer is a rebinding trick
            problem = address_problem(ip, allow)
            if problem:
                raise FetchError(f"refused: {host} is {problem}")
        return str(candidates[0])

    async def _read_capped(self, response: httpx.Response) -> bytes:
        """The body, decoded, at most max_page_bytes of it. Decompression is ours and bounded
        as it streams: a few kB of gzip that would inflate to a GB stops at the cap, using no
        more memory than the cap. More than one content-encoding layer is refused."""
        limit = self.network.max_page_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchError(f"too large ({int(declared) / 1e6:.1f} MB > {limit / 1e6:.1f} MB)")
        decoder = _decoder(response.headers.get("content-encoding", ""))
        chunks, total, raw_total = [], 0, 0
        async for raw in response.aiter_raw():
            raw_total += len(raw)
            if raw_total > limit:
                raise FetchError(f"too large (over {limit / 1e6:.1f} MB)")
            chunk = decoder.feed(raw, limit - total) if decoder else raw
            total += len(chunk)
            if total > limit:
                raise FetchError(f"too large (over {limit / 1e6:.1f} MB)")
            chunks.append(chunk)
        return b"".join(chunks)


class _Inflater:
    """gzip or deflate, decompressed in bounded steps."""

    def __init__(self, encoding: str):
        # gzip: its header; deflate: zlib-wrapped or raw, which servers send both of.
        self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else 0)
        self._raw_fallback = encoding == "deflate"

    def feed(self, data: bytes, room: int) -> bytes:
        """Decompressed bytes of `data`, stopping once more than `room` would come out."""
        try:
            out = self._zlib.decompress(data, room + 1)
        except zlib.error:
            if not self._raw_fallback:
                raise FetchError("corrupt compressed body") from None
            self._zlib, self._raw_fallback = zlib.decompressobj(-zlib.MAX_WBITS), False
            return self.feed(data, room)
        self._raw_fallback = False
        if len(out) > room or self._zlib.unconsumed_tail:
            return out + b"\0"  # more than fits: the caller reports the page too large
        return out


def _decoder(header: str) -> _Inflater | None:
    encodings = [e.strip().lower() for e in header.split(",") if e.strip()]
    encodings = [e for e in encodings if e != "identity"]
    if not encodings:
        return None
    if len(encodings) > 1:
        raise FetchError(f"refused: stacked content encodings ({', '.join(encodings)})")
    if encodings[0] not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(f"refused: unsupported content encoding ({encodings[0]})")
    return _Inflater("gzip" if encodings[0] in ("gzip", "x-gzip") else "deflate")


def _content_type(header: str) -> tuple[str, str | None]:
    """The media type of a Content-Type header, and its charset if declared."""
    media, _, params = header.partition(";")
    charset = None
    for param in params.split(";"):
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip('"').lower()
    return media.strip().lower(), charset


def _readable(content_type: str) -> bool:
    return (
        content_type in TEXT_TYPES or content_type == PDF_TYPE or content_type.startswith("text/")
    )


def _sniff(body: bytes) -> str:
    head = body[:1024].lstrip().lower()
    if head.startswith(b"%pdf"):
        return PDF_TYPE
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "text/html"
    if b"\x00" in body[:4096]:
        return "application/octet-stream"
    return "text/plain"


def allowed_hosts(setting: str) -> frozenset[str]:
    """`network.allowed_hosts` as a set of "host" and "host:port" entries, lower-cased."""
    return frozenset(h.strip().lower() for h in setting.split(",") if h.strip())


def _allowlisted(allowed: frozenset[str], host: str, port: int) -> bool:
    host = host.lower()
    return host in allowed or f"{host}:{port}" in allowed
