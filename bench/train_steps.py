"""What an SFT step and a DPO step cost on real feedback, with the model users train.

The feedback is a Sleuth database with ratings, comparisons and corrections on it, such as a
snapshot the learning curve leaves (`bench/learning_curve.py --workdir DIR` keeps
DIR/snapshots/feedback-N.db). Each algorithm trains --steps steps from the same base on a copy
of it, with `sleuth train`'s settings for everything but the steps (batch of 2 examples or 2
pairs, LoRA r=8, gradient checkpointing on), and the step times are reported with their
median. Both run in this process, one after the other, on the same feedback.

    .venv/bin/python bench/train_steps.py --feedback DIR/snapshots/feedback-80.db
        [--model NAME] [--steps 3] [--batch-size 2] [--out FILE]

Writes bench/results/train_steps.json (or --out) with the commit it ran on.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from simulate import commit

from sleuth.agent.models.catalog import DEFAULT_MODEL
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings
from sleuth.train.config import TrainConfig
from sleuth.train.datasets import load_feedback
from sleuth.train.trainer import train

RESULTS = Path(__file__).resolve().parent / "results"


class Steps:
    """The trainer's progress, kept: seconds per step."""

    def __init__(self, name: str):
        self.name, self.seconds = name, []

    def step(self, step, total, metrics):
        self.seconds.append(round(metrics["seconds"], 2))
        print(f"  {self.name} step {step}/{total}: {metrics['seconds']:.1f} s", flush=True)

    def info(self, text):
        print("  " + text.replace("\n", "\n  "), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feedback", required=True, help="a Sleuth database with feedback")
    parser.add_argument("--model", help="a model alias or GGUF path (default: Sleuth's default)")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    parser.add_argument("--cache", help="a cache folder to reuse (converted models)")
    parser.add_argument("--out", help="default bench/results/train_steps.json")
    args = parser.parse_args()
    flags = {"search.backend": "none"} | ({"model.path": args.model} if args.model else {})
    settings = load_settings(None, env={}, flags=flags)
    report = {
        "commit": commit(),
        "command": "python bench/train_steps.py " + " ".join(sys.argv[1:]),
        "model": args.model or DEFAULT_MODEL,
        "steps": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        for algo in ("sft", "dpo"):
            home = Path(tmp) / algo
            cache = Path(args.cache) if args.cache else Path(tmp) / "cache"
            dirs = Dirs(home / "data", home / "config", cache)
            dirs.data.mkdir(parents=True)
            shutil.copyfile(args.feedback, dirs.database)
            store = Store.open(dirs.database)
            feedback = load_feedback(store, calls="writer")
            examples = len(feedback.sft if algo == "sft" else feedback.dpo)
            print(f"{algo}: {examples} examples in the feedback", flush=True)
            config = TrainConfig(
                algo=algo,
                steps=args.steps,
                batch_size=args.batch_size,
                calls="writer",
                eval_limit=1,
            )
            steps = Steps(algo)
            train(store, settings, dirs, config, steps)
            store.close()
            report["steps"][algo] = {
                "examples": examples,
                "batch_size": args.batch_size,
                "seconds": steps.seconds,
                "median_s": statistics.median(steps.seconds),
            }
    lines = [
        f"{report['model']}, commit {report['commit']}, batch {args.batch_size}, "
        f"{args.steps} steps each"
    ]
    for algo, row in report["steps"].items():
        lines.append(f"  {algo}: steps {row['seconds']} s, median {row['median_s']:.1f} s")
    print("\n".join(lines))
    out = Path(args.out) if args.out else RESULTS / "train_steps.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
