"""What the training benches share: a simulated user's ratings and corrections, the scores an
answer gets against a gold answer, per-question means and paired differences to base, a Sleuth
home over dev-25's paragraphs, a run's events collected, and the commit a bench runs at."""

from __future__ import annotations

import subprocess
from pathlib import Path

import hotpot

from sleuth.agent.research.events import AnswerDone, EvidenceChosen, RunFinished
from sleuth.agent.text import sentences
from sleuth.agent.tools.library import index_paths
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings
from sleuth.train.checks import correctness, gated_reward, hard_checks, normalize_answer
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
