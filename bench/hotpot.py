"""HotpotQA as a local library, and its official answer metrics (EM and token F1).

A benchmark helper, not part of the installed package: the bench scripts import it as
`hotpot` (they run from this folder), the tests as `bench.hotpot`. The data file is
`tests/data/hotpotqa-dev-25.json` (25 dev questions, CC BY-SA 4.0; see its README).
"""

from __future__ import annotations

import json
import re
import string
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

DEV25 = Path(__file__).resolve().parents[1] / "tests" / "data" / "hotpotqa-dev-25.json"


@dataclass
class Question:
    id: str
    question: str
    answer: str
    type: str
    supporting_titles: list[str]
    context: list[tuple[str, list[str]]]


def load(path: Path) -> list[Question]:
    """The questions of a HotpotQA JSON file."""
    items = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        Question(
            id=item["_id"],
            question=item["question"],
            answer=item["answer"],
            type=item["type"],
            supporting_titles=sorted({title for title, _ in item["supporting_facts"]}),
            context=[(title, sentences) for title, sentences in item["context"]],
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


def normalize_answer(text: str) -> str:
    """The official HotpotQA normalisation: lower case, no punctuation, articles or extra space."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def f1(prediction: str, gold: str) -> float:
    """Token F1 as in the official evaluation (yes/no/noanswer must match exactly)."""
    pred, truth = normalize_answer(prediction), normalize_answer(gold)
    if pred in {"yes", "no", "noanswer"} or truth in {"yes", "no", "noanswer"}:
        if pred != truth:
            return 0.0
    pred_tokens, truth_tokens = pred.split(), truth.split()
    common = Counter(pred_tokens) & Counter(truth_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(truth_tokens)
    return 2 * precision * recall / (precision + recall)


def answer_contains(prediction: str, gold: str) -> bool:
    """Whether the normalised gold answer appears in a longer free-text answer (how a
    sentence-length answer is judged when EM would need the bare span)."""
    gold_norm = normalize_answer(gold)
    return bool(gold_norm) and f" {gold_norm} " in f" {normalize_answer(prediction)} "
