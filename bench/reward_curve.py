"""What a user's ratings buy: the reward model's learning curve on HotpotQA dev-400, from the
research kept by research_once.py (no model call: a run takes seconds).

A simulated user asks the train pool's questions in order (bench/data/research-train797...)
and rates each answer Sleuth showed (the plain reader's): thumbs up when its short answer is
right (SQuAD exact match with the gold answer), down when not. Two users:

  thumbs        rates, nothing more
  corrections   also types the right answer under each wrong one (a correction)

After 10, 20, 40, 80, 160 and 320 rated questions (--budgets) a reward model is fitted to
that feedback exactly as `sleuth train --algo reward` fits it (train/reward_model.py: from the
plain reader's preference, its threshold on the user's own rated questions), and picks the
short answer of each of the 400 held-out questions (bench/data/research-dev400...) among the
reader's candidates. Base is what Sleuth ships before any rating: the plain reader's answer.

Per budget: EM and F1 minus base (paired bootstrap 95% interval), answers better and worse,
and the selective figures at the threshold: the share of answers shown as sure, and their EM.
Each budget is also fitted for five other users who rated other questions of the pool (random
draws of the same size): the spread says how much the curve owes to which questions a user
happened to ask.

    .venv/bin/python bench/reward_curve.py [--budgets 10,20,40,80,160,320]
        [--strength S] [--unsure U] [--out bench/results/learning_curve.json]
        [--tune]   (choose the prior, --strength and --unsure on the pool alone)

Writes the JSON, a .svg and a .txt beside it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from learning_curve import plot
from research_once import DATA_DIR, decided, read

from sleuth.agent.research.picker import probability
from sleuth.train import reward_model as rm
from sleuth.train.verdict import paired_bootstrap

RESULTS = Path(__file__).resolve().parent / "results"
DRAWS = 5  # other simulated users per budget
SHIPPED = "reward model, thumbs and corrections"  # the pipeline the Train screen shows


def feedback(rows: list[dict], corrections: bool) -> list[rm.Example]:
    """The examples a simulated user's ratings of `rows` give (train/reward_model.py rules)."""
    found = []
    for row in rows:
        shown = row["shown"]
        right = bool(shown is not None and row["candidates"][shown]["em"])
        correction = row["gold"][0] if corrections and not right else None
        if shown is None and not correction:
            continue  # "not found" rated down says nothing of any candidate
        found += rm.examples_of(
            row["candidates"], shown, row["n"], right=right, correction=correction
        )
    return found


def answers(model: rm.RewardModel | None, rows: list[dict]) -> list[dict]:
    """Each held-out question's EM, F1 and confidence as Sleuth would answer it (the plain
    reader's answer where `model` is None)."""
    out = []
    for row in rows:
        if model is None or not row["candidates"]:
            out.append({"em": row["em"], "f1": row["f1"], "confidence": None})
            continue
        if decided(row):  # a comparison changed it (compare.py): the model says how sure
            shown = row["candidates"][row["shown"]]
            confidence = probability(model.score(shown["features"]))
            out.append({"em": row["em"], "f1": row["f1"], "confidence": confidence})
            continue
        pick = row["candidates"][rm.picked(model, row["candidates"])]
        confidence = rm.confidence(model, row["candidates"])
        if pick["features"].get("greedy") and row["shown"] is None:
            # the model's own reading failed its check: picked again, it fails again, and
            # the answer stays the one the plain reader gave (writer.py `_pick`)
            out.append({"em": row["em"], "f1": row["f1"], "confidence": confidence})
            continue
        out.append({"em": pick["em"], "f1": pick["f1"], "confidence": confidence})
    return out


def difference(base: list[dict], model: list[dict], metric: str) -> dict:
    d = paired_bootstrap([(b[metric], 1.0) for b in base], [(m[metric], 1.0) for m in model])
    return {"mean": round(d.mean, 4), "ci95": [round(d.ci95[0], 4), round(d.ci95[1], 4)]}


def budget_point(pool, held, base, ratings, corrections, strength, unsure) -> dict:
    rated = pool[:ratings]
    model = rm.fit(feedback(rated, corrections), strength=strength)
    model.threshold = rm.threshold(model, [r["candidates"] for r in rated], unsure)
    picked = answers(model, held)
    sure = [a for a in picked if a["confidence"] is None or a["confidence"] >= model.threshold]
    return {
        "ratings": ratings,
        "pipeline": SHIPPED if corrections else "reward model, thumbs",
        "diff_vs_base": {m: difference(base, picked, m) for m in ("em", "f1")},
        "answers_vs_base": {
            "better": sum(p["em"] > b["em"] for b, p in zip(base, picked, strict=True)),
            "worse": sum(p["em"] < b["em"] for b, p in zip(base, picked, strict=True)),
        },
        "shown": round(len(sure) / len(picked), 4),
        "em_shown": round(statistics.mean(a["em"] for a in sure), 4) if sure else None,
        "threshold": model.threshold,
        "weights": model.weights,
        "bias": model.bias,
    }


def spread(pool, held, base, ratings, corrections, strength, unsure) -> dict:
    """The EM difference and selective EM for DRAWS other users of `ratings` questions."""
    diffs, shown = [], []
    for draw in range(DRAWS):
        sample = random.Random(draw).sample(pool, ratings)
        point = budget_point(sample, held, base, ratings, corrections, strength, unsure)
        diffs.append(point["diff_vs_base"]["em"]["mean"])
        shown.append(point["em_shown"] or 0.0)
    return {
        "em_diff": [min(diffs), round(statistics.mean(diffs), 4), max(diffs)],
        "em_shown": [min(shown), round(statistics.mean(shown), 4), max(shown)],
    }


def tune(pool: list[dict]) -> None:
    """The prior, --strength and --unsure chosen on the pool alone: ten random splits, each
    rating some questions and judging the rest (EM gain over the plain reader, the share
    shown as sure, and their EM over base)."""
    from sleuth.agent.research import picker

    print(f"pool: {len(pool)} questions, base EM {_mean(pool, 'em'):.3f}")
    for greedy in (0.5, 1.0, 2.0):
        picker.PRIOR["greedy"] = greedy
        for strength in (0.5, 1.0, 2.0, 4.0):
            for unsure in (0.3, 0.35):
                cells = []
                for ratings in (20, 40, 80):
                    runs = []
                    for seed in range(10):
                        shuffled = random.Random(seed).sample(pool, len(pool))
                        rated, judged = shuffled[:ratings], shuffled[ratings:]
                        base = answers(None, judged)
                        point = budget_point(rated, judged, base, ratings, True, strength, unsure)
                        runs.append(point)
                    gain = statistics.mean(p["diff_vs_base"]["em"]["mean"] for p in runs)
                    shown = statistics.mean(p["shown"] for p in runs)
                    sure = statistics.mean(p["em_shown"] for p in runs) - _mean(pool, "em")
                    cells.append(f"{ratings}: {gain:+.3f} shown {shown:.2f} sure {sure:+.3f}")
                print(f"prior {greedy} strength {strength} unsure {unsure}: " + "  ".join(cells))


def _mean(rows: list[dict], key: str) -> float:
    return statistics.mean(r[key] for r in rows)


def text_report(report: dict) -> str:
    lines = [
        f"reward model learning curve: {report['model']}, held out {report['held_out']} "
        f"(n={report['n_questions']}), pool {report['pool']} (n={report['n_pool']}), "
        f"research at {report['research_commit']} (the pool at "
        f"{report['pool_research_commit']}), curve at {report['commit']}",
        f"base (the plain reader): EM {report['base']['em']:.3f} F1 {report['base']['f1']:.3f}",
        "",
        f"{'ratings':>7}  {'pipeline':<40} {'EM diff [95% CI]':<26} {'F1 diff':>7} "
        f"{'better/worse':>12} {'shown':>6} {'EM shown':>8}   other users: EM diff min/mean/max",
    ]
    for b in report["budgets"]:
        em, f1 = b["diff_vs_base"]["em"], b["diff_vs_base"]["f1"]
        others = b.get("other_users", {}).get("em_diff")
        lines.append(
            f"{b['ratings']:>7}  {b['pipeline']:<40} {em['mean']:+.3f} "
            f"[{em['ci95'][0]:+.3f}, {em['ci95'][1]:+.3f}]{'':<5} {f1['mean']:+7.3f} "
            f"{b['answers_vs_base']['better']:>6}/{b['answers_vs_base']['worse']:<5} "
            f"{b['shown']:6.2f} {b['em_shown']:8.3f}   "
            + (f"{others[0]:+.3f}/{others[1]:+.3f}/{others[2]:+.3f}" if others else "")
        )
    lines.append("")
    lines.append(f"command: {report['command']}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budgets", default="10,20,40,80,160,320")
    parser.add_argument("--strength", type=float, default=rm.STRENGTH)
    parser.add_argument("--unsure", type=float, default=rm.UNSURE)
    parser.add_argument("--pool", default=str(DATA_DIR / "research-train797.jsonl.gz"))
    parser.add_argument("--held", default=str(DATA_DIR / "research-dev400.jsonl.gz"))
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "learning_curve.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    pool_head, pool = read(Path(args.pool))
    if args.tune:
        tune(sorted(pool, key=lambda r: r["n"]))
        return
    held_head, held = read(Path(args.held))
    if pool_head is None or held_head is None:
        raise SystemExit("research the pool and dev-400 first: bench/research_once.py")
    pool, held = sorted(pool, key=lambda r: r["n"]), sorted(held, key=lambda r: r["n"])
    base = answers(None, held)
    import research_quality

    report = {
        "commit": research_quality.head(),
        "research_commit": held_head["commit"],
        "pool_research_commit": pool_head["commit"],
        "command": "python bench/reward_curve.py " + " ".join(sys.argv[1:]),
        "model": "qwen2.5-coder-0.5b-instruct-q4_k_m",
        "model_alias": "qwen2.5-0.5b",
        "pipeline": SHIPPED,
        "shipped_as": "reward model",
        "held_out": held_head["data"],
        "n_questions": len(held),
        "pool": pool_head["data"],
        "n_pool": len(pool),
        "strength": args.strength,
        "unsure": args.unsure,
        "base": {"em": round(_mean(base, "em"), 4), "f1": round(_mean(base, "f1"), 4)},
        "budgets": [],
    }
    for ratings in [int(b) for b in args.budgets.split(",") if int(b) <= len(pool)]:
        for corrections in (False, True):
            point = budget_point(pool, held, base, ratings, corrections, args.strength, args.unsure)
            point["other_users"] = spread(
                pool, held, base, ratings, corrections, args.strength, args.unsure
            )
            report["budgets"].append(point)
    report["seconds_total"] = round(time.perf_counter() - started, 1)
    out = Path(args.out)
    out.write_text(json.dumps(report, indent=2) + "\n")
    shipped = [b for b in report["budgets"] if b["pipeline"] == SHIPPED]
    plot({**report, "budgets": shipped}, out.with_suffix(".svg"))
    out.with_suffix(".txt").write_text(text_report(report))
    print(text_report(report))


if __name__ == "__main__":
    main()
