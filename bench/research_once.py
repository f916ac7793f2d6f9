"""Research once: each question of a set asked once, the way research_quality.py asks it
(`sleuth ask --json`, library mode, the full loop, the plain reader with no reward model),
and what the reader had kept: its prompt, its candidates with their features, which one was
shown, and how each scores against the gold answer. Training and evaluating reward models
(learning_curve.py --reward) then reads these files in seconds, with no model call.

One gzip JSONL file per set, bench/data/research-SET.jsonl.gz: a first line with the commit
that made it, then a line a question. A run that is stopped keeps what it wrote; the next run
over the same file asks only the questions it lacks (the same commit only: a file made by
other research code is refused, unless --restart).

    .venv/bin/python bench/research_once.py --data dev400|train797 [--questions N]
        [--start S] [--ask N] [--out FILE] [--restart]
    .venv/bin/python bench/research_once.py --summary FILE [--before FILE] [--out JSON]

--summary reads a research file back: EM and F1 overall and by question type, the short
answers of the kind asked, the answers a comparison (compare.py) changed from the model's
own reading and how many of those are right, p50 seconds; with --before, another research
of the same questions, and the paired difference (bootstrap 95% interval, answers better and
worse).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import hotpot
import research_quality as rq

from sleuth.agent.research.kinds import asked_kind, of_kind
from sleuth.agent.research.reader import YES_NO
from sleuth.store import Store
from sleuth.train.verdict import paired_bootstrap

DATA_DIR = Path(__file__).resolve().parent / "data"


def scored(question: hotpot.Question, text: str) -> tuple[float, float]:
    """(EM, F1) of a short answer against the question's answers (yes/no by its word)."""
    gold = question.answer.strip().lower()
    if gold in ("yes", "no"):
        hit = float(rq.yes_no(text) == gold)
        return hit, hit
    if not text:
        return 0.0, 0.0
    return (
        max(float(hotpot.exact_match(text, g)) for g in question.answers),
        max(hotpot.f1(text, g) for g in question.answers),
    )


def reader_prompt(home: Path, answer_id: int | None) -> list[dict]:
    """The messages the reader was given for an answer (its stored prompt)."""
    if answer_id is None:
        return []
    store = Store.open(home / "data" / "sleuth.db")
    try:
        return store.runs.answer(answer_id).messages or []
    finally:
        store.close()


def row(number: int, question: hotpot.Question, result: dict, home: Path) -> dict:
    verification = result.get("verification") or {}
    short, _ = rq.short_of(result)
    em, f1 = scored(question, short)
    candidates = []
    for candidate in verification.get("candidates") or []:
        c_em, c_f1 = scored(question, candidate.get("shows") or candidate["text"])
        candidates.append({**candidate, "em": c_em, "f1": c_f1})
    return {
        "n": number,
        "id": question.id,
        "question": question.question,
        "type": question.type,
        "gold": question.answers,
        "asked_kind": asked_kind(question.question),
        "status": result["status"],
        "kind": verification.get("kind"),
        "short": short,
        "em": em,
        "f1": f1,
        "shown": verification.get("shown"),
        "picked_by": verification.get("picked_by"),
        "candidates": candidates,
        "citations": [verification.get("citations", 0), verification.get("dangling_removed", 0)],
        "seconds": (result.get("timings") or {}).get("seconds", 0.0),
        "prompt": reader_prompt(home, result.get("answer_id")),
    }


def read(path: Path) -> tuple[dict | None, list[dict]]:
    """(the header, the rows) of a research file; (None, []) when there is none."""
    if not path.exists():
        return None, []
    lines = []
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        try:
            for text in handle:
                lines.append(json.loads(text))
        except (EOFError, json.JSONDecodeError):  # a run killed mid-line: keep what is whole
            pass
    return (lines[0] if lines else None), lines[1:]


def summary(rows: list[dict]) -> dict:
    """What a research file says of its answers (see --summary)."""
    kinds = [r for r in rows if r["asked_kind"] and r["short"] and r["short"] not in YES_NO]
    by_rule = [r for r in rows if decided(r)]
    return {
        "n": len(rows),
        "em": _mean(rows, "em"),
        "f1": _mean(rows, "f1"),
        "by_type": {
            kind: {"n": len(part), "em": _mean(part, "em")}
            for kind in sorted({r["type"] for r in rows})
            if (part := [r for r in rows if r["type"] == kind])
        },
        "of_the_kind_asked": [sum(of_kind(r["short"], r["asked_kind"]) for r in kinds), len(kinds)],
        "changed_by_comparison": [sum(r["em"] for r in by_rule), len(by_rule)],
        "p50_seconds": round(statistics.median(r["seconds"] for r in rows), 2),
    }


def decided(row: dict) -> bool:
    """Whether a comparison (compare.py) changed the answer shown from the model's own reading
    (one that agrees with it is counted as the model's). Research is done with no reward
    model, so a shown candidate that is not the model's own was put there by a comparison."""
    shown = row.get("shown")
    return shown is not None and not row["candidates"][shown]["features"].get("greedy")


def _mean(rows: list[dict], key: str) -> float:
    return round(statistics.mean(r[key] for r in rows), 4) if rows else 0.0


def report(path: Path, before: Path | None, out: Path | None) -> None:
    """--summary: print (and write) a research file's summary, against --before's."""
    header, rows = read(path)
    rows = sorted(rows, key=lambda r: r["n"])
    result = {
        "file": path.name,
        "commit": header["commit"],
        "command": "python bench/research_once.py " + " ".join(sys.argv[1:]),
        **summary(rows),
    }
    if before is not None:
        then_header, then = read(before)
        then = {r["n"]: r for r in then}
        pairs = [(then[r["n"]], r) for r in rows if r["n"] in then]
        d = paired_bootstrap([(a["em"], 1.0) for a, _ in pairs], [(b["em"], 1.0) for _, b in pairs])
        result["before"] = {
            "commit": then_header["commit"],
            **summary([a for a, _ in pairs]),
            "em_diff": {"mean": round(d.mean, 4), "ci95": [round(x, 4) for x in d.ci95]},
            "better": sum(b["em"] > a["em"] for a, b in pairs),
            "worse": sum(b["em"] < a["em"] for a, b in pairs),
        }
    text = json.dumps(result, indent=2)
    print(text)
    if out is not None:
        out.write_text(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help=f"{', '.join(hotpot.SETS)}, or a file")
    parser.add_argument("--questions", type=int, help="the first N questions only")
    parser.add_argument("--start", type=int, default=0, help="skip the set's first N")
    parser.add_argument(
        "--ask", type=int, help="ask at most N this time (the library still holds all chosen)"
    )
    parser.add_argument("--out", help="the research file (default bench/data/research-SET...)")
    parser.add_argument("--restart", action="store_true", help="replace a file of another commit")
    parser.add_argument("--summary", metavar="FILE", help="summarise a research file, and exit")
    parser.add_argument("--before", metavar="FILE", help="with --summary: the research before")
    args = parser.parse_args()
    if args.summary:
        before = Path(args.before) if args.before else None
        report(Path(args.summary), before, Path(args.out) if args.out else None)
        return
    if not args.data:
        parser.error("--data is required (or --summary)")
    questions = hotpot.load(hotpot.SETS.get(args.data, Path(args.data)))
    chosen = list(enumerate(questions))[args.start :][: args.questions]
    out = Path(args.out or DATA_DIR / f"research-{args.data}.jsonl.gz")
    commit = rq.head()
    header, rows = read(out)
    if header is not None and header["commit"] != commit and not args.restart:
        raise SystemExit(
            f"{out} was researched at {header['commit']}, not {commit}: --restart replaces it"
        )
    if header is None or header["commit"] != commit:
        header, rows = {"commit": commit, "data": args.data, "model": "default"}, []
        with gzip.open(out, "wt", encoding="utf-8") as handle:  # a fresh file: header first
            handle.write(json.dumps(header) + "\n")
    else:  # rewrite what was whole, so a torn last line is not followed by new ones
        with gzip.open(out, "wt", encoding="utf-8") as handle:
            for line in [header, *rows]:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    done = {r["n"] for r in rows}
    todo = [(n, q) for n, q in chosen if n not in done][: args.ask]
    print(f"{out.name}: {len(done)} done, {len(todo)} to ask, at {commit}", flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        # the library holds every chosen question's paragraphs, as research_quality's does
        env, _ = rq.prepare("library", [q for _, q in chosen], Path(tmp), dict(os.environ), None)
        home = Path(env["SLEUTH_HOME"])
        print(f"library indexed in {time.perf_counter() - started:.0f} s", flush=True)
        for count, (number, question) in enumerate(todo, start=1):
            result = rq.ask(question.question, number + 1, env, "", web=False)
            line = row(number, question, result, home)
            with gzip.open(out, "at", encoding="utf-8") as handle:
                handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            print(
                f"{count:4d}/{len(todo)} #{number} EM {line['em']:.0f} {line['seconds']:4.1f}s "
                f"{len(line['candidates'])} candidates | {line['short'][:30]!r} | "
                f"gold {question.answer[:30]!r}",
                flush=True,
            )
    print(f"{len(todo)} questions in {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
