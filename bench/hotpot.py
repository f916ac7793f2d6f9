"""HotpotQA as a local library, and its official answer metrics (EM and token F1).

A benchmark helper, not part of the installed package: the bench scripts import it as
`hotpot` (they run from this folder), the tests as `bench.hotpot`. The data files are
`bench/data/hotpotqa-dev-25.json` (25 dev questions, CC BY-SA 4.0; see its README) and
`../shared/data/hotpotqa-dev-150.json` (150 more).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sleuth.store import Store
from sleuth.store.rows import Run

# The official answer metrics live in the package, where the trainer's reward uses them too.
from sleuth.train.checks import answer_contains, answer_span, exact_match, f1, normalize_answer

__all__ = ["answer_contains", "answer_span", "exact_match", "f1", "normalize_answer"]

DEV25 = Path(__file__).resolve().parent / "data" / "hotpotqa-dev-25.json"
# 150 more dev questions, none of them in dev-25: the set quality is reported on. It lives
# beside the repository (../shared/data), not in it.
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEV150 = SHARED / "hotpotqa-dev-150.json"
# Held out for reported figures (dev-400), the train pool, and other kinds of multi-hop
# questions in the same shape (2WikiMultihopQA, MuSiQue, whose answers have aliases).
SETS = {
    "dev25": DEV25,
    "dev150": DEV150,
    "dev400": SHARED / "hotpotqa-dev-400.json",
    "train797": SHARED / "hotpotqa-train-797.json",
    "2wiki": SHARED / "2wiki-train-500.json",
    "musique": SHARED / "musique-train-100.json",
}


@dataclass
class Question:
    id: str
    question: str
    answer: str
    type: str
    supporting_titles: list[str]
    context: list[tuple[str, list[str]]]
    aliases: tuple[str, ...] = ()  # other right answers (MuSiQue gives them)

    @property
    def answers(self) -> list[str]:
        """Every answer that counts as right: the gold answer first."""
        return [self.answer, *self.aliases]


def load(path: Path) -> list[Question]:
    """The questions of a HotpotQA JSON file."""
    items = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        Question(
            id=item["_id"],
            question=item["question"],
            answer=item["answer"],
            type=item["type"],
            supporting_titles=sorted({t for t, _ in item.get("supporting_facts") or []}),
            context=[(title, sentences) for title, sentences in item["context"]],
            aliases=tuple(item.get("answer_aliases") or ()),
        )
        for item in items
    ]


def slug(title: str) -> str:
    """A file name for a paragraph title."""
    cleaned = re.sub(r"[^A-Za-z0-9]+", "-", title).strip("-").lower()
    return cleaned[:80] or "untitled"


def write_library(questions: list[Question], folder: Path) -> dict[str, Path]:
    """Write every context paragraph to its own Markdown file; returns title -> path.

    Titles shared between questions are written once; file names are unique per title."""
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    used: set[str] = set()
    for question in questions:
        for title, sentences in question.context:
            if title in paths:
                continue
            name = slug(title)
            while name in used:
                name += "-x"
            used.add(name)
            path = folder / f"{name}.md"
            path.write_text(f"# {title}\n\n{''.join(sentences).strip()}\n", encoding="utf-8")
            paths[title] = path
    return paths


def asked(question: str) -> str:
    """A question on one line, as the benches match it against what Sleuth stored."""
    return " ".join(question.split())


def stored_runs(store: Store) -> Iterator[tuple[str, Run]]:
    """(question, run) for each run a Sleuth store holds, in the order its history lists
    them: what a bench reads back from a home it kept."""
    for session in store.runs.history(limit=10_000):
        for turn in session.turns:
            for run in store.runs.runs(turn.id):
                yield asked(turn.question), run
