"""Fetching pages safely, and turning them into text.

A page is data, never instructions. The fetcher follows only http(s); resolves the host itself
and refuses private, loopback and reserved addresses (unless `allow_private_hosts`) and
link-local ones always (cloud metadata services live there); then connects to the address it
checked, so a DNS answer cannot change between the check and the connection. Every redirect
hop is checked the same way. Size, time and redirects are capped; binary types are skipped.
Failures raise FetchError, which the research loop records as a failed step and moves past.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import re
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import httpx

from sleuth.store.settings import NetworkSettings

USER_AGENT = "Sleuth/0.1 (research assistant; +https://github.com/sleuth)"
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain", "text/markdown", "text/x-rst")
PDF_TYPE = "application/pdf"
MAX_LINKS = 60


class FetchError(Exception):
    """A page that could not be fetched or read; the message is short and specific."""


@dataclass
class Page:
    """A fetched page as text."""

    url: str  # after redirects
    title: str
    text: str
    content_type: str
    size: int
    published: str | None = None
    links: list[str] = field(default_factory=list)
    cached: bool = False
    seconds: float = 0.0


def address_problem(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, allow_private: bool):
    """Why an address may not be fetched, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_link_local:
        return "a link-local address (where cloud metadata services live)"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return "a reserved address"
    if not allow_private and (ip.is_loopback or ip.is_private or not ip.is_global):
        return "a private or loopback address (set network.allow_private_hosts to allow it)"
    return None


class Fetcher:
    """Fetches http(s) URLs under the network settings' limits."""

    def __init__(self, network: NetworkSettings, *, user_agent: str = USER_AGENT):
        self.network = network
        # No keep-alive: requests go to pinned IP addresses, and a pooled TLS connection must
        # never carry a request for another host name that happens to share the address.
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=httpx.Timeout(
                network.fetch_timeout_s, connect=min(10.0, network.fetch_timeout_s)
            ),
            limits=httpx.Limits(max_keepalive_connections=0),
            headers={"User-Agent": user_agent, "Accept": "text/html,application/pdf,text/*;q=0.8"},
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def fetch(self, url: str) -> Page:
        """Fetch and read one URL. Raises FetchError for anything that stops it."""
        if self.network.local_only:
            raise FetchError("local-only mode: nothing is fetched from the network")
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.network.fetch_timeout_s):
                final_url, content_type, body = await self._download(url)
        except TimeoutError as exc:
            raise FetchError(f"timed out after {self.network.fetch_timeout_s:g} s") from exc
        page = await asyncio.to_thread(extract, final_url, content_type, body)
        page.seconds = time.perf_counter() - started
        return page

    async def _download(self, url: str) -> tuple[str, str, bytes]:
        seen: set[str] = set()
        current = url
        for _ in range(self.network.max_redirects + 1):
            if current in seen:
                raise FetchError("redirect loop")
            seen.add(current)
            request = await self._pinned_request(current)
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
                content_type = _content_type(response.headers.get("content-type", ""))
                if content_type and not _readable(content_type):
                    raise FetchError(f"skipped binary content ({content_type})")
                body = await self._read_capped(response)
                if not content_type:
                    content_type = _sniff(body)
                    if not _readable(content_type):
                        raise FetchError("skipped binary content (unknown type)")
                return current, content_type, body
            finally:
                await response.aclose()
        raise FetchError(f"more than {self.network.max_redirects} redirects")

    async def _pinned_request(self, url: str) -> httpx.Request:
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
        )

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
        for ip in candidates:  # every answer must pass: a mixed answer is a rebinding trick
            problem = address_problem(ip, self.network.allow_private_hosts)
            if problem:
                raise FetchError(f"refused: {host} is {problem}")
        return str(candidates[0])

    async def _read_capped(self, response: httpx.Response) -> bytes:
        limit = self.network.max_page_bytes
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            raise FetchError(f"too large ({int(declared) / 1e6:.1f} MB > {limit / 1e6:.1f} MB)")
        chunks, total = [], 0
        async for chunk in response.aiter_bytes():
            total += len(chunk)
            if total > limit:
                raise FetchError(f"too large (over {limit / 1e6:.1f} MB)")
            chunks.append(chunk)
        return b"".join(chunks)


def _content_type(header: str) -> str:
    return header.split(";")[0].strip().lower()


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


def extract(url: str, content_type: str, body: bytes) -> Page:
    """Turn a downloaded body into a Page (HTML via trafilatura, PDF via pypdf, text as is)."""
    if content_type == PDF_TYPE or body[:5] == b"%PDF-":
        title, text = pdf_text(body)
        links: list[str] = []
        published = None
        content_type = PDF_TYPE
    elif content_type in ("text/html", "application/xhtml+xml"):
        title, text, published, links = html_text(body, url)
    else:
        text = body.decode(_charset_guess(body), errors="replace")
        if "\x00" in text:
            raise FetchError("skipped binary content")
        title, published, links = "", None, []
    text = text.strip()
    if not text:
        raise FetchError("no readable text on the page")
    if not title:
        title = _first_line(text) or urlsplit(url).path.rsplit("/", 1)[-1] or url
    return Page(
        url=url,
        title=title[:300],
        text=text,
        content_type=content_type,
        size=len(body),
        published=published,
        links=links,
    )


def html_text(body: bytes, url: str) -> tuple[str, str, str | None, list[str]]:
    """Main text as Markdown, title, date and outgoing links of an HTML page."""
    import trafilatura
    from lxml import html as lxml_html

    markup = body.decode(_charset_guess(body), errors="replace")
    text = trafilatura.extract(
        markup, url=url, output_format="markdown", include_comments=False, favor_recall=True
    )
    metadata = trafilatura.extract_metadata(markup, default_url=url)
    title = (metadata.title if metadata and metadata.title else "") or ""
    published = metadata.date if metadata and metadata.date else None
    links: list[str] = []
    try:
        tree = lxml_html.fromstring(markup)
        if not title:
            title = (tree.findtext(".//title") or "").strip()
        if not text:
            # trafilatura declines pages it thinks are not articles; keep their visible text.
            body_element = tree.find("body")
            if body_element is not None:
                for bad in body_element.xpath(".//script|.//style|.//noscript"):
                    bad.drop_tree()
                text = re.sub(r"\n\s*\n+", "\n\n", body_element.text_content())
        # Links worth following live in the page's content, not its navigation chrome.
        container = next(
            (found for xpath in ("//article", "//main", "//body") if (found := tree.xpath(xpath))),
            [tree],
        )[0]
        chrome = ("ancestor::nav", "ancestor::header", "ancestor::footer", "ancestor::aside")
        hrefs = container.xpath(".//a[not(" + " or ".join(chrome) + ")]/@href")
        for href in hrefs:
            absolute = urljoin(url, str(href)).split("#")[0]
            if absolute.startswith(("http://", "https://")) and absolute not in links:
                links.append(absolute)
            if len(links) >= MAX_LINKS:
                break
    except (ValueError, lxml_html.etree.ParserError):
        pass
    return title, text or "", published, links


def pdf_text(body: bytes) -> tuple[str, str]:
    """Title and text of a PDF. Raises FetchError for a corrupt or encrypted file."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(body))
        if reader.is_encrypted:
            raise FetchError("the PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = ""
        if reader.metadata is not None and reader.metadata.title:
            title = str(reader.metadata.title)
    except FetchError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise FetchError(f"corrupt PDF ({exc.__class__.__name__})") from exc
    return title, "\n\n".join(p.strip() for p in pages if p.strip())


def _charset_guess(body: bytes) -> str:
    head = body[:2048].lower()
    match = re.search(rb'charset=["\']?([a-z0-9_-]+)', head)
    if match:
        name = match.group(1).decode("ascii")
        try:
            "".encode(name)
            return name
        except LookupError:
            pass
    return "utf-8"


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120]
    return ""
