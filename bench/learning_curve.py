"""How many ratings until it pays: the learning curve of a model, on HotpotQA dev-150.

dev-150 is split by question (every third held out): a learning pool and the held-out
questions. A simulated user asks the pool's questions one after another, as a person would:

  - asks, and regenerates once (a second answer from the same evidence, to compare);
  - rates each answer: right when its short answer matches the gold (token F1 >= 0.5, or the
    yes/no word), then by its citations; thumbs up only when right;
  - prefers the better of the two (a comparison) when they differ;
  - corrects a wrong answer with the gold answer when a passage holds it.

After the first 10, 20, 40 and 80 questions (--budgets) the store is copied; each copy is
trained from the same base with --pipeline: SFT on the good answers and corrections (the
default), then, with "sft,dpo", DPO over it on the comparisons, corrections and rating gaps;
"kto" learns from each rated answer alone, good or bad, against a KL reference point;
"grpo" samples G short answers to each stored reader prompt and rewards them by F1 against
the question's reference (the user's correction, or the answer they rated well). SFT is the
default because it is what these 2 cores afford with Qwen2.5 0.5B: an SFT step of 4 reader
prompts takes about 25 s, a DPO pair costs two sequences and a reference pass. The
held-out questions are researched once by the base model; every model (base and one per
budget) answers those same prompts greedily, as the app does (the short answer held to the
evidence), and is scored on EM and F1 of the short answer, contains (its own words), and
citation validity, with the paired bootstrap's 95% interval of its difference to base, and
how many held-out answers score better, worse, or level with base, and each answer that
changed (a budget's "moved": the gold, base's short answer and the model's). With --fit, base and
each adapter also answer the reader prompts that budget trained on (its pool questions, on the
trainer's side of its own split): whether training learned what it was shown, apart from
whether that carried over to questions it never saw. With --dev25, base and each adapter also
answer dev-25's 25 questions (none in dev-150), researched once by the base model over their
own library: the reader's prompt and decoding were chosen on dev-150, the 50 held out among
them, so dev-25 asks whether base's lead on near ties is that choice's.

    .venv/bin/python bench/learning_curve.py [--model NAME] [--budgets 10,20,40,80]
        [--held 50] [--pipeline sft|dpo|kto|grpo|sft,dpo] [--sft-epochs 1] [--dpo-epochs 1]
        [--kto-epochs 1] [--grpo-epochs 1] [--lr X] [--beta B] [--dpo-loss sigmoid|ipo]
        [--dpo-sft-weight W] [--grpo-group G] [--seed S] [--fit] [--dev25]
        [--workdir DIR [--reuse]] [--out FILE]

With --reuse, an earlier run's --workdir (its held-out research and feedback snapshots) is
trained and evaluated again, for another pipeline or schedule, without the 13 minutes of
research and rating.

Writes bench/results/learning_curve-lora.json (or --out; learning_curve.json is the reward
model's curve, bench/reward_curve.py), a .svg plot and a .txt beside it, again
after each budget (`"complete": false` until the last), so a long run that is stopped keeps
the budgets it finished.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import hotpot
from research_quality import yes_no
from simulate import collect, commit, difference, mean

from sleuth.agent.models.catalog import DEFAULT_MODEL, open_llm, resolve_model_path
from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.agent.research.assistant import Assistant
from sleuth.agent.tools.library import index_paths
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings
from sleuth.train.checks import hard_checks, normalize_answer
from sleuth.train.config import ALGORITHMS, TrainConfig
from sleuth.train.datasets import Prompt, load_feedback, question_of
from sleuth.train.evaluate import read_one
from sleuth.train.trainer import TrainError, train

RESULTS = Path(__file__).resolve().parent / "results"
METRICS = ("em", "f1", "contains", "citation_validity")


class Quiet:
    def __init__(self, name: str):
        self.name = name

    def step(self, step, total, metrics):
        keys = ("loss", "reward_margin", "accuracy", "seconds")
        shown = {k: round(v, 3) for k, v in metrics.items() if k in keys}
        print(f"    {self.name} step {step}/{total} {shown}", flush=True)

    def info(self, text):
        print("    " + text.replace("\n", "\n    "), flush=True)


def held_out(questions: list, n: int) -> list:
    """dev-150's held-out questions: every third, the first `n` of them (the rest is the pool)."""
    return [q for i, q in enumerate(questions) if i % 3 == 2][:n]


def workdir_dirs(root: Path, home: Path) -> Dirs:
    """The Sleuth directories of one store under a workdir `root` (`home`: the feedback's, or a
    budget's), all sharing the workdir's cache (models, adapters for rollouts)."""
    return Dirs(home / "data", home / "config", root / "cache")


# -- the simulated user --------------------------------------------------------------------------


def judge(short: str | None, text: str, evidence: list[dict], gold: str) -> dict:
    """The short answer's scores against the gold (a yes/no question by its word alone)."""
    short = short or ""
    polar = normalize_answer(gold) in ("yes", "no")
    if polar:
        em = f1 = float(yes_no(short) == normalize_answer(gold))
    else:
        em = float(hotpot.exact_match(short, gold)) if short else 0.0
        f1 = hotpot.f1(short, gold) if short else 0.0
    contains = float(bool(short) and hotpot.answer_contains(short, gold))
    return {
        "em": (em, 1),
        "f1": (f1, 1),
        "contains": (contains if not polar else em, 1),
        "citation_validity": hard_checks(text, evidence).validity,
    }


def rating(scores: dict, text: str, evidence: list[dict]) -> tuple[int, int]:
    """(stars, thumb): right first (F1 >= 0.5), then cited and grounded."""
    checks = hard_checks(text, evidence).checks
    right = scores["f1"][0] >= 0.5
    cited = checks["cites"] and checks["grounded"]
    if right:
        return (5 if cited else 4), 1
    return (2 if cited else 1), -1


def correction(evidence: list[dict], gold: str) -> str | None:
    """What a person who knows the answer writes: the gold answer, where a passage holds it
    (a yes/no answer too: it is the answer's word)."""
    if normalize_answer(gold) in ("yes", "no"):
        return gold
    for item in evidence:
        if hotpot.answer_contains(f"{item.get('title') or ''} {item['text']}", gold):
            return gold
    return None


# -- stages --------------------------------------------------------------------------------------


def give_feedback(agent, store, questions, budgets, snapshots: Path, run) -> list[dict]:
    """Ask, regenerate, rate, compare and correct each question; copy the store at each
    budget. Returns what happened to each question."""
    log = []
    for number, question in enumerate(questions, start=1):
        _, _, first = run(collect(agent.ask(question.question, seed=number)))
        run_ids = [first.run_id]
        if first.answer_id:
            _, _, again = run(collect(agent.regenerate(first.run_id, seed=1000 + number)))
            run_ids.append(again.run_id)
        stars = {}
        for run_id in run_ids:
            answer = store.runs.answer_for_run(run_id)
            if answer is None:
                continue
            evidence = [asdict(e) for e in store.runs.evidence(run_id)]
            scores = judge(answer.short_answer, answer.text, evidence, question.answer)
            stars[answer.id], thumb = rating(scores, answer.text, evidence)
            store.feedback.rate(answer.id, stars=stars[answer.id], thumb=thumb)
            if thumb < 0 and (fix := correction(evidence, question.answer)):
                store.feedback.rate(answer.id, correction=fix)
        if len(stars) == 2 and len(set(stars.values())) == 2:
            best, worst = sorted(stars, key=stars.get, reverse=True)
            store.feedback.compare(best, worst)
        log.append({"question": number, "stars": sorted(stars.values())})
        print(f"  {number}/{len(questions)} stars {sorted(stars.values())}", flush=True)
        if number in budgets:
            shutil.copyfile(store.path, snapshots / f"feedback-{number}.db")
    return log


def held_out_prompts(agent, store, questions, run) -> list[tuple[Prompt, str]]:
    """The base model's research on each held-out question: its reader prompt, evidence and
    the gold answer (a run that found nothing has no prompt)."""
    prompts = []
    for number, question in enumerate(questions, start=1):
        _, _, finished = run(collect(agent.ask(question.question, seed=number)))
        answer = store.runs.answer_for_run(finished.run_id)
        if answer is not None:
            evidence = [asdict(e) for e in store.runs.evidence(answer.run_id)]
            prompts.append((Prompt(answer.messages, evidence, reads=True), question.answer))
    return prompts


def stored_prompts(store, questions) -> list[tuple[Prompt, str]]:
    """The held-out prompts a previous run of this bench researched (its heldout.db), in the
    questions' order: what `held_out_prompts` returned then, without researching again."""
    by_question = {}
    for question, run in hotpot.stored_runs(store):
        answer = store.runs.answer_for_run(run.id)
        if answer is not None:
            evidence = [asdict(e) for e in store.runs.evidence(run.id)]
            by_question[question] = Prompt(answer.messages, evidence, reads=True)
    return [
        (by_question[key], q.answer)
        for q in questions
        if (key := hotpot.asked(q.question)) in by_question
    ]


def unseen_prompts(root: Path, settings, dirs) -> list[tuple[Prompt, str]]:
    """dev-25's questions researched by the base model over their own library, kept in
    <root>/dev25.db (marked complete by dev25.done): questions the reader was not chosen on."""
    questions = hotpot.load(hotpot.DEV25)
    path, done = root / "dev25.db", root / "dev25.done"
    if not done.is_file():
        for stale in root.glob("dev25.db*"):  # a research that was stopped: start again
            stale.unlink()
        hotpot.write_library(questions, root / "library-dev25")
        store = Store.open(path)
        index_paths(store, [root / "library-dev25"])
        llm, info = open_llm(settings, dirs, store)
        try:
            run = asyncio.new_event_loop().run_until_complete
            held_out_prompts(Assistant(store, llm, info, settings), store, questions, run)
        finally:
            llm.close()
            store.close()
        done.touch()
    store = Store.open(path)
    try:
        return stored_prompts(store, questions)
    finally:
        store.close()


def trained_prompts(snapshot: Path, questions) -> list[tuple[Prompt, str]]:
    """The reader prompts a budget's training saw (the trainer's side of its own split), each
    with its question's gold answer: what --fit answers to tell learning from transfer."""
    gold = {hotpot.asked(q.question): q.answer for q in questions}
    store = Store.open(snapshot, migrate=False)
    try:
        prompts = load_feedback(store, calls="writer").prompts
    finally:
        store.close()
    out = []
    for prompt in prompts:
        key = hotpot.asked(question_of(prompt.messages))
        if prompt.reads and key in gold:
            out.append((prompt, gold[key]))
    return out


def changed(base: list[tuple[float, int]], model: list[tuple[float, int]]) -> dict[str, int]:
    """How many answers a model scores above, below and level with base (F1 parts, paired)."""
    pairs = [(b[0], m[0]) for b, m in zip(base, model, strict=True)]
    return {
        "better": sum(m > b for b, m in pairs),
        "worse": sum(m < b for b, m in pairs),
        "same": sum(m == b for b, m in pairs),
    }


def versus(base: dict, model: dict) -> dict:
    """Base and a model on the same prompts (each metric's parts): their means, the paired
    difference, and how many answers moved."""
    return {
        "base": {name: mean(base[name]) for name in METRICS},
        "model": {name: mean(model[name]) for name in METRICS},
        "diff_vs_base": difference(base, model, METRICS),
        "answers_vs_base": changed(base["f1"], model["f1"]),
    }


def joined(runs: list[dict]) -> dict:
    """Several evaluations' metric parts as one (their questions together, in order)."""
    return {name: sum((run["parts"][name] for run in runs), []) for name in METRICS}


def reused_sets(root: Path, held: int, dev25: bool) -> tuple[dict[str, list], Path]:
    """What a workdir an earlier run kept gives the default model to answer: its held-out
    prompts (and, with `dev25`, dev-25's, which it must have researched), and base's path."""
    settings = load_settings(None, env={}, flags={"search.backend": "none"})
    dirs = workdir_dirs(root, root / "feedback")
    store = Store.open(root / "heldout.db")
    try:
        sets = {"held_out": stored_prompts(store, held_out(hotpot.load(hotpot.DEV150), held))}
    finally:
        store.close()
    if dev25:
        sets["dev25"] = unseen_prompts(root, settings, dirs)
    return sets, resolve_model_path(settings.model.path, dirs)


def train_budget(
    root: Path,
    snapshot: Path,
    settings,
    dirs_of,
    pipeline,
    epochs,
    options: dict,
    dpo_options: dict,
) -> dict:
    """The pipeline's algorithms in order from the base, each over the one before, on one
    budget's feedback: adapter path and stage times. `options`: TrainConfig fields every
    algorithm takes (lr, beta, seed, group_size; None: the algorithm's default);
    `dpo_options`: DPO's own (sft_weight, dpo_loss), left at their defaults for the others."""
    if root.exists():  # this pipeline's earlier try: its database's WAL must not meet the copy
        print(f"    replacing {root}", flush=True)
        shutil.rmtree(root)
    dirs = dirs_of(root)
    dirs.data.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(snapshot, dirs.database)
    store = Store.open(dirs.database)
    counts = store.feedback.counts()
    out = {"feedback": asdict(counts), "seconds": {}, "steps": {}, "adapter": None}
    feedback = load_feedback(store, calls="writer")
    batch_of = {"sft": 4, "dpo": 2, "kto": 2, "grpo": 2}
    for algo in pipeline:
        examples, batch = feedback.count(algo), batch_of[algo]
        if not examples:
            print(f"    {algo}: skipped: no examples in this budget's feedback", flush=True)
            continue
        steps = max(1, round(epochs[algo] * examples / batch))
        config = TrainConfig(
            algo=algo,
            steps=steps,
            batch_size=batch,
            calls="writer",
            eval_limit=2,
            grpo_over="answers",  # the reader's call on its stored prompt, G short answers
            **options,
            **(dpo_options if algo == "dpo" else {}),
        )
        started = time.perf_counter()
        try:
            result = train(store, settings, dirs, config, Quiet(f"{algo}"))
        except TrainError as exc:
            print(f"    {algo}: skipped: {exc}", flush=True)
            continue
        out["seconds"][algo] = round(time.perf_counter() - started, 1)
        out["steps"][algo] = steps
        out["adapter"] = result.adapter_path
        store.registry.activate(result.model_id)  # the next algorithm trains over this one
    store.close()
    return out


def evaluate(base_path: Path, adapter, prompts) -> dict:
    """Every held-out prompt answered greedily as the app answers: each metric's parts, and
    each answer (its gold and short answer)."""
    llm = LlamaCppLLM(base_path, adapter_path=adapter, n_ctx=4096)
    parts = {name: [] for name in METRICS}
    answers = []
    try:
        for prompt, gold in prompts:
            read = read_one(llm, prompt, seed=0)
            short = read.short
            scores = judge(short, read.text, prompt.evidence, gold)
            for name in METRICS:
                parts[name].append(scores[name])
            answers.append({"gold": gold, "short": short})
    finally:
        llm.close()
    return {"parts": parts, "answers": answers}


def moved(base: dict, model: dict) -> list[dict]:
    """Each answer the model gives differently from base: which prompt (its place among the
    evaluated ones), the gold, both short answers and both F1s; what an answer-by-answer look
    reads, and what tells runs that lose the same answers from runs that lose others."""
    out = []
    for number, (before, after) in enumerate(zip(base["answers"], model["answers"], strict=True)):
        if before["short"] != after["short"]:
            out.append(
                {
                    "prompt": number,
                    "gold": before["gold"],
                    "base": before["short"],
                    "model": after["short"],
                    "f1": [base["parts"]["f1"][number][0], model["parts"]["f1"][number][0]],
                }
            )
    return out


# -- the report ----------------------------------------------------------------------------------


def plot(report: dict, path: Path) -> None:
    """The curve as an SVG: F1 and EM differences to base, with their 95% intervals."""
    budgets = report["budgets"]
    width, height, left, top = 520, 300, 60, 30
    xs = [b["ratings"] for b in budgets]
    values = [v for b in budgets for m in ("f1", "em") for v in b["diff_vs_base"][m]["ci95"]]
    low, high = min(values + [0.0]) - 0.02, max(values + [0.0]) + 0.02

    def x(v):
        return left + (width - left - 20) * (xs.index(v) + 0.5) / len(xs)

    def y(v):
        return top + (height - top - 40) * (high - v) / (high - low)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="16">{report["model"]}: held-out difference to base '
        f"(n={report['n_questions']}, 95% CI)</text>",
        f'<line x1="{left}" x2="{width - 20}" y1="{y(0):.1f}" y2="{y(0):.1f}" stroke="#999"/>',
    ]
    for tick in (low, 0.0, high):
        parts.append(f'<text x="5" y="{y(tick) + 4:.1f}">{tick:+.2f}</text>')
    for metric, color, shift in (("f1", "#1f77b4", -6), ("em", "#d62728", 6)):
        points = []
        for b in budgets:
            d = b["diff_vs_base"][metric]
            cx = x(b["ratings"]) + shift
            lo, hi = d["ci95"]
            parts.append(
                f'<line x1="{cx:.1f}" x2="{cx:.1f}" y1="{y(lo):.1f}" y2="{y(hi):.1f}" '
                f'stroke="{color}"/>'
            )
            points.append(f"{cx:.1f},{y(d['mean']):.1f}")
        parts.append(
            f'<polyline points="{" ".join(points)}" fill="none" stroke="{color}" stroke-width="2"/>'
        )
        parts.append(
            f'<text x="{width - 60}" y="{top + (14 if metric == "f1" else 28)}" '
            f'fill="{color}">{metric.upper()}</text>'
        )
    for b in budgets:
        parts.append(
            f'<text x="{x(b["ratings"]) - 20:.1f}" y="{height - 20}">{b["ratings"]} q</text>'
        )
    parts.append(
        f'<text x="{left}" y="{height - 5}">questions rated (ratings, comparisons, '
        "corrections)</text></svg>"
    )
    path.write_text("\n".join(parts) + "\n")


def write_report(report: dict, out: Path) -> None:
    """The JSON, its plot and a text summary (printed too)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if report["budgets"]:
        plot(report, out.with_suffix(".svg"))
    lines = [
        f"{report['model']}, {report['n_questions']} held-out questions, commit {report['commit']}"
        + ("" if report["complete"] else " (incomplete: stopped or still running)"),
        f"base {report['base']}",
    ]
    for row in report["budgets"]:
        f1, em = row["diff_vs_base"]["f1"], row["diff_vs_base"]["em"]
        lines.append(
            f"{row['ratings']:>3} questions rated: F1 {f1['mean']:+.3f} {f1['ci95']}  "
            f"EM {em['mean']:+.3f} {em['ci95']}  validity "
            f"{row['diff_vs_base']['citation_validity']['mean']:+.3f}  "
            f"stages {row['seconds']}"
        )
        if "answers_vs_base" in row:
            lines.append(f"      held-out answers vs base: {row['answers_vs_base']}")
        if "dev25" in row:
            unseen = row["dev25"]
            gap, pooled = unseen["diff_vs_base"]["f1"], unseen["pooled_diff_vs_base"]["f1"]
            lines.append(
                f"      dev-25, {unseen['n_questions']} questions the reader was not chosen on: F1 "
                f"{unseen['base']['f1']:.3f} -> {unseen['model']['f1']:.3f}, "
                f"{gap['mean']:+.3f} {gap['ci95']}"
                f"; answers vs base {unseen['answers_vs_base']}; with the held-out ones "
                f"({unseen['n_questions'] + report['n_questions']}): F1 {pooled['mean']:+.3f} "
                f"{pooled['ci95']}"
            )
        if "fit" in row:
            fit = row["fit"]
            lines.append(
                f"      fit, the {fit['n_prompts']} prompts it trained on: F1 "
                f"{fit['base']['f1']:.3f} -> {fit['model']['f1']:.3f}, "
                f"{fit['diff_vs_base']['f1']['ci95']}; answers vs base {fit['answers_vs_base']}"
            )
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"wrote {out} and its .svg and .txt", flush=True)


def main() -> None:
    """The learning curve, with the command line's settings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model alias or GGUF path (default: Sleuth's default)")
    parser.add_argument("--budgets", default="10,20,40,80")
    parser.add_argument("--held", type=int, default=50, help="held-out questions")
    parser.add_argument(
        "--pipeline", default="sft", help="algorithms in order, each over the one before"
    )
    parser.add_argument("--sft-epochs", type=float, default=1.0)
    parser.add_argument("--lr", type=float, help="learning rate (default: the algorithm's)")
    parser.add_argument("--dpo-epochs", type=float, default=1.0)
    parser.add_argument(
        "--dpo-sft-weight", type=float, default=0.0, help="DPO: the chosen side's NLL weight (RPO)"
    )
    parser.add_argument(
        "--dpo-loss",
        choices=("sigmoid", "ipo"),
        default="sigmoid",
        help="DPO's loss (ipo: the margin per token, held at 1/(2 beta))",
    )
    parser.add_argument("--beta", type=float, help="DPO/KTO temperature, GRPO KL weight")
    parser.add_argument(
        "--seed", type=int, default=0, help="training seed (LoRA init, batch order, sampling)"
    )
    parser.add_argument("--kto-epochs", type=float, default=1.0)
    parser.add_argument("--grpo-epochs", type=float, default=1.0)
    parser.add_argument(
        "--grpo-group", type=int, default=4, help="GRPO: answers sampled per prompt (G, 2+)"
    )
    parser.add_argument(
        "--fit",
        action="store_true",
        help="also answer the prompts each budget trained on, with base and with the adapter "
        "(about 2.5 minutes each at 80 with Qwen2.5 0.5B)",
    )
    parser.add_argument(
        "--dev25",
        action="store_true",
        help="also answer dev-25's 25 questions, which the reader was not chosen on, with base "
        "and each adapter (researched once into --workdir's dev25.db, about 4 minutes)",
    )
    parser.add_argument("--workdir", help="keep the work here")
    parser.add_argument("--out", help="default bench/results/learning_curve-lora.json")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="train and evaluate on what an earlier run left in --workdir (its held-out "
        "research and feedback snapshots) instead of researching and rating again",
    )
    args = parser.parse_args()
    if args.reuse and not args.workdir:
        parser.error("--reuse needs --workdir: the folder an earlier run kept")
    kept = Path(args.workdir) if args.workdir else None
    if kept and not args.reuse and any((kept / n).exists() for n in ("heldout.db", "feedback")):
        # researching and rating again would add a second pass to the stores there
        parser.error(
            f"--workdir {kept} holds an earlier run: pass --reuse to train and evaluate on it "
            "again, or name an empty folder"
        )
    budgets = sorted(int(b) for b in args.budgets.split(","))
    pipeline = [algo.strip() for algo in args.pipeline.split(",") if algo.strip()]
    if not pipeline or set(pipeline) - set(ALGORITHMS):
        parser.error(f"--pipeline: {', '.join(ALGORITHMS)}, or several in order (sft,dpo)")
    if args.grpo_group < 2:
        parser.error("--grpo-group: GRPO compares its answers: 2 at least")
    epochs = {algo: getattr(args, f"{algo}_epochs") for algo in ALGORITHMS}
    options = dict(lr=args.lr, beta=args.beta, seed=args.seed, group_size=args.grpo_group)
    dpo_options = dict(sft_weight=args.dpo_sft_weight, dpo_loss=args.dpo_loss)
    questions = hotpot.load(hotpot.DEV150)
    held_q = held_out(questions, args.held)
    pool = [q for q in questions if q not in held_q][: budgets[-1]]
    started = time.perf_counter()
    wall: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir or tmp)
        root.mkdir(parents=True, exist_ok=True)
        hotpot.write_library(questions, root / "library")

        def dirs_of(home: Path) -> Dirs:
            return workdir_dirs(root, home)

        flags = {"search.backend": "none"}
        if args.model:
            flags["model.path"] = args.model
        settings = load_settings(None, env={}, flags=flags)
        dirs = dirs_of(root / "feedback")
        snapshots, log_file = root / "snapshots", root / "feedback_log.json"
        if args.reuse:
            missing = [
                str(path)
                for path in [root / "heldout.db"]
                + [snapshots / f"feedback-{b}.db" for b in budgets]
                if not path.is_file()
            ]
            if missing:
                sys.exit(f"--reuse: {args.workdir} lacks {', '.join(missing)}")
            print("1-2. held-out research and feedback: reused from the workdir", flush=True)
            held_store = Store.open(root / "heldout.db")
            prompts = stored_prompts(held_store, held_q)
            held_store.close()
            base_path = resolve_model_path(settings.model.path, dirs)  # nothing to load yet
            log = json.loads(log_file.read_text()) if log_file.is_file() else []
        else:
            store = Store.open(dirs.database)
            index_paths(store, [root / "library"])
            llm, info = open_llm(settings, dirs, store)
            base_path = Path(info.base_path)
            run = asyncio.new_event_loop().run_until_complete

            t0 = time.perf_counter()
            print(f"1. held-out: {len(held_q)} questions researched by the base model", flush=True)
            held_store = Store.open(root / "heldout.db")
            index_paths(held_store, [root / "library"])
            prompts = held_out_prompts(
                Assistant(held_store, llm, info, settings), held_store, held_q, run
            )
            wall["held_out_research"] = round(time.perf_counter() - t0, 1)

            t0 = time.perf_counter()
            print(f"2. feedback on {len(pool)} pool questions", flush=True)
            snapshots.mkdir(exist_ok=True)
            agent = Assistant(store, llm, info, settings)
            log = give_feedback(agent, store, pool, budgets, snapshots, run)
            log_file.write_text(json.dumps(log))
            llm.close()
            store.close()
            wall["feedback"] = round(time.perf_counter() - t0, 1)

        if args.dev25:
            t0 = time.perf_counter()
            print("2b. dev-25: researched by the base model (once per workdir)", flush=True)
            unseen = unseen_prompts(root, settings, dirs)
            wall["dev25_research"] = round(time.perf_counter() - t0, 1)
        print("3. base on the held-out prompts", flush=True)
        t0 = time.perf_counter()
        base = evaluate(base_path, None, prompts)
        wall["evaluate_base"] = round(time.perf_counter() - t0, 1)
        if args.dev25:
            t0 = time.perf_counter()
            base_unseen = evaluate(base_path, None, unseen)
            base_both = joined([base, base_unseen])
            wall["evaluate_base_dev25"] = round(time.perf_counter() - t0, 1)
        out = Path(args.out) if args.out else RESULTS / "learning_curve-lora.json"
        report = {
            "commit": commit(),
            "command": "python bench/learning_curve.py " + " ".join(sys.argv[1:]),
            "model": base_path.stem,
            "model_alias": args.model or DEFAULT_MODEL,
            "n_questions": len(prompts),
            "n_pool": len(pool),
            "pipeline": ", then ".join(pipeline),
            "lr": args.lr,
            "dpo_sft_weight": args.dpo_sft_weight,
            "dpo_loss": args.dpo_loss,
            "beta": args.beta,
            "seed": args.seed,
            "grpo_group": args.grpo_group,
            "base": {name: mean(base["parts"][name]) for name in METRICS},
            "budgets": [],
            "feedback_log": log,
            "wall_seconds": wall,
            "complete": False,
        }
        rows = report["budgets"]
        for budget in budgets:
            print(f"4. budget {budget}: train from base, evaluate", flush=True)
            trained = train_budget(
                root / f"budget-{budget}-{'+'.join(pipeline)}",
                snapshots / f"feedback-{budget}.db",
                settings,
                dirs_of,
                pipeline,
                epochs,
                options,
                dpo_options,
            )
            t0 = time.perf_counter()
            model = evaluate(base_path, trained["adapter"], prompts) if trained["adapter"] else base
            trained["seconds"]["evaluate"] = round(time.perf_counter() - t0, 1)
            nothing = {"mean": 0.0, "ci95": [0.0, 0.0]}  # no paired parts: no difference
            diff = {name: nothing for name in METRICS}
            diff.update(difference(base["parts"], model["parts"], METRICS))
            row = {
                "ratings": budget,
                "pipeline": ", then ".join(pipeline),
                "scores": {name: mean(model["parts"][name]) for name in METRICS},
                "diff_vs_base": diff,
                "answers_vs_base": changed(base["parts"]["f1"], model["parts"]["f1"]),
                **trained,
                "examples": model["answers"][:3],
                "moved": moved(base, model),
            }
            if args.fit and trained["adapter"]:
                t0 = time.perf_counter()
                seen = trained_prompts(snapshots / f"feedback-{budget}.db", pool)
                fit = [evaluate(base_path, a, seen) for a in (None, trained["adapter"])]
                row["fit"] = {
                    "n_prompts": len(seen),
                    **versus(fit[0]["parts"], fit[1]["parts"]),
                    "moved": moved(fit[0], fit[1]),
                }
                row["seconds"]["fit"] = round(time.perf_counter() - t0, 1)
            if args.dev25:
                t0 = time.perf_counter()
                adapter = trained["adapter"]
                on = evaluate(base_path, adapter, unseen) if adapter else base_unseen
                pooled = joined([model, on])
                row["dev25"] = {
                    "n_questions": len(unseen),
                    **versus(base_unseen["parts"], on["parts"]),
                    "moved": moved(base_unseen, on),
                    "pooled_diff_vs_base": difference(base_both, pooled, METRICS),
                }
                row["seconds"]["dev25"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            print(f"  budget {budget}: {rows[-1]['scores']} diff f1 {diff['f1']}", flush=True)
            report["seconds_total"] = round(time.perf_counter() - started, 1)
            report["complete"] = budget == budgets[-1]
            write_report(report, out)


if __name__ == "__main__":
    main()
