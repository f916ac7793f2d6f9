"""`sleuth ask` and `sleuth index`: the research loop and the indexer on the command line.

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
from sleuth.agent.events import (
    AnswerDone,
    BudgetExhausted,
    Event,
    EvidenceChosen,
    PageFetched,
    PlanReady,
    Reflected,
    RunFinished,
    SearchDone,
    StepFailed,
    Token,
)
from sleuth.agent.library import FileResult, IndexReport, index_paths
from sleuth.agent.models import open_llm
from sleuth.agent.research import Researcher
from sleuth.agent.search import make_search
from sleuth.store import Dirs, Store
from sleuth.store.settings import Settings

BUDGET_KEYS = {
    "rounds": "research.max_rounds",
    "steps": "research.max_steps",
    "pages": "research.max_pages",
    "seconds": "research.max_seconds",
    "tokens": "research.max_llm_tokens",
    "evidence": "research.evidence_k",
}


def parse_budget(text: str | None) -> dict[str, str]:
    """'rounds=1,pages=5' -> {'research.max_rounds': '1', 'research.max_pages': '5'}."""
    flags: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in BUDGET_KEYS or not value.strip():
            raise ValueError(
                f"Bad --budget item {part.strip()!r}: use KEY=N with KEY one of "
                f"{', '.join(BUDGET_KEYS)}."
            )
        flags[BUDGET_KEYS[key]] = value.strip()
    return flags


class Progress:
    """Prints events as short progress lines on stderr."""

    def __init__(self, err: TextIO, out: TextIO, stream_answer: bool):
        self.err, self.out = err, out
        self.stream_answer = stream_answer
        self.streamed = False

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if isinstance(event, Token):
            if self.stream_answer:
                if not self.streamed:
                    self.out.write("\n")
                self.out.write(event.text)
                self.out.flush()
                self.streamed = True
            return
        if line:
            print(line, file=self.err, flush=True)


def describe(event: Event) -> str | None:
    """One human line for a progress event (None for events not worth a line)."""
    match event:
        case PlanReady(round=round_number, subquestions=subs, fallback=fallback):
            head = "plan" if round_number == 1 else f"round {round_number}"
            note = (
                " (the model's plan was unusable; searching the question itself)"
                if fallback
                else ""
            )
            items = "; ".join(f"{s['tool']}: {s['query']}" for s in subs)
            return f"{head}: {len(subs)} search(es){note} — {items}"
        case SearchDone(query=query, tool=tool, results=results, cached=cached):
            where = "library" if tool == "search_library" else "web"
            note = " (cached)" if cached else ""
            return f"searched {where} for {query!r}: {len(results)} result(s){note}"
        case PageFetched(title=title, url=url, cached=cached, via=via):
            how = "cached" if cached else ("followed" if via == "follow_link" else "read")
            return f"{how}: {title} <{url}>"
        case StepFailed(action=action, target=target, error=error):
            return f"failed {action} {target}: {error}"
        case Reflected(enough=enough, new_queries=queries, follow_links=links):
            if enough or not (queries or links):
                return "reflection: enough to answer"
            return f"reflection: {len(queries)} new search(es), {len(links)} link(s) to follow"
        case EvidenceChosen(items=items, dropped_duplicates=dropped, reused_from_run=reused):
            extra = f", {dropped} near-duplicate(s) dropped" if dropped else ""
            origin = f" (reused from run {reused})" if reused else ""
            return f"evidence: {len(items)} passage(s){extra}{origin}"
        case BudgetExhausted(reason=reason):
            return f"budget: {reason}; writing with what was found"
        case RunFinished(status=status, seconds=seconds, llm_calls=calls, pages=pages, error=error):
            text = f"{status} in {seconds:.1f} s: {calls} model call(s), {pages} page(s) read"
            return text + (f" — {error}" if error else "")
    return None


def format_answer(answer: AnswerDone) -> str:
    """The answer, its unsupported claims, and its sources, as plain text."""
    lines = [answer.text.strip(), ""]
    unsupported = [c for c in answer.citations if not c["supported"]]
    verification = answer.verification
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
    if not web and not store.documents():
        raise AgentError(
            "Nothing to search: web search is off and the library is empty. Index files with "
            "`sleuth index PATH` (or pass --library PATH), or turn web search on."
        )
    print("loading the model…", file=err, flush=True)
    llm, info = open_llm(settings, dirs, store)
    for warning in info.warnings:
        print(f"warning: {warning}", file=err)
    researcher = Researcher(
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
        researcher.cancel()

    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    answer: AnswerDone | None = None
    finished: RunFinished | None = None
    try:
        async for event in researcher.ask(
            question,
            session_id=session_id,
            use_web=use_web,
            library_roots=library_roots,
            seed=seed,
        ):
            progress(event)
            if isinstance(event, AnswerDone):
                answer = event
            elif isinstance(event, RunFinished):
                finished = event
    finally:
        loop.remove_signal_handler(signal.SIGINT)
        await researcher.aclose()
    assert finished is not None
    if as_json:
        out.write(json.dumps(_json_result(store, finished, answer), ensure_ascii=False) + "\n")
    elif answer is not None:
        text = format_answer(answer)
        if progress.streamed:  # the answer is on screen already; show what verification found
            text = "\n\n" + text.split("\n", 1)[1] if answer.text.strip() else text
        out.write(text)
    return {"done": 0, "cancelled": 130}.get(finished.status, 1)


def _json_result(store: Store, finished: RunFinished, answer: AnswerDone | None) -> dict:
    run = store.run(finished.run_id)
    turn = store.turn(run["turn_id"])
    return {
        "status": finished.status,
        "error": finished.error,
        "question": turn["question"],
        "session_id": turn["session_id"],
        "run_id": finished.run_id,
        "answer_id": answer.answer_id if answer else None,
        "answer": answer.text if answer else None,
        "citations": answer.citations if answer else [],
        "verification": answer.verification if answer else None,
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
    """Index with a progress bar on stderr; Ctrl-C stops after the file in hand."""
    tty = err.isatty()
    cancel = threading.Event()

    def on_progress(done: int, total: int, result: FileResult) -> None:
        width = 24
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "." * (width - filled)
        name = Path(result.path).name
        status = result.status if not result.error else f"failed: {result.error}"
        line = f"[{bar}] {done}/{total} {status:<9} {name}"
        if tty:
            err.write("\r" + line[:110].ljust(110))
            if done == total:
                err.write("\n")
        elif result.status in ("indexed", "failed") or done == total:
            err.write(line + "\n")
        err.flush()

    previous = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        report = index_paths(store, paths, on_progress=on_progress, cancel=cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
    if report.cancelled and tty:
        err.write("\n")
    print(summary(report), file=err)
    for path, error in report.failures:
        print(f"  failed: {path}: {error}", file=err)
    return report


def summary(report: IndexReport) -> str:
    text = (
        f"indexed {report.indexed}, unchanged {report.unchanged}, failed {report.failed}, "
        f"removed {report.removed}; {report.chunks} chunks, {report.bytes / 1e6:.1f} MB "
        f"in {report.seconds:.1f} s"
    )
    return text + (" (interrupted: run it again to finish)" if report.cancelled else "")
