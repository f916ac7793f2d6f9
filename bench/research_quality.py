"""Research quality on HotpotQA dev-25 used as a local library, the way a user asks: every
question is one `sleuth ask --no-web --json` process (a fresh model and prompt state each).

The 25 questions' ten context paragraphs each (249 files) are indexed into one library, then
every question is asked two ways:
  loop      the full loop: the model plans, searches, reflects, searches again, writes
  one-shot  research.planner = none: the question alone is searched once, then the same writer
so the planner's value is measured, not assumed. Reported per method, overall and per
question type (bridge, comparison):
  recall            supporting paragraphs among the evidence the writer saw
  cited recall      supporting paragraphs among the sources the answer cites
  EM / F1 / contains  official HotpotQA answer metrics on the answer text; "contains" = the
                    gold answer appears in it (the model writes sentences, not spans), in
                    whatever the user was shown, quoted evidence included; "by the model" =
                    in the answers the model wrote (quoted evidence counts as not containing)
  validity          citations written that point at real evidence, of all written
  supported         cited sentences whose evidence supports them
  shown degenerate  answers shown that fail the answer checks (must be 0)
  extractive        answers that are quoted evidence, the model's having been rejected twice
  no evidence       runs that found nothing and wrote nothing
  seconds, LLM calls per question

    .venv/bin/python bench/research_quality.py [--model smollm2|qwen2.5-0.5b|PATH]
        [--questions 25] [--only bridge|comparison|polar] [--methods loop,one-shot]
        [--out bench/results/NAME.json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import hotpot

from sleuth.agent.text import is_polar

ROOT = Path(__file__).resolve().parents[1]
SLEUTH = str(Path(sys.executable).parent / "sleuth")


def ask(question: str, seed: int, env: dict[str, str], model: str) -> dict:
    args = [SLEUTH, "ask", "--no-web", "--json", "--seed", str(seed), question]
    if model:
        args[2:2] = ["--model", model]
    done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    lines = done.stdout.strip().splitlines()
    if not lines:
        raise SystemExit(f"sleuth ask failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(lines[-1])


def score(question: hotpot.Question, result: dict, title_of: dict[str, str]) -> dict:
    gold = set(question.supporting_titles)
    sources = [title_of.get(s["uri"], s["title"]) for s in result.get("sources") or []]
    answer = result.get("answer") or ""
    verification = result.get("verification") or {}
    citations = result.get("citations") or []
    cited = {n for c in citations for n in c["numbers"]}
    cited_titles = {sources[n - 1] for n in cited if 0 < n <= len(sources)}
    timings = result.get("timings") or {}
    return {
        "type": question.type,
        "status": result["status"],
        "recall": len(gold & set(sources)) / len(gold),
        "cited_recall": len(gold & cited_titles) / len(gold),
        "em": float(hotpot.exact_match(answer, question.answer)) if answer else 0.0,
        "f1": hotpot.f1(answer, question.answer) if answer else 0.0,
        "contains": float(hotpot.answer_contains(answer, question.answer)) if answer else 0.0,
        "citations": verification.get("citations", 0),
        "dangling": verification.get("dangling_removed", 0),
        "cited_sentences": verification.get("cited_sentences", 0),
        "supported": sum(1 for c in citations if c.get("supported")),
        "degenerate": bool(answer) and bool(verification.get("problems")),
        "extractive": verification.get("kind") == "extractive",
        "retried": bool(verification.get("rejected")),
        "rejected_for": [p for r in verification.get("rejected") or [] for p in r["problems"]],
        "seconds": timings.get("seconds", 0.0),
        "llm_calls": timings.get("llm_calls", 0),
        "answer": answer,
        "gold": question.answer,
    }


def summary(rows: list[dict]) -> dict:
    if not rows:
        return {"n": 0}
    written = sum(r["citations"] + r["dangling"] for r in rows)
    mean = lambda key: round(statistics.mean(r[key] for r in rows), 3)  # noqa: E731
    return {
        "n": len(rows),
        "recall": mean("recall"),
        "cited_recall": mean("cited_recall"),
        "em": mean("em"),
        "f1": mean("f1"),
        "contains": mean("contains"),
        "contains_count": int(sum(r["contains"] for r in rows)),
        "contains_by_model": int(sum(r["contains"] for r in rows if not r["extractive"])),
        "citation_validity": round(sum(r["citations"] for r in rows) / written, 3)
        if written
        else None,
        "citations": [sum(r["citations"] for r in rows), written],
        "supported": [sum(r["supported"] for r in rows), sum(r["cited_sentences"] for r in rows)],
        "degenerate_shown": sum(r["degenerate"] for r in rows),
        "extractive": sum(r["extractive"] for r in rows),
        "retried": sum(r["retried"] for r in rows),
        "rejected_for": dict(
            collections.Counter(p for r in rows for p in r.get("rejected_for", [])).most_common()
        ),
        "no_evidence": sum(r["status"] == "no_evidence" for r in rows),
        "seconds": mean("seconds"),
        "llm_calls": mean("llm_calls"),
    }


def line(name: str, s: dict) -> str:
    if not s["n"]:
        return f"{name:<22} n=0"
    validity = s["citation_validity"]
    return (
        f"{name:<22} n={s['n']:<3} recall {s['recall']:.2f}  cited recall {s['cited_recall']:.2f}"
        f"  EM {s['em']:.2f}  F1 {s['f1']:.2f}  contains {s['contains']:.2f} "
        f"({s['contains_count']}/{s['n']}, by the model {s['contains_by_model']})  validity "
        f"{'n/a' if validity is None else f'{validity:.2f}'} ({s['citations'][0]}/"
        f"{s['citations'][1]})  supported {s['supported'][0]}/{s['supported'][1]}  "
        f"degenerate {s['degenerate_shown']}  extractive {s['extractive']}  "
        f"no-evidence {s['no_evidence']}  {s['seconds']:.1f} s/q  {s['llm_calls']:.1f} calls/q"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=25)
    parser.add_argument("--model", default="", help="alias or GGUF path (default: the default)")
    parser.add_argument("--methods", default="loop,one-shot")
    parser.add_argument("--out", help="write the results here as JSON (with the commit)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra SLEUTH_* settings for every ask (a variant being measured)",
    )
    parser.add_argument(
        "--only",
        choices=["bridge", "comparison", "polar"],
        help="ask only questions of this type (polar: those that ask yes or no)",
    )
    parser.add_argument(
        "--prompts", help="a folder of prompt files that replace the shipped ones (a variant)"
    )
    args = parser.parse_args()
    questions = hotpot.load(hotpot.DEV25)[: args.questions]
    if args.only == "polar":
        questions = [q for q in questions if is_polar(q.question)]
    elif args.only:
        questions = [q for q in questions if q.type == args.only]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        library = Path(tmp) / "library"
        paths = hotpot.write_library(hotpot.load(hotpot.DEV25), library)
        title_of = {str(p.resolve()): t for t, p in paths.items()}
        env = {**os.environ, "SLEUTH_HOME": str(home), "SLEUTH_SEARCH_BACKEND": "none"}
        env.update(dict(item.split("=", 1) for item in args.env))
        if args.prompts:  # the user's own prompts, as Sleuth reads them: config/prompts/
            (home / "config").mkdir(parents=True)
            shutil.copytree(args.prompts, home / "config" / "prompts")
        subprocess.run([SLEUTH, "index", str(library)], env=env, check=True, capture_output=True)
        methods = {"loop": {}, "one-shot": {"SLEUTH_RESEARCH_PLANNER": "none"}}
        results: dict[str, list[dict]] = {}
        started = time.perf_counter()
        for method in args.methods.split(","):
            rows = results.setdefault(method, [])
            for number, question in enumerate(questions, start=1):
                result = ask(question.question, number, {**env, **methods[method]}, args.model)
                rows.append(score(question, result, title_of))
                r = rows[-1]
                print(
                    f"{method:<8} {number:2d}/{len(questions)} {r['status']:<11} recall "
                    f"{r['recall']:.1f} contains {r['contains']:.0f} {r['seconds']:5.1f}s "
                    f"| {r['answer'][:70]!r} | gold {r['gold']!r}",
                    flush=True,
                )
    report = {
        "commit": commit,
        "model": args.model or "default",
        "env": args.env,
        "prompts": args.prompts,
        "command": " ".join(["python", "bench/research_quality.py", *sys.argv[1:]]),
    }
    print()
    for method, rows in results.items():
        report[method] = {"all": summary(rows)}
        print(line(method, report[method]["all"]))
        for kind in ("bridge", "comparison"):
            report[method][kind] = summary([r for r in rows if r["type"] == kind])
            print(line(f"  {kind}", report[method][kind]))
        if report[method]["all"].get("rejected_for"):
            print(f"  rejected answers, why: {report[method]['all']['rejected_for']}")
    report["rows"] = results
    report["seconds_total"] = round(time.perf_counter() - started, 1)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nwrote {args.out} (commit {commit})")


if __name__ == "__main__":
    main()
