"""Every fetch fault in one real run: `sleuth ask` (the real model) whose web search answers with
bombs, drips, huge bodies, loops, redirects to metadata services and to a forbidden internal
server, binary content, a page that takes the extractor too long, escape sequences and a
prompt injection. The run must end on its own, read what is readable, refuse what the policy
forbids without ever connecting there, and stay under 1 GB."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.reliability.conftest import GIB, integrity, run

pytestmark = pytest.mark.slow

EXPECTED_FAILURES = {
    "/bomb/gzip-gzip": "stacked content encodings",
    "/bomb/gzip": "too large",
    "/bomb/deflate": "too large",
    "/huge": "too large",
    "/drip": "timed out",
    "/status/404": "HTTP 404",
    "/reset": "connection failed",
    "/loop/a": "redirect loop",
    "/binary": "skipped binary content",
    "/slow.html": "took longer than 3 s",
}


def test_every_fetch_fault_in_one_run(env, sleuth_home, fault_server, forbidden):
    done = run("ask", "--json", "--seed", "1", "Who founded Lyon?", env=env)
    assert done.returncode in (0, 1), done.stderr  # an answer, or none: never a crash
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert result["status"] in ("done", "no_evidence")
    assert done.max_rss < GIB, f"peak memory {done.max_rss / 2**20:.0f} MB"

    db = sqlite3.connect(sleuth_home / "data" / "sleuth.db")
    steps = [
        (kind, json.loads(data))
        for kind, data in db.execute(
            "SELECT kind, data FROM steps WHERE run_id = ? ORDER BY seq", [result["run_id"]]
        )
    ]
    failed = {d["target"]: d["error"] for k, d in steps if k == "step_failed"}
    by_path = {url.removeprefix(fault_server.base).split("?")[0]: e for url, e in failed.items()}
    for path, message in EXPECTED_FAILURES.items():
        assert message in by_path.get(path, ""), (path, by_path.get(path))
    # Redirects to metadata services (and their IPv6 disguises) and to the internal server
    # were refused at the hop, before any connection.
    refused = [e for url, e in failed.items() if "/to?url=" in url]
    assert len(refused) == 7 and all(e.startswith("refused:") for e in refused), refused
    assert sum("metadata" in e for e in refused) >= 4
    read = {d["url"].removeprefix(fault_server.base) for k, d in steps if k == "page_fetched"}
    assert {"/good.html", "/injection.html", "/escape.txt", "/latin1.txt"} <= read
    latin1 = db.execute("SELECT text FROM sources WHERE uri LIKE '%/latin1.txt'").fetchone()[0]
    assert "cité des Gaules" in latin1 and "Rhône" in latin1  # detected, not mojibake
    db.close()

    assert forbidden.seen() == []  # nothing reached the internal server, whatever pages said
    assert "\x1b" not in done.stdout + done.stderr  # escape sequences never reach the terminal
    assert integrity(sleuth_home) == "ok"
