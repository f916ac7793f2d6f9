"""Fetching from a real local HTTP server: pages, PDFs, failures, limits and refusals."""

from __future__ import annotations

import dataclasses
import ipaddress
import re

import pytest

from sleuth.agent.tools.fetch import Fetcher, FetchError, address_problem
from sleuth.store.settings import NetworkSettings


async def fetch(network: NetworkSettings, url: str):
    fetcher = Fetcher(network)
    try:
        return await fetcher.fetch(url)
    finally:
        await fetcher.aclose()


async def test_article_becomes_text_with_title_date_and_links(web, network):
    page = await fetch(network, web.url("/articles/lyon.html"))
    assert page.title == "Lyon, a city on the Rhône"
    assert "Lucius Munatius Plancus" in page.text
    assert "Cookie notice" not in page.text  # boilerplate dropped
    assert page.published == "2024-03-01"
    assert web.url("/articles/rhone.html") in page.links
    assert page.content_type == "text/html"


async def test_pdf_text_and_title(web, network):
    page = await fetch(network, web.url("/docs/saone-report.pdf"))
    assert page.title == "Saone river report"
    assert "joins the Rhone at Lyon" in page.text
    assert page.content_type == "application/pdf"


async def test_plain_text(web, network):
    page = await fetch(network, web.url("/notes.txt"))
    assert page.text.startswith("Plain notes")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/status/404", "HTTP 404"),
        ("/status/500", "HTTP 500"),
        ("/loop/a", "redirect loop"),
        ("/huge", "too large"),
        ("/huge-stream", "too large"),
        ("/image.png", "skipped binary content (image/png)"),
        ("/unlabelled", "skipped binary content"),
        ("/empty.html", "no readable text"),
        ("/docs/corrupt.pdf", "corrupt PDF"),
        ("/reset", "connection failed"),
    ],
)
async def test_failures_are_short_specific_errors(web, network, path, message):
    with pytest.raises(FetchError, match=re.escape(message)):
        await fetch(network, web.url(path))


async def test_slow_page_times_out(web, network):
    web.delays["/articles/eiffel.html"] = 2.0
    quick = dataclasses.replace(network, fetch_timeout_s=0.5)
    with pytest.raises(FetchError, match="timed out after 0.5 s"):
        await fetch(quick, web.url("/articles/eiffel.html"))


async def test_redirect_limit(web, network):
    hops = web.url("/redirect?to=" + web.url("/redirect?to=" + web.url("/articles/lyon.html")))
    strict = dataclasses.replace(network, max_redirects=1)
    with pytest.raises(FetchError, match="more than 1 redirects"):
        await fetch(strict, hops)
    page = await fetch(network, hops)
    assert page.url == web.url("/articles/lyon.html")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.org/x", "gopher://x"])
async def test_only_http_is_fetched(network, url):
    with pytest.raises(FetchError, match="only http"):
        await fetch(network, url)


async def test_loopback_is_refused_by_default_even_by_name(web):
    default = NetworkSettings()
    for url in (web.url("/articles/lyon.html"), web.url("/").replace("127.0.0.1", "localhost")):
        with pytest.raises(FetchError, match="private or loopback"):
            await fetch(default, url)
    assert web.seen() == []  # refused before connecting


async def test_link_local_is_refused_even_when_private_hosts_are_allowed(web, network):
    with pytest.raises(FetchError, match="metadata"):
        await fetch(network, "http://169.254.169.254/latest/meta-data/")
    with pytest.raises(FetchError, match="link-local"):
        await fetch(network, "http://169.254.1.2/")
    # ... and a redirect cannot smuggle the request there either.
    with pytest.raises(FetchError, match="metadata"):
        await fetch(network, web.url("/redirect?to=http://169.254.169.254/latest/meta-data/"))


async def test_redirect_to_another_scheme_is_refused(web, network):
    with pytest.raises(FetchError, match="only http"):
        await fetch(network, web.url("/redirect?to=file:///etc/passwd"))


async def test_local_only_fetches_nothing(web, network):
    with pytest.raises(FetchError, match="local-only"):
        await fetch(dataclasses.replace(network, local_only=True), web.url("/articles/lyon.html"))
    assert web.seen() == []


@pytest.mark.parametrize(
    ("address", "allowed_private", "refused"),
    [
        ("8.8.8.8", False, False),
        ("10.0.0.1", False, True),
        ("10.0.0.1", True, False),
        ("127.0.0.1", False, True),
        ("169.254.169.254", True, True),
        ("fe80::1", True, True),
        ("::ffff:169.254.169.254", True, True),
        ("::ffff:127.0.0.1", False, True),
        ("100.64.0.1", False, True),  # carrier-grade NAT is not global
        ("100.64.0.1", True, False),  # ... but a private network (tailnets live there)
        ("0.0.0.0", True, True),
        ("224.0.0.1", True, True),
        # Metadata services are refused even with private hosts allowed.
        ("fd00:ec2::254", True, True),
        ("100.100.100.200", True, True),
        ("192.0.0.192", True, True),
        ("fd00::1", True, False),  # another unique-local address is just private
        # Special-purpose ranges, and IPv6 forms of refused IPv4 addresses.
        ("192.0.0.192", False, True),
        ("192.0.2.1", True, True),
        ("198.18.0.1", True, True),
        ("2002:a9fe:a9fe::1", True, True),  # 6to4 of 169.254.169.254
        ("2002:0a00:0001::1", False, True),  # 6to4 of 10.0.0.1
        ("2002:0808:0808::1", False, False),  # 6to4 of 8.8.8.8
        ("64:ff9b::a9fe:a9fe", True, True),  # NAT64 of 169.254.169.254
        ("64:ff9b::808:808", False, False),  # NAT64 of 8.8.8.8
        ("2001:db8::1", True, True),
        ("2606:4700:4700::1111", False, False),
    ],
)
def test_address_rules(address, allowed_private, refused):
    problem = address_problem(ipaddress.ip_address(address), allowed_private)
    assert (problem is not None) == refused
