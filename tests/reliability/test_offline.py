"""Offline, Sleuth says so fast: with the search backend unreachable (a SearXNG at a closed
port), each query is tried once more at most, the model is not asked to reflect on nothing,
and the run ends no_evidence in seconds, with advice that fits the backend in use."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.reliability.conftest import run


def closed_port() -> int:
    with socket.socket() as probe:  # a port nothing listens on: connections are refused
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_an_unreachable_search_backend_ends_the_run_in_seconds(env):
    offline = {**env, "SLEUTH_SEARCH_SEARXNG_URL": f"http://127.0.0.1:{closed_port()}"}
    started = time.monotonic()
    done = run("ask", "--json", "Who founded the city of Lyon?", env=offline, timeout=120)
    elapsed = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "no_evidence"
    assert result["timings"]["llm_calls"] == 1  # the plan; no reflection on zero evidence
    assert "cannot be reached (connection refused)" in result["error"]
    assert "start the SearXNG instance" in result["error"]
    assert "search.backend=searxng" not in result["error"]  # that is the backend in use
    retried = [line for line in done.stderr.splitlines() if "retry" in line]
    assert len(retried) <= 4  # the first round's searches, once each at most
    assert elapsed < 20, elapsed  # it took 94 s; ~10 s on 2 cores
