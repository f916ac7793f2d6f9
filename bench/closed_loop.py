"""The whole loop with a simulated user, on HotpotQA dev-25 as a local library, judged on
questions held out from training by correctness first.

1. Feedback: Sleuth (default model) researches each training question over the library and
   regenerates more answers from the same evidence. The simulated user rates as a person would:
   is it right (the gold answer is in it), then does it cite and stand on its sources; compares
   the best and worst answer of each question; and corrects the worst wrong answer when a
   passage holds the gold answer (the answer first, then that passage's sentence, cited).
2. Held-out questions (never rated, never trained on) are researched once by the base model
   in a separate store; their writer prompts are what every model answers.
3. Training, each over the one before: SFT (good answers and corrections), DPO (corrections,
   comparisons, rating gaps), GRPO over whole runs of the agent (plan, search the library,
   write), rewarded by the hard checks and token F1 against the gold answers of the training
   questions (a question file, as a user may give one).
4. Evaluation: every model answers every held-out prompt greedily and with --samples sampled
   answers; EM and F1 of the answer's first sentence, contains-gold, citation validity and
   support are reported apart from the reward, per question averaged, with the paired
   bootstrap's 95% interval of each model's difference to base (resampling questions).

    .venv/bin/python bench/closed_loop.py [--train 12] [--regenerate 3] [--samples 4]
        [--sft-steps 30] [--dpo-steps 20] [--grpo-steps 4] [--model NAME] [--out FILE]

Writes bench/results/closed_loop.json (or --out) with the commit it ran on.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import hotpot

from sleuth.agent.models.catalog import open_llm
from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.agent.models.llm import Sampling
from sleuth.agent.research.assistant import Assistant
from sleuth.agent.research.events import AnswerDone, EvidenceChosen, RunFinished
from sleuth.agent.text import sentences
from sleuth.agent.tools.library import index_paths
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings
from sleuth.train.checks import correctness, gated_reward, hard_checks, normalize_answer
from sleuth.train.config import TrainConfig
from sleuth.train.trainer import TrainError, train
from sleuth.train.verdict import paired_bootstrap

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("contains", "f1", "em", "citation_validity", "support", "reward")


class Quiet:
    def __init__(self, name: str):
        self.name = name

    def step(self, step, total, metrics):
        keys = ("loss", "reward", "answered", "reward_margin", "calls_per_run", "seconds")
        shown = {k: round(v, 3) for k, v in metrics.items() if k in keys}
        print(f"  {self.name} step {step}/{total} {shown}", flush=True)

    def info(self, text):
        print("  " + text.replace("\n", "\n  "), flush=True)


# -- the simulated user --------------------------------------------------------------------------


def rate(text: str, evidence: list[dict], gold: str) -> tuple[int, int]:
    """(stars, thumb), correctness first: 5 right, cited and grounded; 4 right and cited; 3 right
    but uncited; 2 wrong but citing what supports it; 1 wrong. Thumbs up only when right."""
    checked = hard_checks(text, evidence).checks
    right = correctness(text, gold).contains > 0
    if right:
        stars = 5 if checked["cites"] and checked["grounded"] else 4 if checked["cites"] else 3
    else:
        stars = 2 if checked["cites"] and checked["grounded"] else 1
    return stars, 1 if right else -1


def correction(evidence: list[dict], gold: str) -> str | None:
    """What a person who knows the answer writes: the answer, then the sentence of a passage
    that states it, both cited. None where no passage holds it (or for yes/no answers, which
    no one passage states)."""
    if normalize_answer(gold) in ("yes", "no"):
        return None
    for number, item in enumerate(evidence, start=1):
        for sentence in sentences(item["text"]):
            if f" {normalize_answer(gold)} " in f" {normalize_answer(sentence)} ":
                return f"{gold} [{number}]. {sentence.strip()} [{number}]"
    return None


# -- scoring -----------------------------------------------------------------------------------


def answer_scores(text: str, evidence: list[dict], gold: str) -> dict[str, tuple[float, float]]:
    """One answer's (numerator, denominator) per metric."""
    checked = hard_checks(text, evidence)
    right = correctness(text, gold)
    return {
        "contains": (right.contains, 1),
        "f1": (right.f1, 1),
        "em": (right.em, 1),
        "citation_validity": checked.validity,
        "support": checked.support,
        "reward": (gated_reward(checked, f1=right.f1), 1),
    }


def per_question(answers: list[list[dict]]) -> dict[str, list[tuple[float, float]]]:
    """Each question's metric parts, summed over its answers (the bootstrap resamples
    questions: a question's answers are not independent)."""
    out = {name: [] for name in METRICS}
    for scored in answers:
        for name in METRICS:
            out[name].append((sum(s[name][0] for s in scored), sum(s[name][1] for s in scored)))
    return out


def mean(values: list[tuple[float, float]]) -> float | None:
    """A metric's value over its (numerator, denominator) parts; None without any."""
    den = sum(d for _, d in values)
    return round(sum(n for n, _ in values) / den, 4) if den else None


def summary(parts: dict[str, list[tuple[float, float]]]) -> dict[str, float | None]:
    out = {name: mean(values) for name, values in parts.items()}
    out["answers"] = sum(d for _, d in parts["contains"])
    return out


def difference(base: dict, model: dict, metrics=METRICS) -> dict:
    """Each metric's paired-bootstrap difference of `model` to `base` (a metric without
    paired parts is left out)."""
    out = {}
    for name in metrics:
        diff = paired_bootstrap(base[name], model[name], seed=0)
        if diff is not None:
            out[name] = {"mean": round(diff.mean, 4), "ci95": [round(x, 4) for x in diff.ci95]}
    return out


# -- the loop ----------------------------------------------------------------------------------


async def collect(stream):
    evidence = answer = finished = None
    async for event in stream:
        if isinstance(event, EvidenceChosen):
            evidence = event
        elif isinstance(event, AnswerDone):
            answer = event
        elif isinstance(event, RunFinished):
            finished = event
    return evidence, answer, finished


def library_home(root: Path, model: str | None):
    """A Sleuth home under `root` with dev-25's paragraphs indexed as its library, web search
    off, and `model` (an alias or path; None: the default): (dirs, settings, store)."""
    hotpot.write_library(hotpot.load(hotpot.DEV25), root / "library")
    dirs = Dirs(root / "data", root / "config", root / "cache")
    flags = {"search.backend": "none"}
    if model:
        flags["model.path"] = model
    settings = load_settings(None, env={}, flags=flags)
    store = Store.open(dirs.database)
    index_paths(store, [root / "library"])
    return dirs, settings, store


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=12, help="questions used for feedback")
    parser.add_argument("--held", type=int, help="held-out questions (default: all the rest)")
    parser.add_argument("--regenerate", type=int, default=3, help="extra answers per question")
    parser.add_argument("--samples", type=int, default=4, help="sampled answers per prompt")
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--dpo-steps", type=int, default=20)
    parser.add_argument("--grpo-steps", type=int, default=4)
    parser.add_argument("--model", help="a model alias or GGUF path (default: Sleuth's default)")
    parser.add_argument("--workdir", help="keep the work here (for inspection)")
    parser.add_argument("--out", help="where to write the JSON (default bench/results/...)")
    args = parser.parse_args()
    questions = hotpot.load(hotpot.DEV25)
    # Split by question, interleaved so both sides hold bridge and comparison questions.
    train_q = [q for i, q in enumerate(questions) if i % 2 == 0][: args.train]
    held_q = [q for q in questions if q not in train_q][: args.held]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir or tmp)
        root.mkdir(parents=True, exist_ok=True)
        dirs, settings, store = library_home(root, args.model)
        held_store = Store.open(root / "heldout.db")
        index_paths(held_store, [root / "library"])
        llm, info = open_llm(settings, dirs, store)
        agent = Assistant(store, llm, info, settings)
        held_agent = Assistant(held_store, llm, dataclasses.replace(info, model_id=None), settings)
        run = asyncio.new_event_loop().run_until_complete

        print(f"1. feedback: {len(train_q)} questions x {1 + args.regenerate} answers", flush=True)
        corrected = 0
        for number, question in enumerate(train_q, start=1):
            _, _, finished = run(collect(agent.ask(question.question, seed=number)))
            run_ids = [finished.run_id]
            for extra in range(args.regenerate if finished.answer_id else 0):
                _, _, again = run(
                    collect(agent.regenerate(finished.run_id, seed=1000 * number + extra))
                )
                run_ids.append(again.run_id)
            stars_of, evidence = {}, []
            for run_id in run_ids:
                stored = store.runs.answer_for_run(run_id)
                if stored is None:
                    continue
                evidence = [asdict(e) for e in store.runs.evidence(run_id)]
                stars, thumb = rate(stored.text, evidence, question.answer)
                store.feedback.rate(stored.id, stars=stars, thumb=thumb)
                stars_of[stored.id] = stars
            if stars_of:
                best, worst = max(stars_of, key=stars_of.get), min(stars_of, key=stars_of.get)
                if stars_of[best] > stars_of[worst]:
                    store.feedback.compare(best, worst)
                fix = correction(evidence, question.answer) if stars_of[worst] <= 2 else None
                if fix:
                    store.feedback.rate(worst, correction=fix)
                    corrected += 1
            print(f"  {number}/{len(train_q)} stars {sorted(stars_of.values())}", flush=True)
        counts = store.feedback.counts()
        print(f"  feedback: {counts}", flush=True)

        print(f"2. held-out: {len(held_q)} questions (separate store, never rated)", flush=True)
        held = []
        for number, question in enumerate(held_q, start=1):
            _, _, finished = run(collect(held_agent.ask(question.question, seed=number)))
            stored = held_store.runs.answer_for_run(finished.run_id)
            if stored is not None:  # a run that found nothing has no writer prompt
                evidence = [asdict(e) for e in held_store.runs.evidence(stored.run_id)]
                held.append((stored.messages, evidence, question.answer))
        llm.close()
        print(f"  {len(held)} of {len(held_q)} held-out questions have a writer prompt", flush=True)

        print("3. training", flush=True)
        references = root / "train-questions.jsonl"
        references.write_text(
            "".join(
                json.dumps({"question": q.question, "answer": q.answer}) + "\n" for q in train_q
            )
        )
        adapters: dict[str, str | None] = {"base": None}
        timings = {}
        plan = [
            ("sft", TrainConfig(algo="sft", steps=args.sft_steps, eval_limit=2)),
            ("+dpo", TrainConfig(algo="dpo", steps=args.dpo_steps, eval_limit=2)),
            (
                "+grpo",
                TrainConfig(
                    algo="grpo",
                    steps=args.grpo_steps,
                    batch_size=1,
                    group_size=4,
                    grpo_over="runs",
                    references=str(references),
                    eval_limit=2,
                ),
            ),
        ]
        for name, config in plan:
            if config.steps < 1:
                continue
            t0 = time.perf_counter()
            try:
                result = train(store, settings, dirs, config, Quiet(name))
            except TrainError as exc:  # too little feedback for this stage: say so, go on
                print(f"  {name}: skipped: {exc}", flush=True)
                continue
            timings[name] = round(time.perf_counter() - t0, 1)
            adapters[name] = result.adapter_path
            store.registry.activate(result.model_id)  # the next stage trains over this one

        print("4. evaluation on held-out prompts", flush=True)
        base_path = Path(info.base_path)
        parts, examples = {}, {}
        for name, adapter in adapters.items():
            model = LlamaCppLLM(base_path, adapter_path=adapter, n_ctx=4096)
            scored = []
            for index, (messages, evidence, gold) in enumerate(held):
                texts = [model.chat(messages, Sampling(temperature=0.0, max_tokens=200)).text]
                texts += [
                    model.chat(
                        messages,
                        Sampling(temperature=0.7, max_tokens=200, seed=index * 100 + s),
                    ).text
                    for s in range(args.samples)
                ]
                scored.append([answer_scores(t, evidence, gold) for t in texts])
                if index < 2:
                    examples.setdefault(name, []).append({"gold": gold, "greedy": texts[0][:300]})
            model.close()
            parts[name] = per_question(scored)
            print(f"  {name}: {summary(parts[name])}", flush=True)

    models = {name: summary(p) for name, p in parts.items()}
    diffs = {name: difference(parts["base"], p) for name, p in parts.items() if name != "base"}
    trained = [name for name in models if name != "base"]
    best = max(
        trained, key=lambda n: (models[n]["contains"] or 0, models[n]["f1"] or 0), default=None
    )
    result = {
        "commit": commit(),
        "command": "python bench/closed_loop.py " + " ".join(sys.argv[1:]),
        "model": info.name,
        "n_questions": len(held),
        "n_train_questions": len(train_q),
        "answers_per_question": 1 + args.samples,
        "feedback": asdict(counts),
        "corrections": corrected,
        "models": models,
        "best": best,
        "diff_vs_base": diffs[best] if best else {},
        "diffs_vs_base": diffs,
        "training_seconds": timings,
        "seconds_total": round(time.perf_counter() - started, 1),
        "examples": examples,
    }
    out = Path(args.out) if args.out else RESULTS / f"closed_loop{_suffix(args.model)}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(
        f"held-out: {len(held)} questions x {1 + args.samples} answers per model "
        f"(greedy + {args.samples} at T=0.7); trained on {len(train_q)} questions"
    )
    print(f"{'model':<8} " + " ".join(f"{m:>17}" for m in METRICS))
    for name, row in models.items():
        cells = []
        for metric in METRICS:
            value = row[metric]
            cell = "-" if value is None else f"{value:.3f}"
            if name != "base" and metric in diffs[name]:
                lo, hi = diffs[name][metric]["ci95"]
                cell += f" [{lo:+.2f},{hi:+.2f}]"
            cells.append(f"{cell:>17}")
        print(f"{name:<8} " + " ".join(cells))
    print(f"best trained: {best}; wrote {out} (commit {result['commit']})")
    print(f"total {result['seconds_total']:.0f} s")


def _suffix(model: str | None) -> str:
    """The result file's suffix: "-qwen2.5-0.5b" for that alias, "-name" for name.gguf."""
    if not model:
        return ""
    name = Path(model).stem if model.lower().endswith(".gguf") else Path(model).name
    return "-" + re.sub(r"[^A-Za-z0-9.]+", "-", name)


if __name__ == "__main__":
    main()
