"""The user's feedback as worked examples: does the reader choose better when shown the
questions it was corrected on, without any training?

Every pipeline the learning curve trained on 80 questions' feedback fits those questions and
carries nothing to new ones (bench/README, "The learning curve"). A worked example in the
prompt is the other way a model takes a lesson: the reader's prompt already holds one, made
up. Here each held-out reader prompt also gets, before its own question, the `k` rated
questions of a budget's feedback most like it (same answer form: yes/no, a choice of two, or
a span; then the most words in common with the question, rare ones weighing more), each as
the reader saw it and the answer the user said was right (their correction, or the answer
they rated well). Base answers with them and without, greedily as the app does; the report
gives each budget's difference with its bootstrap 95% interval and the answers it moved.

Usage:
    python bench/feedback_demos.py --workdir DIR [--budgets 10,20,40,80] [--k 1]
        [--instead] [--dev25] [--out bench/results/feedback_demos.json]

DIR is a learning-curve workdir (bench/learning_curve.py --workdir): its held-out research
(heldout.db), its feedback snapshots (snapshots/feedback-N.db) and, with --dev25, dev-25's
research (dev25.db). --instead puts the examples in place of the reader's made-up one.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

from closed_loop import commit, difference, mean
from learning_curve import METRICS, changed, evaluate, joined, moved, reused_sets

from sleuth.agent.research.reader import answer_form
from sleuth.agent.text import words
from sleuth.store import Store
from sleuth.train.datasets import Prompt, load_feedback, question_of

RESULTS = Path(__file__).resolve().parent / "results"


def lessons(snapshot: Path) -> list[tuple[str, str, str]]:
    """(question, the reader's last turn, the right answer) for each distinct reader prompt of
    a feedback store whose right answer the user gave: the prompts a trainer would learn from,
    all of them (no split: nothing is trained)."""
    store = Store.open(snapshot, migrate=False)
    try:
        feedback = load_feedback(store, fraction=0.0, calls="writer")
    finally:
        store.close()
    out, seen = [], set()
    for answer in feedback.sft:  # the good answers and the corrections, one per prompt and text
        if not answer.reads or answer.messages[-1]["content"] in seen:
            continue
        seen.add(answer.messages[-1]["content"])
        out.append((question_of(answer.messages), answer.messages[-1]["content"], answer.text))
    return out


def nearest(question: str, pool: list[tuple[str, str, str]], k: int) -> list[tuple[str, str, str]]:
    """The `k` lessons most like `question`: of its answer form first, then by the words they
    share, each weighed by how rare it is among the lessons' questions (ties: the earlier)."""
    kind = answer_form(question, []).kind
    same = [lesson for lesson in pool if answer_form(lesson[0], []).kind == kind] or pool
    counts = Counter(w for q, _, _ in pool for w in set(words(q.lower())))
    asked = set(words(question.lower()))

    def weight(lesson) -> float:
        shared = asked & set(words(lesson[0].lower()))
        return sum(math.log((1 + len(pool)) / (1 + counts[w])) for w in shared)

    return sorted(same, key=weight, reverse=True)[:k]


def with_lessons(prompt: Prompt, chosen, instead: bool) -> Prompt:
    """`prompt` with the chosen lessons as worked examples before its question (in place of
    the made-up one with `instead`); the most alike last, nearest the question."""
    messages = prompt.messages
    system, rest = messages[:1], messages[1:-1]
    shown = []
    for _, asked, answer in reversed(chosen):
        shown += [{"role": "user", "content": asked}, {"role": "assistant", "content": answer}]
    kept = [] if instead else rest
    return replace(prompt, messages=system + kept + shown + messages[-1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, help="a learning-curve workdir")
    parser.add_argument("--budgets", default="10,20,40,80")
    parser.add_argument("--k", type=int, default=1, help="worked examples from the feedback")
    parser.add_argument("--instead", action="store_true", help="in place of the made-up one")
    parser.add_argument("--held", type=int, default=50)
    parser.add_argument("--dev25", action="store_true", help="also dev-25's questions")
    parser.add_argument("--out", default=str(RESULTS / "feedback_demos.json"))
    args = parser.parse_args()
    root = Path(args.workdir)
    budgets = sorted(int(b) for b in args.budgets.split(","))
    needed = [root / "heldout.db"] + [root / "snapshots" / f"feedback-{b}.db" for b in budgets]
    if args.dev25:
        needed.append(root / "dev25.done")
    if missing := [str(p) for p in needed if not p.exists()]:
        sys.exit(f"feedback_demos: {root} lacks {', '.join(missing)}")
    if args.k < 1:
        sys.exit("feedback_demos: --k must be 1 or more")
    sets, base_path = reused_sets(root, args.held, args.dev25)
    started = time.perf_counter()
    base = {name: evaluate(base_path, None, prompts) for name, prompts in sets.items()}
    report = {
        "commit": commit(),
        "command": "python bench/feedback_demos.py " + " ".join(sys.argv[1:]),
        "model": base_path.stem,
        "k": args.k,
        "instead": args.instead,
        "n_questions": {name: len(prompts) for name, prompts in sets.items()},
        "base": {name: {m: mean(run["parts"][m]) for m in METRICS} for name, run in base.items()},
        "budgets": [],
        "seconds": {"base": round(time.perf_counter() - started, 1)},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{report['model']}, k={args.k}, instead={args.instead}, commit {report['commit']}"]
    for budget in budgets:
        first = len(lines)  # this budget's lines, printed as it ends
        pool = lessons(root / "snapshots" / f"feedback-{budget}.db")
        row = {"ratings": budget, "lessons": len(pool)}
        t0 = time.perf_counter()
        runs = {}
        for name, prompts in sets.items():
            shown = [
                (with_lessons(p, nearest(question_of(p.messages), pool, args.k), args.instead), g)
                for p, g in prompts
            ]
            runs[name] = evaluate(base_path, None, shown)
            b, m = base[name], runs[name]
            row[name] = {
                "model": {x: mean(m["parts"][x]) for x in METRICS},
                "diff_vs_base": difference(b["parts"], m["parts"], METRICS),
                "answers_vs_base": changed(b["parts"]["f1"], m["parts"]["f1"]),
                "moved": moved(b, m),
            }
            f1 = row[name]["diff_vs_base"]["f1"]
            lines.append(
                f"{budget:>3} questions' feedback ({len(pool)} lessons), {name} "
                f"(n={len(prompts)}): F1 {report['base'][name]['f1']:.3f} -> "
                f"{row[name]['model']['f1']:.3f}, {f1['mean']:+.3f} {f1['ci95']}; "
                f"answers {row[name]['answers_vs_base']}"
            )
        if len(sets) > 1:
            row["pooled_diff_vs_base"] = difference(
                joined(list(base.values())), joined(list(runs.values())), METRICS
            )
            f1 = row["pooled_diff_vs_base"]["f1"]
            lines.append(f"      pooled: F1 {f1['mean']:+.3f} {f1['ci95']}")
        row["seconds"] = round(time.perf_counter() - t0, 1)
        report["budgets"].append(row)
        print("\n".join(lines[first:]), flush=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
