"""Turning downloaded bodies and files into text: HTML through trafilatura, PDF through pypdf,
text in its declared or detected charset. For pages, in worker processes with a time limit.

`Extractor` runs `extract` in worker processes: trafilatura and pypdf work in C and in Python
that a thread cannot interrupt, and a pathological page can take a minute. A worker that
overruns the limit is killed and replaced; the page fails with one sentence; the run goes on.
"""

from __future__ import annotations

import asyncio
import io
import pickle
import re
import sys
from dataclasses import asdict, dataclass, field
from typing import BinaryIO
from urllib.parse import urljoin, urlsplit

PDF_TYPE = "application/pdf"
MAX_LINKS = 60
STARTUP_S = 60.0  # the longest a worker may take to import its extractors


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
    address: str | None = None  # the IP address it was fetched from


def extract(url: str, content_type: str, body: bytes, charset: str | None = None) -> Page:
    """Turn a downloaded body into a Page (HTML via trafilatura, PDF via pypdf, text as is).
    `charset` is the one the server declared, if any."""
    if content_type == PDF_TYPE or body[:5] == b"%PDF-":
        title, text = pdf_text(body)
        links: list[str] = []
        published = None
        content_type = PDF_TYPE
    elif content_type in ("text/html", "application/xhtml+xml"):
        title, text, published, links = html_text(body, url, charset)
    else:
        text = decode(body, charset)
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


def html_text(
    body: bytes, url: str, charset: str | None = None
) -> tuple[str, str, str | None, list[str]]:
    """Main text as Markdown, title, date and outgoing links of an HTML page."""
    import trafilatura
    from lxml import html as lxml_html

    markup = decode(body, charset or _meta_charset(body))
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
    from pypdf.errors import PyPdfError

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
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
        raise FetchError(f"corrupt PDF ({exc.__class__.__name__})") from exc
    except RecursionError:  # objects nested thousands deep: a crafted file, not a document
        raise FetchError("the PDF nests its objects too deeply to read") from None
    except MemoryError:
        raise FetchError("the PDF needs more memory to read than there is") from None
    return title, "\n\n".join(p.strip() for p in pages if p.strip())


def _meta_charset(body: bytes) -> str | None:
    """The charset an HTML document declares in its head, if any."""
    match = re.search(rb'charset=["\']?([a-z0-9_-]+)', body[:2048].lower())
    return match.group(1).decode("ascii") if match else None


def decode(data: bytes, declared: str | None = None) -> str:
    """Bytes as text: in the declared charset when there is a valid one, else UTF-8 when they
    are UTF-8, else the charset charset-normalizer finds most likely (Latin-1, Windows-1252,
    Shift JIS...), else UTF-8 with replacement characters."""
    if declared:
        try:
            return data.decode(declared, errors="replace")
        except LookupError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data[:200_000]).best()
    if best is not None and best.encoding:
        return data.decode(best.encoding, errors="replace")
    return data.decode("utf-8", errors="replace")


def _first_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:120]
    return ""


# -- worker processes --------------------------------------------------------------------------
# A worker is `python -m sleuth.agent.tools.extract`: jobs and answers go over its stdin and
# stdout as length-prefixed pickles (it is our own child). It is started with asyncio's
# subprocess support rather than multiprocessing, whose helper processes need the parent's
# real stderr.


def _serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """A worker: extract each job sent, reply with the page or the error's message."""
    import trafilatura  # noqa: F401 - warm the import before the first page arrives

    stdout.write(b"R")  # ready: the first page's clock starts now, not at the import
    stdout.flush()
    while True:
        header = stdin.read(8)
        if len(header) < 8:
            return
        job = pickle.loads(stdin.read(int.from_bytes(header, "big")))
        try:
            reply = ("page", asdict(extract(*job)))
        except FetchError as exc:
            reply = ("error", str(exc))
        except Exception as exc:  # noqa: BLE001 - one bad page must not end the worker
            reply = ("error", f"unreadable page ({exc.__class__.__name__})")
        data = pickle.dumps(reply)
        stdout.write(len(data).to_bytes(8, "big") + data)
        stdout.flush()


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process):
        self.process = process
        self.ready = False

    @classmethod
    async def start(cls) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "sleuth.agent.tools.extract",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return cls(process)

    async def run(self, job: tuple, timeout: float) -> Page:
        """The worker's page; TimeoutError when it takes longer than `timeout`."""
        assert self.process.stdin is not None and self.process.stdout is not None
        if not self.ready:  # its imports, once: not the page's time
            async with asyncio.timeout(STARTUP_S):
                await self.process.stdout.readexactly(1)
            self.ready = True
        data = pickle.dumps(job)
        self.process.stdin.write(len(data).to_bytes(8, "big") + data)
        async with asyncio.timeout(timeout):
            await self.process.stdin.drain()
            size = int.from_bytes(await self.process.stdout.readexactly(8), "big")
            kind, value = pickle.loads(await self.process.stdout.readexactly(size))
        if kind == "error":
            raise FetchError(value)
        return Page(**value)

    def kill(self) -> None:
        """Stop the worker now; its exit is reaped in the background."""
        if self.process.returncode is None:
            self.process.kill()
        asyncio.ensure_future(self.process.wait())

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


class Extractor:
    """`extract` in `workers` processes, each page within a time limit. The workers start
    together, on `warm_up` or the first page, so their start-up overlaps the downloads."""

    def __init__(self, workers: int = 2):
        self.workers = workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._idle: asyncio.Queue[_Worker] | None = None

    async def warm_up(self) -> None:
        """Start the workers now (they import the extractors while pages download)."""
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        # Workers belong to the loop that started them; a new loop starts its own.
        self._loop, self._idle = loop, asyncio.Queue()
        for worker in await asyncio.gather(*(_Worker.start() for _ in range(self.workers))):
            self._idle.put_nowait(worker)

    async def extract(
        self, url: str, content_type: str, body: bytes, charset: str | None, timeout: float
    ) -> Page:
        await self.warm_up()
        assert self._idle is not None
        worker = await self._idle.get()
        try:
            page = await worker.run((url, content_type, body, charset), timeout)
        except FetchError:
            self._idle.put_nowait(worker)
            raise
        except TimeoutError:
            await self._replace(worker)
            raise FetchError(f"reading the page took longer than {timeout:g} s") from None
        except (asyncio.IncompleteReadError, ConnectionError, pickle.UnpicklingError):
            await self._replace(worker)
            raise FetchError("the page reader crashed on this page") from None
        except BaseException:  # cancelled while it worked: it may still be busy
            worker.kill()
            self._idle.put_nowait(await _Worker.start())
            raise
        self._idle.put_nowait(worker)
        return page

    async def _replace(self, worker: _Worker) -> None:
        await worker.stop()
        assert self._idle is not None
        self._idle.put_nowait(await _Worker.start())

    async def aclose(self) -> None:
        """Stop the idle workers (a busy one is stopped by the page it is reading)."""
        while self._idle is not None and not self._idle.empty():
            await self._idle.get_nowait().stop()


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
