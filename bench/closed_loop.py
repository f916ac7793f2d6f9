"""The whole loop with a simulated rater, on HotpotQA dev-25 as a local library.

1. Train questions: Sleuth (default model) asks each over the library, then regenerates
   more answers from the same evidence. A simulated rater stars every answer by citation
   validity and gold-answer match, and compares the best and worst answer of each question.
2. Train: SFT on the well-rated answers, then DPO over the SFT adapter on the comparisons.
3. Held-out questions (never rated, never trained on, kept in a separate store): their
   writer prompts are answered by the base model, the SFT adapter and SFT+DPO, several
   samples each, and scored with the same checks.

    .venv/bin/python bench/closed_loop.py [--train 17] [--regenerate 3] [--samples 4]
        [--sft-steps 40] [--dpo-steps 30]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import hotpot

from sleuth.agent.assistant import Assistant
from sleuth.agent.events import AnswerDone, EvidenceChosen, RunFinished
from sleuth.agent.library import index_paths
from sleuth.agent.llama import LlamaCppLLM
from sleuth.agent.llm import Sampling
from sleuth.agent.models import open_llm
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings
from sleuth.train.checks import gated_reward, hard_checks
from sleuth.train.config import TrainConfig
from sleuth.train.trainer import train


class Quiet:
    def __init__(self, name: str):
        self.name = name

    def step(self, step, total, metrics):
        if step % 10 == 0 or step == total:
            shown = {
                k: round(v, 3)
                for k, v in metrics.items()
                if k in ("loss", "reward_margin", "accuracy")
            }
            print(f"  {self.name} step {step}/{total} {shown}", flush=True)

    def info(self, text):
        print("  " + text.replace("\n", "\n  "), flush=True)


def rate(text: str, evidence: list[dict], gold: str) -> tuple[int, int]:
    """The simulated user: (stars, thumb) from citation validity and gold-answer match.
    5: cites validly, well formed, grounded and correct; 4: cites validly and is grounded or
    correct; 3: cites validly in good form; 2: correct but uncited or malformed; 1: neither.
    Thumbs up from 3 stars: an answer a reader can check is what this user asks for first."""
    checked = hard_checks(text, evidence).checks
    correct = hotpot.answer_contains(text, gold)
    if checked["cites"] and checked["format"]:
        stars = 5 if checked["grounded"] and correct else 4 if checked["grounded"] or correct else 3
    else:
        stars = 2 if correct else 1
    return stars, (1 if stars >= 3 else -1)


async def collect(agent: Assistant, stream):
    evidence = answer = finished = None
    async for event in stream:
        if isinstance(event, EvidenceChosen):
            evidence = event
        elif isinstance(event, AnswerDone):
            answer = event
        elif isinstance(event, RunFinished):
            finished = event
    return evidence, answer, finished


def scores(answers: list[tuple[str, list[dict], str]]) -> dict:
    """Rates over (answer, evidence, gold) triples."""
    cites = grounded = correct = fmt = 0
    valid = dangling = 0
    rewards = []
    for text, evidence, gold in answers:
        checked = hard_checks(text, evidence)
        cites += checked.checks["cites"]
        grounded += checked.checks["grounded"]
        fmt += checked.checks["format"]
        correct += hotpot.answer_contains(text, gold)
        valid += checked.verification["citations"]
        dangling += checked.verification["dangling_removed"]
        rewards.append(gated_reward(checked))
    n = len(answers)
    return {
        "n": n,
        "cites": cites / n,
        "grounded": grounded / n,
        "format": fmt / n,
        "correct": correct / n,
        "validity": valid / (valid + dangling) if valid + dangling else float("nan"),
        "reward": statistics.mean(rewards),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=17, help="questions used for feedback")
    parser.add_argument("--regenerate", type=int, default=3, help="extra answers per question")
    parser.add_argument(
        "--samples", type=int, default=4, help="sampled answers per held-out prompt"
    )
    parser.add_argument("--sft-steps", type=int, default=40)
    parser.add_argument("--dpo-steps", type=int, default=30)
    parser.add_argument(
        "--workdir", help="keep the work here; a second run reuses its asked and rated answers"
    )
    args = parser.parse_args()
    questions = hotpot.load(hotpot.DEV25)
    train_q, held_q = questions[: args.train], questions[args.train :]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir) if args.workdir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        reuse = (root / "feedback.done").exists()
        if not reuse:
            for stale in ("data", "heldout.db", "heldout.db-wal", "heldout.db-shm"):
                target = root / stale
                shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        hotpot.write_library(questions, root / "library")
        dirs = Dirs(root / "data", root / "config", root / "cache")
        settings = load_settings(None, env={}, flags={"search.backend": "none"})
        store = Store.open(dirs.database)
        held_store = Store.open(root / "heldout.db")
        index_paths(store, [root / "library"])
        index_paths(held_store, [root / "library"])
        llm, info = open_llm(settings, dirs, store)
        agent = Assistant(store, llm, info, settings)
        # The held-out store has its own (empty) registry: attribute its answers to no row.
        held_agent = Assistant(held_store, llm, dataclasses.replace(info, model_id=None), settings)

        print(f"1. feedback: {len(train_q)} questions x {1 + args.regenerate} answers", flush=True)
        rated = []
        for number, question in enumerate([] if reuse else train_q, start=1):
            evidence_event, answer, finished = await_(
                collect(agent, agent.ask(question.question, seed=number))
            )
            run_ids = [finished.run_id]
            for extra in range(args.regenerate):
                _, _, again = await_(
                    collect(agent, agent.regenerate(finished.run_id, seed=1000 * number + extra))
                )
                run_ids.append(again.run_id)
            stars_of = {}
            for run_id in run_ids:
                stored = store.runs.answer_for_run(run_id)
                if stored is None:
                    continue
                evidence = store.runs.evidence(run_id)
                evidence = [asdict(e) for e in evidence]
                stars, thumb = rate(stored.text, evidence, question.answer)
                store.feedback.rate(stored.id, stars=stars, thumb=thumb)
                stars_of[stored.id] = stars
                rated.append((stored.text, evidence, question.answer))
            best, worst = max(stars_of, key=stars_of.get), min(stars_of, key=stars_of.get)
            if stars_of[best] > stars_of[worst]:
                store.feedback.compare(best, worst)
            print(
                f"  {number}/{len(train_q)} stars {sorted(stars_of.values(), reverse=True)}",
                flush=True,
            )
        (root / "feedback.done").touch()
        if reuse:  # the rated answers of the earlier run
            gold = {" ".join(q.question.split()): q.answer for q in train_q}
            for item in store.feedback.rated_answers():
                question = store.runs.answer(item.answer_id).question
                evidence = [asdict(e) for e in store.runs.evidence(item.run_id)]
                rated.append((item.text, evidence, gold[" ".join(question.split())]))
        counts = store.feedback.counts()
        print(f"  feedback: {counts}")

        print(
            f"2. held-out prompts: {len(held_q)} questions (separate store, never rated)",
            flush=True,
        )
        held = []
        for number, question in enumerate(held_q, start=1):
            asked = " ".join(question.question.split())  # the agent normalises whitespace
            turn = _find_turn(held_store, asked)
            if turn is None:
                await_(collect(held_agent, held_agent.ask(question.question, seed=number)))
                turn = _find_turn(held_store, asked)
            stored = held_store.runs.answers_for_turn(turn.id)[0]
            evidence = [asdict(e) for e in held_store.runs.evidence(stored.run_id)]
            held.append((stored.messages, evidence, question.answer))
        llm.close()

        print("3. training", flush=True)
        sft = train(
            store,
            settings,
            dirs,
            TrainConfig(algo="sft", steps=args.sft_steps, eval_limit=4),
            Quiet("sft"),
        )
        store.registry.activate(sft.model_id)
        dpo = train(
            store,
            settings,
            dirs,
            TrainConfig(algo="dpo", steps=args.dpo_steps, eval_limit=4),
            Quiet("dpo"),
        )
        store.registry.activate(store.registry.model(sft.model_id).parent_id)

        print("4. evaluation on held-out prompts", flush=True)
        base_path = Path(info.base_path)
        results = {}
        for name, adapter in [
            ("base", None),
            ("sft", sft.adapter_path),
            ("sft+dpo", dpo.adapter_path),
        ]:
            model = LlamaCppLLM(base_path, adapter_path=adapter, n_ctx=4096)
            answers = []
            for index, (messages, evidence, gold) in enumerate(held):
                greedy = model.chat(messages, Sampling(temperature=0.0, max_tokens=200)).text
                answers.append((greedy, evidence, gold))
                for sample in range(args.samples):
                    text = model.chat(
                        messages,
                        Sampling(temperature=0.7, max_tokens=200, seed=index * 100 + sample),
                    ).text
                    answers.append((text, evidence, gold))
            model.close()
            results[name] = scores(answers)
        train_scores = scores(rated)

    print()
    print(
        f"feedback answers (base model, {train_scores['n']} rated): "
        f"cites {train_scores['cites']:.2f}, "
        f"grounded {train_scores['grounded']:.2f}, correct {train_scores['correct']:.2f}"
    )
    print(
        f"held-out: {len(held)} questions x {1 + args.samples} answers = "
        f"{results['base']['n']} answers per model (greedy + {args.samples} samples at T=0.7)"
    )
    print(
        f"{'model':<8} {'cites':>6} {'grounded':>9} {'validity':>9} {'correct':>8} "
        f"{'format':>7} {'reward':>7}"
    )
    for name, r in results.items():
        print(
            f"{name:<8} {r['cites']:6.2f} {r['grounded']:9.2f} {r['validity']:9.2f} "
            f"{r['correct']:8.2f} "
            f"{r['format']:7.2f} {r['reward']:7.3f}"
        )
    print(
        "trainer's own verdicts (store held-out split): "
        f"sft improved={sft.evaluation.improved} (n={sft.evaluation.n}), "
        f"dpo improved={dpo.evaluation.improved} (n={dpo.evaluation.n})"
    )
    print(f"total {time.perf_counter() - started:.0f} s")


def _find_turn(store: Store, question: str):
    for session in store.runs.history(limit=1000):
        for turn in session.turns:
            if turn.question == question:
                return turn
    return None


_LOOP = asyncio.new_event_loop()


def await_(coroutine):
    """Run one research call on the benchmark's event loop (the loop outlives the calls)."""
    return _LOOP.run_until_complete(coroutine)


if __name__ == "__main__":
    main()
