"""Fixtures for the fault suite: the fault server and its forbidden twin, and Sleuth run as a
user runs it (a real process, a real home, a real SQLite file), with its peak memory."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.reliability import faults

SLEUTH = str(Path(sys.executable).parent / "sleuth")
GIB = 1 << 30


@dataclass
class Finished:
    returncode: int
    stdout: str
    stderr: str
    max_rss: int  # bytes, the process and the children it waited for


@pytest.fixture(scope="session")
def bombs():
    """Compress the bombs once (a few seconds) before any fetch waits on them."""
    faults.zeros(31), faults.zeros(15), faults.nested_bomb(), faults.slow_html()


@pytest.fixture
def forbidden():
    """An internal service pages point at. Nothing may ever reach it."""
    server = faults.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def fault_server(forbidden, bombs):
    server = faults.start(forbidden_base=forbidden.base)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def env(sleuth_home, fault_server):
    """Sleuth's environment: web search at the fault server, which alone may be fetched."""
    return {
        **os.environ,
        "SLEUTH_HOME": str(sleuth_home),
        "SLEUTH_SEARCH_BACKEND": "searxng",
        "SLEUTH_SEARCH_SEARXNG_URL": fault_server.base,
        "SLEUTH_SEARCH_MAX_RESULTS": "40",
        "SLEUTH_NETWORK_ALLOWED_HOSTS": fault_server.host_port,
        "SLEUTH_NETWORK_FETCH_TIMEOUT_S": "3",
        "SLEUTH_RESEARCH_PAGES_PER_QUERY": "40",
        "SLEUTH_RESEARCH_MAX_PAGES": "40",
        "SLEUTH_RESEARCH_MAX_STEPS": "200",
    }


def start(*args: str, env: dict[str, str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [SLEUTH, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        **kwargs,
    )


def run(*args: str, env: dict[str, str], timeout: float = 600) -> Finished:
    """Run `sleuth ARGS` to the end; its peak memory comes from wait4."""
    process = subprocess.Popen(
        [SLEUTH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    out, err = _communicate_without_reaping(process, timeout)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return Finished(process.returncode, out, err, usage.ru_maxrss * 1024)


def _communicate_without_reaping(process: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """Read a process's output to its end without letting subprocess reap it, so wait4 can
    still report its rusage."""
    chunks: dict[str, str] = {}

    def read(name, stream):
        chunks[name] = stream.read()

    readers = [
        threading.Thread(target=read, args=("out", process.stdout)),
        threading.Thread(target=read, args=("err", process.stderr)),
    ]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join(timeout)
    return chunks.get("out", ""), chunks.get("err", "")


def integrity(home: Path) -> str:
    conn = sqlite3.connect(home / "data" / "sleuth.db")
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
