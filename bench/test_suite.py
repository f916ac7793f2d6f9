"""How long `make test` takes: the suite in this checkout (its .venv already set up), or with
--fresh, from nothing: a clean clone of this commit, its own .venv (`make deps`: llama.cpp
built from source), then the suite (`make test`), each timed. Targets: tests <= 10
minutes, fresh <= 20 minutes, on 2 cores.

    .venv/bin/python bench/test_suite.py [--fresh] [--out bench/results/test_suite.json]

Writes {commit, tests_seconds, fresh_seconds, machine} (a figure not measured this time is
kept from the file's last run, with the commit it was measured at).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "bench" / "results" / "test_suite.json"


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()


def timed_make(target: str, where: Path, log: Path) -> float:
    """Seconds `make TARGET` took in `where`; exits with its log's tail when it fails."""
    started = time.perf_counter()
    with log.open("w") as out:
        done = subprocess.run(["make", target], cwd=where, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"make {target} failed in {where}:\n{log.read_text()[-3000:]}")
    return round(seconds, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--fresh", action="store_true", help="time a clean clone's set-up and tests"
    )
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    report = {
        "commit": commit(),
        "machine": f"{os.cpu_count()} cores",
        "command": "python bench/test_suite.py" + (" --fresh" if args.fresh else ""),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.fresh:  # set-up, then the suite, in a clean clone: what CI runs
            clone = Path(tmp) / "clone"
            subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
            setup = timed_make("deps", clone, Path(tmp) / "deps.log")
            report["tests_seconds"] = timed_make("test", clone, Path(tmp) / "tests.log")
            report["setup_seconds"] = setup
            report["fresh_seconds"] = round(setup + report["tests_seconds"], 1)
            print(f"from a clean clone: set-up {setup:.0f} s, tests", end=" ")
            print(f"{report['tests_seconds']:.0f} s, {report['fresh_seconds']:.0f} s in all")
        else:
            report["tests_seconds"] = timed_make("test", ROOT, Path(tmp) / "tests.log")
            print(f"make test here: {report['tests_seconds']:.0f} s", flush=True)
        if not args.fresh and "fresh_seconds" in previous:
            report["fresh_seconds"] = previous["fresh_seconds"]
            report["fresh_commit"] = previous.get("fresh_commit", previous.get("commit"))
    if args.fresh:
        report["fresh_commit"] = report["commit"]
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} (commit {report['commit']})")


if __name__ == "__main__":
    main()
