"""The research-quality tables of bench/README.md, generated from bench/results/*.json, and
the learning curve Sleuth ships.

Every research_quality-*.json there gives one row per mode and method it ran, with the
commit, model, n and command it holds; the rows are printed as Markdown and, with --write,
replace what lies between the two CURRENT markers in bench/README.md. With --write, the
learning curve (results/learning_curve.json) is also copied, its F1 points only, to
assets/learning_curve.json, which the Train screen and `sleuth train` read to say what
feedback is likely to buy (train/expectations.py).

    .venv/bin/python bench/report.py [--write]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
SHIPPED_CURVE = HERE.parent / "assets" / "learning_curve.json"
BEGIN, END = "<!-- research-quality: begin (bench/report.py) -->", "<!-- research-quality: end -->"


def frac(pair: list[int]) -> str:
    return f"{pair[0]}/{pair[1]}"


def rows() -> list[str]:
    out = [
        "| file | model | mode / method | n | EM | F1 | own answers | contains (own / quotes) "
        "| evidence holds gold | reader gap | yes/no answered | ungrounded | citation validity "
        "| of the kind asked | EM by question type (n) | p50 s | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    paths = sorted(RESULTS.glob("research_quality-*.json"))
    reports = {path: json.loads(path.read_text()) for path in paths}
    for path, report in reports.items():
        for name, result in report.items():
            if not (isinstance(result, dict) and "all" in result):
                continue
            s = result["all"]
            validity = s["citation_validity"]
            out.append(
                f"| [{path.stem}](results/{path.name}) | {report['model']} | {name} | {s['n']} "
                f"| {s['em']:.3f} | {s['f1']:.3f} | {s['own']}/{s['n']} "
                f"| {frac(s['contains_own'])} / {frac(s['contains_quotes'])} "
                f"| {frac(s['evidence_gold'])} | {frac(s['reader_gap'])} "
                f"| {frac(s['polar_answered_yes_no'])} | {s['ungrounded_short_answers']} "
                f"| {'n/a' if validity is None else f'{validity:.2f}'} "
                f"| {frac(s['of_kind_asked']) if 'of_kind_asked' in s else 'n/a'} "
                f"| {by_type(result)} | {s['seconds_p50']:.1f} | {report['commit']} |"
            )
    out.append("")
    out.append("To rerun a row:")
    out.append("")
    for path, report in reports.items():
        out.append(f"- `{path.stem}`: `{rerun(report['command'], path)}`")
    return out


def by_type(result: dict) -> str:
    """EM for each question type of a set, with its count ("bridge 0.40 (86)")."""
    kinds = result.get("types", ("bridge", "comparison"))
    return ", ".join(
        f"{kind} {result[kind]['em']:.2f} ({result[kind]['n']})"
        for kind in kinds
        if result.get(kind, {}).get("n")
    )


def rerun(command: str, path: Path) -> str:
    """A result's command as a reader reruns it: its output to the result file itself, and
    no scratch folder for the kept homes."""
    command = re.sub(r"\s--keep\s+\S+", "", command)
    command = re.sub(r"--out\s+\S+", f"--out bench/results/{path.name}", command)
    return command.replace("python bench/", ".venv/bin/python bench/", 1)


def shipped_curve(report: dict) -> dict:
    """The learning curve as Sleuth ships it: the model (its alias and GGUF), the pipeline
    (the report's own, where it measured several), n, the commit, and each budget's F1
    difference to base with its interval."""
    alias = report.get("model_alias")
    if alias is None:  # a run from before the alias was recorded: its --model, else the default
        words = report["command"].split()
        if "--model" in words:
            alias = words[words.index("--model") + 1]
        else:
            from sleuth.agent.models.catalog import DEFAULT_MODEL

            alias = DEFAULT_MODEL
    return {
        "model": alias,
        "gguf": report["model"],
        "pipeline": report.get("shipped_as")
        or report["pipeline"].upper().replace(", THEN", " then"),
        "n_questions": report["n_questions"],
        "commit": report["commit"],
        "points": [
            {"ratings": budget["ratings"], "f1": budget["diff_vs_base"]["f1"]}
            for budget in report["budgets"]
            if budget.get("pipeline", report["pipeline"]) == report["pipeline"]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    args = parser.parse_args()
    table = "\n".join(rows())
    if not args.write:
        print(table)
        return
    readme = HERE / "README.md"
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + table + "\n" + text[end:])
    print(f"updated {readme}")
    curve = RESULTS / "learning_curve.json"
    if curve.exists():
        shipped = shipped_curve(json.loads(curve.read_text()))
        SHIPPED_CURVE.write_text(json.dumps(shipped, indent=2) + "\n")
        print(f"updated {SHIPPED_CURVE}")


if __name__ == "__main__":
    main()
