"""Training policy over the user's feedback, in TRL's shapes. No torch here: `sleuth export`
uses it too.

- sft:  {"prompt": [messages], "completion": [{"role": "assistant", ...}]}  (answers rated well)
- dpo:  {"prompt": [messages], "chosen": [...], "rejected": [...]}          (preference pairs)
- kto:  {"prompt": [messages], "completion": [...], "label": bool}          (thumbs, stars)

The prompt is the exact list of messages the writer model was given, so training replays the
same context without the web. Which ratings count as good or bad, and how pairs are built, is
decided here and nowhere else; the trainer builds its datasets from these functions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sleuth.store import Store
from sleuth.store.rows import RatedAnswer

POSITIVE_STARS = 4  # stars at or above this count as a good answer
NEGATIVE_STARS = 2  # at or below, a bad one


def score(answer: RatedAnswer) -> float | None:
    """Stars when given, else thumbs as 5 or 1; None when unrated."""
    if answer.stars is not None:
        return float(answer.stars)
    if answer.thumb is not None:
        return 5.0 if answer.thumb > 0 else 1.0
    return None


def label(answer: RatedAnswer) -> bool | None:
    """Desirable (True), undesirable (False), or neither (a middling or missing rating)."""
    if answer.thumb is not None and answer.stars is None:
        return answer.thumb > 0
    if answer.stars is not None:
        if answer.stars >= POSITIVE_STARS:
            return True
        if answer.stars <= NEGATIVE_STARS:
            return False
    return None


def completion(answer: RatedAnswer) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": answer.text}]


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
    answers = {a.answer_id: a for a in store.feedback.rated_answers()}
    pairs: list[PreferencePair] = []
    seen: set[frozenset[int]] = set()
    skipped = 0
    for comparison in store.feedback.comparisons():
        if comparison.tie:
            continue
        chosen, rejected = answers[comparison.winner_id], answers[comparison.loser_id]
        seen.add(frozenset((chosen.answer_id, rejected.answer_id)))
        if chosen.messages != rejected.messages:
            skipped += 1
            continue
        pairs.append(PreferencePair(chosen, rejected, "comparison"))
    by_turn: dict[int, list[RatedAnswer]] = {}
    for answer in answers.values():
        if score(answer) is not None:
            by_turn.setdefault(answer.turn_id, []).append(answer)
    for group in by_turn.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                key = frozenset((a.answer_id, b.answer_id))
                if key in seen or score(a) == score(b) or a.messages != b.messages:
                    continue
                seen.add(key)
                better, worse = (a, b) if score(a) > score(b) else (b, a)  # type: ignore[operator]
                pairs.append(PreferencePair(better, worse, "rating"))
    return pairs, skipped


def sft_records(store: Store) -> Iterator[dict[str, Any]]:
    """Answers rated well (thumb up, or 4+ stars), as prompt/completion."""
    for answer in store.feedback.rated_answers():
        if label(answer) is True:
            yield {"prompt": answer.messages, "completion": completion(answer)}


def dpo_records(store: Store) -> Iterator[dict[str, Any]]:
    """Preference pairs as prompt/chosen/rejected."""
    pairs, _ = preference_pairs(store)
    for pair in pairs:
        yield {
            "prompt": pair.chosen.messages,
            "chosen": completion(pair.chosen),
            "rejected": completion(pair.rejected),
        }


def kto_records(store: Store) -> Iterator[dict[str, Any]]:
    """Unpaired desirable/undesirable answers as prompt/completion/label."""
    for answer in store.feedback.rated_answers():
        if label(answer) is not None:
            yield {
                "prompt": answer.messages,
                "completion": completion(answer),
                "label": label(answer),
            }


EXPORTERS = {"sft": sft_records, "dpo": dpo_records, "kto": kto_records}
