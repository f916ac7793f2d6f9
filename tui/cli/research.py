"""`sleuth ask`, `sleuth index` and `sleuth library`: research and the library on the command
line.

Progress goes to stderr; the answer and its sources to stdout (or one JSON object with --json).
Ctrl-C cancels cleanly: the run is recorded as cancelled with everything it found.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from sleuth.agent.errors import AgentError
from sleuth.agent.models.catalog import open_llm
from sleuth.agent.research.assistant import Assistant
from sleuth.agent.research.events import (
    AnswerDone,
    AnswerRejected,
    Event,
    RunFinished,
    RunStarted,
    Token,
)
from sleuth.agent.research.loop import check_question
from sleuth.agent.tools.library import FileResult, IndexReport, index_paths
from sleuth.agent.tools.search import make_search
from sleuth.store import Dirs, Store
from sleuth.store.ids import row_id, seed
from sleuth.store.settings import Settings

from ..render import describe, index_summary, one_line, plain, unsure_note
from .context import EXIT_INTERRUPTED, Context, UsageError
from .progress import progress

# Ctrl-C, `kill`, and a closed terminal all stop a run the same way: cancelled, everything it
# found kept. A second one stops waiting.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def add_commands(command) -> None:
    p = command("ask", cmd_ask, "Research a question and print a cited answer.", True)
    p.add_argument("question", nargs="+", help="the question (quote it, or not)")
    p.add_argument("--session", type=row_id, metavar="ID", help="ask a follow-up in this session")
    p.add_argument("--no-web", action="store_true", help="do not search or fetch the web")
    p.add_argument(
        "--library",
        action="append",
        default=[],
        metavar="PATH",
        help="index PATH (incrementally) and search only it in the library; repeatable",
    )
    p.add_argument(
        "--budget",
        metavar="K=N,...",
        help="limits for this run: rounds, steps, pages, seconds, tokens, evidence",
    )
    p.add_argument("--local-only", action="store_true", help="send nothing off this machine")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=seed, help="sampling seed (for reproducible runs)")

    p = command("index", cmd_index, "Index files and folders into the library (incremental).")
    p.add_argument("paths", nargs="+", metavar="PATH")

    p = command("library", cmd_library, "List what is indexed, or remove a folder from it.")
    p.add_argument("--files", action="store_true", help="list every file")
    p.add_argument("--remove", metavar="PATH", help="forget an indexed folder (files untouched)")


def cmd_ask(ctx: Context) -> int:
    import asyncio

    args = ctx.args
    question = " ".join(" ".join(args.question).split())
    if not question:
        raise UsageError("Ask a question: it was empty.")
    check_question(question)  # before indexing or loading anything
    if args.session is not None:
        ctx.store.runs.session(args.session)
    library = [Path(p) for p in args.library]
    for path in library:
        if not path.expanduser().exists():
            raise UsageError(f"The library path {path} does not exist.")
    return asyncio.run(
        run_ask(
            ctx.settings,
            ctx.dirs,
            ctx.store,
            question,
            session_id=args.session,
            use_web=not args.no_web,
            library=library,
            as_json=args.json,
            seed=args.seed,
        )
    )


def cmd_index(ctx: Context) -> int:
    from sleuth.agent.tools.library import LibraryError

    try:
        report = index_with_progress(ctx.store, [Path(p) for p in ctx.args.paths])
    except LibraryError as exc:
        raise UsageError(str(exc)) from exc
    return EXIT_INTERRUPTED if report.cancelled else 0


def cmd_library(ctx: Context) -> int:
    args = ctx.args
    if args.remove:
        root = str(Path(args.remove).expanduser().resolve())
        count = ctx.store.library.remove_root(root)
        if not count:
            raise UsageError(f"{root} is not an indexed folder: `sleuth library` lists them.")
        print(f"forgot {count} file(s) under {one_line(root)} (the files themselves are untouched)")
        return 0
    roots = ctx.store.library.summary()
    if not roots:
        print("The library is empty: add files with `sleuth index PATH`.")
        return 0
    for root in roots:
        failed = f", {root.failed} failed" if root.failed else ""
        print(
            f"{one_line(root.root)}: {root.indexed} file(s) indexed{failed}, {root.chunks} chunks, "
            f"{root.bytes / 1e6:.1f} MB, last indexed {root.indexed_at[:16]}"
        )
        if args.files:
            for doc in ctx.store.library.documents(root=root.root):
                note = f"  ({doc.error})" if doc.error else ""
                print(one_line(f"  {doc.status:<8} {doc.path}{note}"))
    return 0


class Progress:
    """Prints events as short progress lines on stderr."""

    def __init__(self, err: TextIO, out: TextIO, stream_answer: bool):
        self.err, self.out = err, out
        self.stream_answer = stream_answer
        self.streamed = False

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if isinstance(event, AnswerRejected) and self.streamed:
            self.out.write("\n")  # what streamed is not the answer; the note says so
            self.streamed = False
        if isinstance(event, Token):
            if self.stream_answer:
                if not self.streamed:
                    self.out.write("\n")
                self.out.write(plain(event.text))
                self.out.flush()
                self.streamed = True
            return
        if line:
            print(line, file=self.err, flush=True)


def format_answer(answer: AnswerDone) -> str:
    """The answer, its unsupported claims, and its sources, as plain text."""
    lines = [answer.text.strip(), ""]
    unsupported = [c for c in answer.citations if not c["supported"]]
    verification = answer.verification
    if unsure := unsure_note(verification):
        head, _, rest = answer.text.strip().partition("\n")
        lines = [head, "", f"?? {unsure}", "", rest.strip(), ""] if rest else [head, "", unsure]
    if unsupported:
        lines.append("Unsupported by their cited evidence:")
        lines += [f"  ! {c['text']}" for c in unsupported]
        lines.append("")
    if verification.get("dangling_removed"):
        lines.append(
            f"({verification['dangling_removed']} citation(s) to missing evidence removed)"
        )
    if verification.get("sentences") and not verification.get("cited_sentences"):
        lines.append("(this answer cites no evidence)")
    if answer.sources:
        lines.append("Sources:")
        lines += [f"  [{s['number']}] {s['title']} — {s['uri']}" for s in answer.sources]
    lines.append(
        f"\nanswer {answer.answer_id} — rate it: "
        f"sleuth rate {answer.answer_id} --up|--down|--stars N"
    )
    return "\n".join(lines).rstrip() + "\n"


async def run_ask(
    settings: Settings,
    dirs: Dirs,
    store: Store,
    question: str,
    *,
    session_id: int | None,
    use_web: bool,
    library: list[Path],
    as_json: bool,
    seed: int | None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Research one question; returns the exit code (0 done, 1 failed, 130 cancelled)."""
    library_roots = None
    if library:
        report = index_with_progress(store, library, err)
        if report.cancelled:
            return 130
        library_roots = [str(Path(p).expanduser().resolve()) for p in library]
    web = use_web and not settings.network.local_only and settings.search.backend != "none"
    if not web and not store.library.has_documents():
        raise AgentError(
            "Nothing to search: web search is off and the library is empty. Index files with "
            "`sleuth index PATH` (or pass --library PATH), or turn web search on."
        )
    print("loading the model…", file=err, flush=True)
    llm, info = open_llm(settings, dirs, store)
    for warning in info.warnings:
        print(f"warning: {plain(warning)}", file=err)
    assistant = Assistant(
        store, llm, info, settings, search=make_search(settings) if use_web else None
    )
    progress = Progress(err, out, stream_answer=out.isatty() and not as_json)
    loop = asyncio.get_running_loop()
    cancelled_once = False

    def on_interrupt() -> None:
        nonlocal cancelled_once
        if cancelled_once:  # a second Ctrl-C: stop waiting
            raise KeyboardInterrupt
        cancelled_once = True
        print("\ncancelling… (Ctrl-C again to quit at once)", file=err, flush=True)
        assistant.cancel()

    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, on_interrupt)
    started: RunStarted | None = None
    answer: AnswerDone | None = None
    finished: RunFinished | None = None
    try:
        async for event in assistant.ask(
            question,
            session_id=session_id,
            use_web=use_web,
            library_roots=library_roots,
            seed=seed,
        ):
            progress(event)
            if isinstance(event, RunStarted):
                started = event
            elif isinstance(event, AnswerDone):
                answer = event
            elif isinstance(event, RunFinished):
                finished = event
    finally:
        for signum in STOP_SIGNALS:
            loop.remove_signal_handler(signum)
        await assistant.aclose()
    assert started is not None and finished is not None
    if as_json:
        out.write(json.dumps(_json_result(started, finished, answer), ensure_ascii=False) + "\n")
    elif answer is not None:
        text = format_answer(answer)
        if progress.streamed:  # the answer is on screen already; show what verification found
            text = "\n\n" + text.split("\n", 1)[1] if answer.text.strip() else text
        out.write(plain(text))
    return {"done": 0, "cancelled": 130}.get(finished.status, 1)


def _json_result(started: RunStarted, finished: RunFinished, answer: AnswerDone | None) -> dict:
    return {
        "status": finished.status,
        "error": finished.error,
        "question": started.question,
        "session_id": started.session_id,
        "run_id": finished.run_id,
        "answer_id": answer.answer_id if answer else None,
        "answer": answer.text if answer else None,
        "short_answer": answer.short_answer if answer else None,
        "citations": answer.citations if answer else [],
        "verification": answer.verification if answer else None,
        "confidence": (answer.verification or {}).get("confidence") if answer else None,
        "not_sure": bool((answer.verification or {}).get("not_sure")) if answer else False,
        "sources": answer.sources if answer else [],
        "timings": {
            "seconds": finished.seconds,
            "llm_calls": finished.llm_calls,
            "llm_tokens": finished.tokens,
            "pages": finished.pages,
            "steps": finished.steps,
        },
    }


def index_with_progress(store: Store, paths: list[Path], err: TextIO = sys.stderr) -> IndexReport:
    """Index with progress on stderr (tui/cli/progress.py); Ctrl-C stops after the file in
    hand."""
    cancel = threading.Event()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:  # stop after the file in hand: every finished file is kept
        signal.signal(signum, lambda *_: cancel.set())
    try:
        with progress(err, "indexing", "files") as update:

            def on_progress(done: int, total: int, result: FileResult) -> None:
                status = result.status if not result.error else f"failed: {result.error}"
                notable = result.status in ("indexed", "failed")
                update(done, total, f"{status:<9} {Path(result.path).name}", notable)

            report = index_paths(store, paths, on_progress=on_progress, cancel=cancel)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print(index_summary(report), file=err)
    for path, error in report.failures:
        print(one_line(f"  failed: {path}: {error}"), file=err)
    for path, why in report.skipped_files:
        print(one_line(f"  skipped: {path}: {why}"), file=err)
    return report
