"""The reader alone, on evidence a research run already chose: how often the short answer is
right when the passages are fixed, so a change to the reader is measured in minutes (one model
call a question) instead of a whole research run.

The evidence comes from a Sleuth home that `bench/research_quality.py --keep DIR` left behind
(each question's last finished run); the questions and gold answers from the same data file.

    .venv/bin/python bench/research_quality.py --methods loop --keep /tmp/q --model M
    .venv/bin/python bench/reader_only.py --home /tmp/q/home-library --model M [--data dev150]
        [--questions N] [--env SLEUTH_RESEARCH_...=...] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import hotpot
from research_quality import DATA, yes_no

from sleuth.agent.errors import AgentError
from sleuth.agent.models.catalog import open_llm
from sleuth.agent.research.reader import answer_form, reader_messages
from sleuth.agent.research.writer import Writer, WriterSettings
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings


def stored_evidence(home: Path) -> dict[str, list[dict]]:
    """Question -> the evidence of its last finished run in the home's database."""
    store = Store.open(home / "data" / "sleuth.db")
    try:
        return {
            question: [
                {"uri": e.uri, "title": e.title, "text": e.text, "kind": "file"}
                for e in store.runs.evidence(run.id)
            ]
            for question, run in hotpot.stored_runs(store)
            if run.status == "done"
        }
    finally:
        store.close()


class Calls:
    """Writer calls run inline, for a bench (no loop, no recording)."""

    def __init__(self):
        self.events, self.seconds = [], 0.0

    async def call(self, purpose, fn):
        completion = fn()
        self.seconds += completion.seconds
        return completion

    def deadline(self, also=None):
        import threading

        from sleuth.agent.research.budget import Deadline

        return Deadline(threading.Event(), time.monotonic() + 600, also)

    def emit(self, event):
        self.events.append(event)

    def stream(self, piece):
        pass

    def cancelled(self):
        return False


def main() -> None:
    import asyncio

    from sleuth.agent.research.events import AnswerDone

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True, help="a Sleuth home research_quality kept")
    parser.add_argument("--data", default="dev150")
    parser.add_argument("--questions", type=int)
    parser.add_argument("--model", default="")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out")
    parser.add_argument(
        "--read-sentences",
        type=int,
        help="read each passage's first sentence and the N bearing on the question most "
        "(0: whole passages)",
    )
    parser.add_argument(
        "--focus",
        type=float,
        help="read only passages sharing this fraction of the best one's question words, "
        "and those they name (0: every passage)",
    )
    parser.add_argument("--end-bonus", type=float, help="logit bonus for ending an answer")
    parser.add_argument(
        "--avoid-question-start",
        action="store_true",
        help="keep a span from starting with a word of the question",
    )
    parser.add_argument("--samples", type=int, help="answers sampled per question, voted on")
    parser.add_argument(
        "--no-expects", action="store_true", help="no answer types from the question"
    )
    args = parser.parse_args()
    from sleuth.agent.research import passages, reader

    if args.read_sentences is not None:
        passages.READ_SENTENCES = args.read_sentences or None
    if args.focus is not None:
        passages.FOCUS = args.focus or None
    if args.end_bonus is not None:
        reader.END_BONUS = args.end_bonus
    if args.avoid_question_start:
        reader.AVOID_QUESTION_START = True
    if args.no_expects:
        reader.EXPECTS = False
    if args.samples:
        from sleuth.agent.research import writer as writer_module

        writer_module.READ_SAMPLES = args.samples
    os.environ.update(dict(item.split("=", 1) for item in args.env))
    questions = hotpot.load(DATA.get(args.data, Path(args.data)))[: args.questions]
    evidence = stored_evidence(Path(args.home))
    settings = load_settings(None, flags={"model.path": args.model or None})
    root = Path(args.home)
    llm, info = open_llm(settings, Dirs(root / "data", root / "config", root / "cache"))
    writer = Writer(llm, info, WriterSettings(answer="read"))
    rows = []
    for number, question in enumerate(questions, start=1):
        items = evidence.get(hotpot.asked(question.question))  # as Sleuth stored it
        if not items:
            continue
        calls = Calls()
        messages = reader_messages(question.question, items)
        try:
            asyncio.run(writer.answer(calls, question.question, items, messages, seed=number))
        except AgentError as exc:
            print(f"{number}: {exc}", file=sys.stderr)
            continue
        done = next(e for e in calls.events if isinstance(e, AnswerDone))
        short = done.short_answer or ""
        gold = question.answer
        polar = gold.lower() in ("yes", "no")
        em = (
            float(yes_no(short) == gold.lower())
            if polar
            else float(hotpot.exact_match(short, gold))
        )
        f1 = em if polar else hotpot.f1(short, gold)
        rows.append(
            {
                "em": em,
                "f1": f1,
                "own": bool(short),
                "form": answer_form(question.question, items).kind,
                "short": short,
                "gold": gold,
                "seconds": calls.seconds,
            }
        )
        print(f"{number:3d} EM {em:.0f} F1 {f1:.2f} {calls.seconds:5.2f}s | {short!r} | {gold!r}")
    summary = {
        "n": len(rows),
        "em": round(statistics.mean(r["em"] for r in rows), 3),
        "f1": round(statistics.mean(r["f1"] for r in rows), 3),
        "own": sum(r["own"] for r in rows),
        "seconds_p50": round(statistics.median(r["seconds"] for r in rows), 2),
        "env": args.env,
        "model": args.model or "default",
    }
    print(json.dumps(summary))
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
