"""The Research screen under a fast token stream, and the app's time to first frame.

A scripted model streams --tokens tokens as fast as it can. First without the UI (the raw
rate of the stream through the research loop), then through the Research screen running
headless: the rate at which the screen takes tokens in (MarkdownStream coalesces them into
Markdown updates). The UI must never be what slows a run: its rate should exceed the stream
and, by far, the real model (~100-126 tok/s on 2 cores). Time to first frame is measured in
a fresh process, from interpreter start to the first rendered frame (model still loading).

    .venv/bin/python bench/tui_stream.py [--tokens 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.fakes

from sleuth.agent.models.catalog import ModelInfo  # noqa: E402
from sleuth.agent.research.assistant import Assistant  # noqa: E402
from sleuth.agent.research.events import AnswerDone, Token  # noqa: E402
from sleuth.agent.tools.library import index_paths  # noqa: E402
from sleuth.store import Dirs, Store  # noqa: E402
from sleuth.store.settings import load_settings  # noqa: E402
from tests.fakes import ScriptedLLM  # noqa: E402

PLAN = {"subquestions": []}
FIRST_FRAME = """
import time
started = time.perf_counter()
import asyncio, sys, tempfile
from pathlib import Path
from sleuth.store.settings import load_settings
from sleuth.store import Dirs, Store
from sleuth.tui.app import build_app

def never_loads(settings, dirs, store):
    time.sleep(60)

async def main():
    root = Path(tempfile.mkdtemp())
    dirs = Dirs(root / "d", root / "c", root / "k")
    store = Store.open(dirs.database)
    app = build_app(load_settings(None, env={}), dirs, store, model_loader=never_loads)
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.pause()
        print(time.perf_counter() - started, flush=True)
        app.exit()

asyncio.run(main())
"""


def setup(tmp: Path, tokens: int):
    notes = tmp / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# Notes\n\nSome text to cite.")
    dirs = Dirs(tmp / "d", tmp / "c", tmp / "k")
    store = Store.open(dirs.database)
    index_paths(store, [notes])
    settings = load_settings(
        None, env={}, flags={"search.backend": "none", "research.max_rounds": 1}
    )
    text = " ".join(
        f"word{i % 97} [1]." if i % 25 == 24 else f"word{i % 97}" for i in range(tokens)
    )
    return store, settings, dirs, text


async def raw_rate(tokens: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store, settings, dirs, text = setup(Path(tmp), tokens)
        agent = Assistant(store, ScriptedLLM([PLAN, text]), ModelInfo("s", "test"), settings)
        first = last = None
        count = 0
        async for event in agent.ask("question"):
            if isinstance(event, Token):
                now = time.perf_counter()
                first = first or now
                last = now
                count += 1
        return count / (last - first)


async def ui_rate(tokens: int) -> tuple[float, int]:
    from sleuth.tui.app import build_app
    from sleuth.tui.screens.research import ResearchScreen

    with tempfile.TemporaryDirectory() as tmp:
        store, settings, dirs, text = setup(Path(tmp), tokens)
        llm = ScriptedLLM([PLAN, text])
        app = build_app(
            settings, dirs, store, model_loader=lambda s, d, st: (llm, ModelInfo("s", "test"))
        )
        timings = {"first": None, "last": None, "count": 0}
        original = ResearchScreen.handle

        async def timed(self, event):
            await original(self, event)
            if isinstance(event, Token):
                now = time.perf_counter()
                timings["first"] = timings["first"] or now
                timings["last"] = now
                timings["count"] += 1
            elif isinstance(event, AnswerDone):
                timings["done"] = time.perf_counter()

        ResearchScreen.handle = timed
        try:
            async with app.run_test(size=(140, 40)) as pilot:
                while app.llm is None:
                    await pilot.pause(0.01)
                app.screen.query_one("#question").focus()
                await pilot.press(*"question", "enter")
                while "done" not in timings:
                    await pilot.pause(0.05)
                await pilot.pause()
                shown = app.screen.query_one("#answer").markdown.source
        finally:
            ResearchScreen.handle = original
        seconds = timings["last"] - timings["first"]
        return timings["count"] / seconds, len(shown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=5000)
    args = parser.parse_args()
    raw = asyncio.run(raw_rate(args.tokens))
    ui, shown = asyncio.run(ui_rate(args.tokens))
    frames = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, "-c", FIRST_FRAME],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
        )
        frames.append(float(out.stdout.strip().splitlines()[-1]))
    print(f"{args.tokens} tokens streamed by a scripted model through the research loop:")
    print(f"  raw stream (no UI)          : {raw:9.0f} tok/s")
    print(
        f"  Research screen (headless)  : {ui:9.0f} tok/s  = {ui / raw:.2f}x the raw stream, "
        f"{ui / 126:.0f}x the real model's decode rate (~126 tok/s)"
    )
    print(f"  final answer rendered: {shown} characters of Markdown")
    print(
        f"time to first frame (fresh process, model still loading): "
        f"{min(frames):.2f} s best, {max(frames):.2f} s worst of 3 (target < 1.5 s)"
    )


if __name__ == "__main__":
    main()
