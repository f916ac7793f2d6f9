"""What one GRPO step over whole runs costs on this machine, by rollout budget.

HotpotQA dev-25 is indexed as a local library and `--questions` of its questions are asked
once (stored questions are GRPO's prompts). Then, from the same base model each time, every
budget trains `--steps` GRPO steps over whole runs (G=4 runs of plan, search the library,
[reflect,] write for one question per step) and reports per step: the seconds, the part spent
sampling the runs, the model calls per run and the reward. The medians of both budgets are
compared in this process, on the same questions in the same order (same seeds).

Budgets:
- `research`: a sampled run has the app's research limits (2 rounds, 1,500 evidence tokens),
  as the trainer had them before;
- `step`: the trainer's default rollout budget (TrainConfig.rollout_rounds and
  rollout_evidence_tokens).

    .venv/bin/python bench/grpo_step.py [--steps 3] [--questions 6] [--model NAME] [--out FILE]

Writes bench/results/grpo_step.json (or --out) with the commit it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import hotpot
from simulate import collect, commit, library_home

from sleuth.agent.models.catalog import open_llm
from sleuth.agent.research.assistant import Assistant
from sleuth.train.config import TrainConfig
from sleuth.train.trainer import train

RESULTS = Path(__file__).resolve().parent / "results"
DEFAULTS = TrainConfig(algo="grpo")
BUDGETS = {
    "research": {"rollout_rounds": 2, "rollout_evidence_tokens": 1500},
    "step": {
        "rollout_rounds": DEFAULTS.rollout_rounds,
        "rollout_evidence_tokens": DEFAULTS.rollout_evidence_tokens,
    },
}


class Steps:
    """The trainer's progress, kept: one dict of metrics per step."""

    def __init__(self, name: str):
        self.name, self.steps = name, []

    def step(self, step, total, metrics):
        self.steps.append(dict(metrics))
        keys = ("seconds", "rollout_s", "calls_per_run", "answered", "reward")
        shown = {k: round(metrics[k], 2) for k in keys if k in metrics}
        print(f"  {self.name} step {step}/{total} {shown}", flush=True)

    def info(self, text):
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps per budget")
    parser.add_argument("--questions", type=int, default=6, help="questions asked and stored")
    parser.add_argument("--model", help="a model alias or GGUF path (default: Sleuth's default)")
    parser.add_argument("--out", help="where to write the JSON (default bench/results/...)")
    parser.add_argument("--budgets", default="research,step", help="which budgets to run")
    args = parser.parse_args()
    questions = hotpot.load(hotpot.DEV25)[: args.questions]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        dirs, settings, store = library_home(root, args.model)
        llm, info = open_llm(settings, dirs, store)
        agent = Assistant(store, llm, info, settings)
        run = asyncio.new_event_loop().run_until_complete
        print(f"asking {len(questions)} questions (GRPO's prompts)", flush=True)
        for number, question in enumerate(questions, start=1):
            run(collect(agent.ask(question.question, seed=number)))
        llm.close()

        budgets = {}
        for name, budget in BUDGETS.items():
            if name not in args.budgets.split(","):
                continue
            print(f"{name}: {budget}", flush=True)
            config = TrainConfig(
                algo="grpo",
                steps=args.steps,
                batch_size=1,
                group_size=4,
                grpo_over="runs",
                eval_limit=1,
                checkpoint_every=10_000,
                **budget,
            )
            steps = Steps(name)
            train(store, settings, dirs, config, steps)
            budgets[name] = {
                **budget,
                "steps": steps.steps,
                "median_step_s": statistics.median(s["seconds"] for s in steps.steps),
                "median_rollout_s": statistics.median(s["rollout_s"] for s in steps.steps),
                "calls_per_run": statistics.mean(s["calls_per_run"] for s in steps.steps),
                "answered": statistics.mean(s["answered"] for s in steps.steps),
            }

    fast = budgets.get("step")
    slow = budgets.get("research", fast)
    result = {
        "commit": commit(),
        "model": args.model or "default",
        "group_size": 4,
        "batch_size": 1,
        "steps_per_budget": args.steps,
        "budgets": budgets,
        "step_speedup": slow["median_step_s"] / fast["median_step_s"] if fast else None,
        "seconds_total": time.perf_counter() - started,
    }
    out = Path(args.out) if args.out else RESULTS / "grpo_step.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    header = ("budget", "rounds", "evidence", "step s", "rollout s", "calls")
    print("{:<9} {:>6} {:>8} {:>7} {:>9} {:>5}".format(*header))
    for name, row in budgets.items():
        print(
            f"{name:<9} {row['rollout_rounds']:>6} {row['rollout_evidence_tokens']:>8} "
            f"{row['median_step_s']:>7.1f} {row['median_rollout_s']:>9.1f} "
            f"{row['calls_per_run']:>5.2f}"
        )
    if fast and slow is not fast:
        print(f"median step: research / step budget = {result['step_speedup']:.2f}x")
    print(f"G=4, one question per step; wrote {out} (commit {result['commit']})")


if __name__ == "__main__":
    main()
