"""A local web for benchmarks: every paragraph of a HotpotQA file as an HTML page with site
boilerplate around it and links to the pages whose titles it mentions, and a SearXNG-compatible
`/search?q=...&format=json` over them (BM25), served from 127.0.0.1 in a thread.

Sleuth reaches it the way it reaches the web: through its search backend setting
(`search.backend = searxng`) and the fetcher, with the server's host:port named in
`network.allowed_hosts` (it refuses loopback addresses otherwise).

    with LocalWeb(questions) as web:
        web.base        # http://127.0.0.1:PORT
        web.host_port   # 127.0.0.1:PORT, for SLEUTH_NETWORK_ALLOWED_HOSTS
        web.title_of    # page URL -> paragraph title
"""

from __future__ import annotations

import html
import json
import math
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

import hotpot

RESULTS = 10  # results per search page, as a search engine gives
_WORD = re.compile(r"\w+")
_STOP = frozenset(
    "a an and are as at be by for from in is it of on or the to was were what who".split()
)


def _terms(text: str) -> list[str]:
    return [w for w in (m.lower() for m in _WORD.findall(text)) if w not in _STOP]


class LocalWeb:
    """The pages and the search endpoint for a list of HotpotQA questions."""

    def __init__(self, questions: list[hotpot.Question]):
        self.pages: dict[str, tuple[str, str]] = {}  # slug -> (title, text)
        for question in questions:
            for title, sentences in question.context:
                slug = hotpot.slug(title)
                if slug in self.pages and self.pages[slug][0] != title:
                    slug += "-" + str(len(self.pages))
                self.pages.setdefault(slug, (title, "".join(sentences).strip()))
        self.slug_of = {title: slug for slug, (title, _) in self.pages.items()}
        self._index()
        self.server: ThreadingHTTPServer | None = None

    # -- search ------------------------------------------------------------------------------

    def _index(self) -> None:
        self.docs = {slug: Counter(_terms(f"{t} {t} {x}")) for slug, (t, x) in self.pages.items()}
        self.lengths = {slug: sum(c.values()) for slug, c in self.docs.items()}
        self.average = sum(self.lengths.values()) / max(len(self.lengths), 1)
        frequency: Counter[str] = Counter()
        for counts in self.docs.values():
            frequency.update(counts.keys())
        n = len(self.docs)
        self.idf = {w: math.log(1 + (n - f + 0.5) / (f + 0.5)) for w, f in frequency.items()}

    def search(self, query: str) -> list[str]:
        """The best pages for `query` by BM25 (k1 1.2, b 0.75), best first."""
        terms = set(_terms(query))
        scores = {}
        for slug, counts in self.docs.items():
            score = 0.0
            for term in terms & counts.keys():
                tf = counts[term]
                norm = tf + 1.2 * (1 - 0.75 + 0.75 * self.lengths[slug] / self.average)
                score += self.idf[term] * tf * 2.2 / norm
            if score > 0:
                scores[slug] = score
        return sorted(scores, key=lambda s: -scores[s])[:RESULTS]

    # -- pages -------------------------------------------------------------------------------

    def page(self, slug: str) -> str:
        """A paragraph as a site's article page: navigation, a cookie banner, the article with
        links to the pages whose titles it names, related links, a footer."""
        title, text = self.pages[slug]
        body = html.escape(text)
        for other, other_slug in sorted(self.slug_of.items(), key=lambda kv: -len(kv[0])):
            if other_slug == slug or len(other) < 4:
                continue
            escaped = html.escape(other)
            if escaped in body:
                link = f'<a href="/wiki/{quote(other_slug)}">{escaped}</a>'
                body = body.replace(escaped, link, 1)
        related = "".join(
            f'<li><a href="/wiki/{quote(s)}">{html.escape(self.pages[s][0])}</a></li>'
            for s in self.search(title)[1:4]
        )
        return (
            f"<!doctype html><html><head><title>{html.escape(title)} - Localpedia</title>"
            '<meta charset="utf-8"></head><body>'
            '<header><a href="/">Localpedia</a> <form action="/search"><input name="q"></form>'
            "</header><nav><ul><li><a href='/'>Main page</a></li><li><a href='/random'>Random"
            "</a></li><li><a href='/help'>Help</a></li></ul></nav>"
            '<div class="cookie">We use cookies to improve this site. <button>OK</button></div>'
            f"<main><article><h1>{html.escape(title)}</h1><p>{body}</p></article>"
            f"<aside><h2>Related</h2><ul>{related}</ul></aside></main>"
            "<footer>Text is available under CC BY-SA 4.0. Privacy policy. About Localpedia."
            "</footer></body></html>"
        )

    # -- serving -----------------------------------------------------------------------------

    def __enter__(self) -> LocalWeb:
        web = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                if parts.path == "/search":
                    results = [
                        {
                            "url": f"{web.base}/wiki/{quote(slug)}",
                            "title": web.pages[slug][0],
                            "content": web.pages[slug][1][:200],
                        }
                        for slug in web.search(query.get("q", [""])[0])
                    ]
                    return self._send(200, json.dumps({"results": results}), "application/json")
                slug = parts.path.removeprefix("/wiki/")
                if parts.path.startswith("/wiki/") and slug in web.pages:
                    return self._send(200, web.page(slug), "text/html; charset=utf-8")
                return self._send(404, "<html><body>Not found</body></html>", "text/html")

            def _send(self, status: int, text: str, kind: str) -> None:
                data = text.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def host_port(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def base(self) -> str:
        return f"http://{self.host_port}"

    @property
    def title_of(self) -> dict[str, str]:
        return {f"{self.base}/wiki/{quote(slug)}": t for slug, (t, _) in self.pages.items()}
