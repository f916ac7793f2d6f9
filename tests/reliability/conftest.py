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
    max_rss: int  # bytes: the peak of the process, or of any process it started


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
    """Run `sleuth ARGS` to the end, watching its peak memory."""
    process = subprocess.Popen(
        [SLEUTH, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    watcher = PeakMemory(process.pid)
    out, err = process.communicate(timeout=timeout)
    return Finished(process.returncode, out, err, watcher.stop())


class PeakMemory:
    """The peak resident memory of a process and of each process it starts (page-reader
    workers), from /proc's high-water marks, read until the process ends. (The kernel's
    rusage will not do: a child's maxrss starts at its parent's size when it is forked, and
    the parent here is a test process holding torch.)"""

    def __init__(self, pid: int):
        self.pid, self.peak = pid, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.wait(0.02):
            for pid in [self.pid, *_descendants(self.pid)]:
                self.peak = max(self.peak, _high_water(pid))

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak


def _high_water(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found += [int(child), *_descendants(int(child))]
    except OSError:
        pass
    return found


def integrity(home: Path) -> str:
    conn = sqlite3.connect(home / "data" / "sleuth.db")
    try:
        return conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
