"""Concurrent fetching: 20 pages with different delays from a local server, through the real
executor path (Researcher -> Fetcher -> extraction -> chunking -> store), with a scripted
planner and writer so only fetching is timed.

Reports wall time against the sequential sum of the delays and against the slowest page
(target: <= 1.3x the slowest when concurrency allows all pages at once), and the same at the
default concurrency.

    .venv/bin/python bench/fetch_concurrency.py [--pages 20] [--seed 0] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.webserver / fakes

from sleuth.agent.models.catalog import ModelInfo  # noqa: E402
from sleuth.agent.research.assistant import Assistant  # noqa: E402
from sleuth.agent.research.events import PageFetched  # noqa: E402
from sleuth.agent.tools.search import SearchResult  # noqa: E402
from sleuth.store import Store  # noqa: E402
from sleuth.store.settings import NetworkSettings, load_settings  # noqa: E402
from tests.fakes import ScriptedLLM  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

SLUGS = ["lyon", "rhone", "eiffel", "plancus"]


class Server:
    """tests/webserver.py in its own process, as the web would be: its threads do not compete
    with ours for the interpreter lock."""

    def __enter__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.webserver"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.base = self.process.stdout.readline().strip()
        return self

    def url(self, path: str) -> str:
        return self.base + path

    def __exit__(self, *exc):
        self.process.stdin.close()
        self.process.wait(timeout=10)


async def one_run(server, delays_ms: list[int], concurrency: int) -> tuple[float, int]:
    folder = tempfile.mkdtemp()
    store = Store.open(Path(folder) / "bench.db")
    settings = load_settings(
        None,
        env={},
        flags={
            "search.backend": "none",
            "network.allow_private_hosts": True,
            "network.concurrency": concurrency,
            "research.max_rounds": 1,
            "research.max_pages": len(delays_ms),
            "research.pages_per_query": len(delays_ms),
        },
    )
    urls = [server.url(f"/delay/{d}/{SLUGS[i % 4]}?n={i}") for i, d in enumerate(delays_ms)]

    class Search:
        name = "bench"

        async def search(self, query, max_results):
            return [SearchResult(f"page {i}", url, "") for i, url in enumerate(urls)]

    llm = ScriptedLLM([{"subquestions": []}, "Done [1]."])
    agent = Assistant(store, llm, ModelInfo("scripted", "test"), settings, search=Search())
    fetched = 0
    first: float | None = None
    last = 0.0
    async for event in agent.ask("bench question", seed=0):
        now = time.perf_counter()
        if event.kind == "search_done":
            first = now
        if isinstance(event, PageFetched):
            fetched += 1
            last = now
    await agent.aclose()
    store.close()
    assert first is not None
    return last - first, fetched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting (median shown)")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    delays = [rng.randint(200, 1000) for _ in range(args.pages)]
    slowest, total = max(delays) / 1000, sum(delays) / 1000
    default = NetworkSettings().concurrency
    print(
        f"{args.pages} pages, delays 200-1000 ms (seed {args.seed}): sequential sum {total:.2f} s, "
        f"slowest {slowest:.2f} s"
    )
    with Server() as server:
        for concurrency in (args.pages, default):
            walls = []
            for _ in range(args.repeat):
                wall, fetched = asyncio.run(one_run(server, delays, concurrency))
                assert fetched == args.pages, f"only {fetched} pages fetched"
                walls.append(wall)
            wall = statistics.median(walls)
            print(
                f"concurrency {concurrency:>2}: wall {wall:5.2f} s (median of {args.repeat}; "
                f"{min(walls):.2f}-{max(walls):.2f}) = {wall / slowest:4.2f}x slowest, "
                f"{total / wall:4.1f}x faster than sequential"
            )
    print("target: <= 1.3x the slowest page when all pages may be fetched at once")


if __name__ == "__main__":
    main()
