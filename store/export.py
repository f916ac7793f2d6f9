"""Exports: feedback as the JSONL shapes TRL trains on, full trajectories, Markdown reports.

- sft:  {"prompt": [messages], "completion": [{"role": "assistant", ...}]}  (answers rated well)
- dpo:  {"prompt": [messages], "chosen": [...], "rejected": [...]}          (preference pairs)
- kto:  {"prompt": [messages], "completion": [...], "label": bool}          (thumbs, stars)
- runs: one object per research run: question, plan, steps, evidence, answer, feedback.

The prompt is the exact list of messages the writer model was given, so training replays the
same context without the web. The trainer builds its datasets from the same functions.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .db import Store, _decode

POSITIVE_STARS = 4  # stars at or above this count as a good answer
NEGATIVE_STARS = 2  # at or below, a bad one


@dataclass
class RatedAnswer:
    """An answer with the feedback on it, as the trainer and exports see it."""

    answer_id: int
    turn_id: int
    messages: list[dict[str, str]]
    text: str
    thumb: int | None
    stars: int | None

    @property
    def score(self) -> float | None:
        """Stars when given, else thumbs as 5 or 1; None when unrated."""
        if self.stars is not None:
            return float(self.stars)
        if self.thumb is not None:
            return 5.0 if self.thumb > 0 else 1.0
        return None

    @property
    def label(self) -> bool | None:
        """Desirable (True), undesirable (False), or neither (a middling or missing rating)."""
        if self.thumb is not None and self.stars is None:
            return self.thumb > 0
        if self.stars is not None:
            if self.stars >= POSITIVE_STARS:
                return True
            if self.stars <= NEGATIVE_STARS:
                return False
        return None

    def completion(self) -> list[dict[str, str]]:
        return [{"role": "assistant", "content": self.text}]


def rated_answers(store: Store) -> list[RatedAnswer]:
    """Every answer with its rating (None where unrated), oldest first."""
    with store._read():
        rows = store.db.query(
            "SELECT answers.id, runs.turn_id, answers.messages, answers.text, ratings.thumb, "
            "ratings.stars FROM answers JOIN runs ON runs.id = answers.run_id "
            "LEFT JOIN ratings ON ratings.answer_id = answers.id ORDER BY answers.id"
        )
        return [
            RatedAnswer(
                answer_id=row["id"],
                turn_id=row["turn_id"],
                messages=json.loads(row["messages"]),
                text=row["text"],
                thumb=row["thumb"],
                stars=row["stars"],
            )
            for row in rows
        ]


@dataclass
class PreferencePair:
    """Two answers to the same writer prompt, one preferred."""

    chosen: RatedAnswer
    rejected: RatedAnswer
    origin: str  # "comparison" or "rating"


def preference_pairs(store: Store) -> tuple[list[PreferencePair], int]:
    """Pairs from comparisons, then from rating gaps between answers to the same turn.

    Only answers written from identical messages pair up (DPO needs one prompt); a regenerate
    reuses its run's evidence, so its answers qualify. Returns (pairs, skipped) where skipped
    counts comparisons whose answers saw different prompts.
    """
    answers = {a.answer_id: a for a in rated_answers(store)}
    pairs: list[PreferencePair] = []
    seen: set[frozenset[int]] = set()
    skipped = 0
    for comparison in store.comparisons():
        if comparison["tie"]:
            continue
        chosen, rejected = answers[comparison["winner_id"]], answers[comparison["loser_id"]]
        key = frozenset((chosen.answer_id, rejected.answer_id))
        seen.add(key)
        if chosen.messages != rejected.messages:
            skipped += 1
            continue
        pairs.append(PreferencePair(chosen, rejected, "comparison"))
    by_turn: dict[int, list[RatedAnswer]] = {}
    for answer in answers.values():
        if answer.score is not None:
            by_turn.setdefault(answer.turn_id, []).append(answer)
    for group in by_turn.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                key = frozenset((a.answer_id, b.answer_id))
                if key in seen or a.score == b.score or a.messages != b.messages:
                    continue
                seen.add(key)
                better, worse = (a, b) if a.score > b.score else (b, a)  # type: ignore[operator]
                pairs.append(PreferencePair(better, worse, "rating"))
    return pairs, skipped


def sft_records(store: Store) -> Iterator[dict[str, Any]]:
    """Answers rated well (thumb up, or 4+ stars), as prompt/completion."""
    for answer in rated_answers(store):
        if answer.label is True:
            yield {"prompt": answer.messages, "completion": answer.completion()}


def dpo_records(store: Store) -> Iterator[dict[str, Any]]:
    """Preference pairs as prompt/chosen/rejected."""
    pairs, _ = preference_pairs(store)
    for pair in pairs:
        yield {
            "prompt": pair.chosen.messages,
            "chosen": pair.chosen.completion(),
            "rejected": pair.rejected.completion(),
        }


def kto_records(store: Store) -> Iterator[dict[str, Any]]:
    """Unpaired desirable/undesirable answers as prompt/completion/label."""
    for answer in rated_answers(store):
        if answer.label is not None:
            yield {
                "prompt": answer.messages,
                "completion": answer.completion(),
                "label": answer.label,
            }


def run_records(store: Store) -> Iterator[dict[str, Any]]:
    """Full trajectories: everything recorded about each research run."""
    with store._read():
        run_rows = [
            _decode(row)
            for row in store.db.query(
                "SELECT runs.*, turns.question, turns.session_id, turns.position AS turn_position "
                "FROM runs JOIN turns ON turns.id = runs.turn_id ORDER BY runs.id"
            )
        ]
    for run in run_rows:
        answer = store.answer_for_run(run["id"])
        feedback: dict[str, Any] = {}
        if answer is not None:
            feedback = {
                "rating": store.rating(answer["id"]),
                "comparisons": store.comparisons_for(answer["id"]),
            }
        yield {
            "run": run,
            "steps": store.steps(run["id"]),
            "evidence": store.evidence(run["id"]),
            "answer": answer,
            **feedback,
        }


EXPORTERS = {"sft": sft_records, "dpo": dpo_records, "kto": kto_records, "runs": run_records}


def describe_rating(rating: dict[str, Any] | None, *, comment: bool = True) -> str:
    """A rating in words: "thumbs up, 4/5 stars, “a comment”" (or "not rated")."""
    if not rating:
        return "not rated"
    parts = []
    if rating.get("thumb"):
        parts.append("thumbs up" if rating["thumb"] > 0 else "thumbs down")
    if rating.get("stars"):
        parts.append(f"{rating['stars']}/5 stars")
    if comment and rating.get("comment"):
        parts.append(f"“{rating['comment']}”")
    return ", ".join(parts) or "not rated"


def session_markdown(store: Store, session_id: int) -> str:
    """A readable report of a session: each question, its latest answer, and its sources."""
    session = store.session(session_id)
    lines = [
        f"# {session['title']}",
        "",
        f"Session {session_id}, started {session['created_at']}.",
        "",
    ]
    for turn in store.turns(session_id):
        lines += [f"## {turn['question']}", ""]
        answers = store.answers_for_turn(turn["id"])
        if not answers:
            lines += ["_No answer was written for this question._", ""]
            continue
        answer = answers[-1]
        lines += [answer["text"].strip(), ""]
        rating = describe_rating(answer, comment=False)
        meta = f"Answer {answer['id']} by {answer.get('model_name') or 'unknown model'}"
        lines += [
            f"_{meta}{'; rated ' + rating if answer.get('thumb') or answer.get('stars') else ''}._",
            "",
        ]
        evidence = store.evidence(answer["run_id"])
        if evidence:
            lines += ["### Sources", ""]
            for item in evidence:
                title = item["title"] or item["uri"]
                lines.append(f"{item['number']}. [{title}]({item['uri']})")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"
