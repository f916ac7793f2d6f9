"""Training policy over the user's feedback, in TRL's shapes. No torch here: `sleuth export`
uses it too.

- sft:  {"prompt": [messages], "completion": [{"role": "assistant", ...}]}  (answers rated well,
        and the user's corrections)
- dpo:  {"prompt": [messages], "chosen": [...], "rejected": [...]}          (preference pairs)
- kto:  {"prompt": [messages], "completion": [...], "label": bool}          (thumbs, stars)

The prompt is the exact list of messages the model was given, so training replays the same
context without the web. Which ratings count as good or bad, and how pairs are built, is
decided here and nowhere else; the trainer builds its datasets from these functions.

A correction (what the user says the right answer was) is a strong "this, not that": it is an
SFT target for the writer prompt it corrects, the chosen side of a DPO pair over the original
answer, and a desirable KTO example, while the answer it corrects becomes undesirable unless
the user rated it well anyway. A correction to the reader's short answer counts only where the
reader could have given it: its words stand in the passages the reader read.

Planner and reflection calls learn from whole runs (train/trajectories.py): each call's credit
(train/credit.py) labels it for KTO, and two calls given identical messages whose credits
differ by PAIR_GAP or more make a DPO pair. Only runs someone judged count here (a rating,
comparison or correction, a reference answer, or a run that found nothing): the hard checks
alone judge citation form, which is not what a plan is for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from sleuth.agent.research.reader import answer_form
from sleuth.store import Store
from sleuth.store.rows import RatedAnswer

from . import credit
from .checks import answer_span, uncited
from .trajectories import Trajectory, trajectories

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
    """Desirable (True), undesirable (False), or neither (a middling or missing rating). An
    answer the user corrected, and did not rate, is undesirable."""
    if answer.thumb is None and answer.stars is None and answer.correction:
        return False
    if answer.thumb is not None and answer.stars is None:
        return answer.thumb > 0
    if answer.stars is not None:
        if answer.stars >= POSITIVE_STARS:
            return True
        if answer.stars <= NEGATIVE_STARS:
            return False
    return None


def completion(answer: RatedAnswer | Example) -> list[dict[str, str]]:
    return [{"role": "assistant", "content": answer.text}]


def corrected(answer: RatedAnswer) -> RatedAnswer:
    """The user's correction as an answer to the same prompt, rated up: what they wanted."""
    return replace(answer, text=wanted(answer), thumb=1, stars=None, correction=None)


def wanted(answer: RatedAnswer) -> str:
    """What the correction asks the model to write: the correction itself, or to the reader's
    prompt what the reader could have written: the correction whole when it is a span of what
    the reader read ("[O.S. 3 May] 1801" is one answer, not a sentence cut at "O.S."), else
    its answer (its first sentence without citations and its full stop, or its yes or no)."""
    assert answer.correction
    text = answer.correction
    if answer.reads:
        whole = _without_full_stop(uncited(text))
        if readable(whole, answer.messages):
            return whole
        text = _without_full_stop(answer_span(text) or text.strip())
    return text


def _without_full_stop(text: str) -> str:
    if text.endswith(".") and text.split()[-1].count(".") == 1:  # not "D.C."
        return text[:-1]
    return text


def is_corrected(answer: RatedAnswer) -> bool:
    """The user wrote a correction that says something else than the answer, and, to the
    reader's prompt, one the reader could have read (`readable`): a span of the passages it
    was given. An answer that is in none of them (the research missed it) would teach the reader
    to say what it did not read; it still counts as the question's reference
    (train/trajectories.py), which credits research that finds it."""
    if not answer.correction:
        return False
    text = wanted(answer).strip()
    if not text or text == answer.text.strip():
        return False
    return not answer.reads or readable(text, answer.messages)


def readable(text: str, messages: list[dict[str, str]]) -> bool:
    """Whether the reader could have written `text` to its prompt: whether its decoding
    (agent/research/reader.py `AnswerForm`) allows it over the passages it read (its last turn
    before the question): yes or no to a yes-or-no question, one of the two names a comparison
    offers, else words that stand together there, as written, from a word's start, of the
    kind the question asks."""
    form = answer_form(question_of(messages), [])
    if not form.options:
        said = messages[-1]["content"]
        form = replace(form, sources=(said.rpartition("\nQuestion:")[0] or said,))
    return form.complete(text)


def question_of(messages: list[dict[str, str]]) -> str:
    """The question a writer prompt asks (its last user turn's 'Question:' line)."""
    text = messages[-1]["content"]
    for line in text.splitlines():
        if line.startswith("Question:"):
            return line[len("Question:") :].strip()
    return text


def corrections(answers: list[RatedAnswer]) -> list[RatedAnswer]:
    return [corrected(a) for a in answers if is_corrected(a)]


@dataclass
class PreferencePair:
    """Two answers to the same writer prompt, one preferred."""

    chosen: RatedAnswer
    rejected: RatedAnswer
    origin: str  # "correction", "comparison" or "rating"


def preference_pairs(store: Store) -> tuple[list[PreferencePair], int]:
    """Pairs from corrections (the correction over the answer it corrects), comparisons, then
    rating gaps between answers to the same turn.

    Only answers written from identical messages pair up (DPO needs one prompt); a regenerate
    reuses its run's evidence, so its answers qualify. Returns (pairs, skipped) where skipped
    counts comparisons whose answers saw different prompts.
    """
    answers = {a.answer_id: a for a in store.feedback.rated_answers()}
    pairs = [
        PreferencePair(corrected(a), a, "correction") for a in answers.values() if is_corrected(a)
    ]
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
    """Answers rated well (thumb up, or 4+ stars) and corrections, as prompt/completion."""
    answers = store.feedback.rated_answers()
    for answer in [a for a in answers if label(a) is True] + corrections(answers):
        yield {"prompt": answer.messages, "completion": completion(answer)}


def dpo_records(store: Store) -> Iterator[dict[str, Any]]:
    """Preference pairs (writer answers, then planner and reflection calls) as
    prompt/chosen/rejected."""
    pairs, _ = preference_pairs(store)
    steps = call_pairs(list(trajectories(store)))
    for chosen, rejected in [(p.chosen, p.rejected) for p in pairs] + steps:
        yield {
            "prompt": chosen.messages,
            "chosen": completion(chosen),
            "rejected": completion(rejected),
        }


def kto_records(store: Store) -> Iterator[dict[str, Any]]:
    """Unpaired desirable/undesirable answers (corrections among them) and planner and
    reflection calls, as prompt/completion/label."""
    answers = store.feedback.rated_answers()
    for answer in [a for a in answers if label(a) is not None] + corrections(answers):
        yield {"prompt": answer.messages, "completion": completion(answer), "label": label(answer)}
    for example in call_examples(list(trajectories(store))):
        yield {
            "prompt": example.messages,
            "completion": completion(example),
            "label": example.label,
        }


EXPORTERS = {"sft": sft_records, "dpo": dpo_records, "kto": kto_records}


# -- planner and reflection calls, from whole runs ---------------------------------------------

JUDGED = ("correction", "user", "comparison", "reference", "no answer")
CALLS = ("plan", "reflect")


@dataclass(frozen=True)
class Example:
    """A planner or reflection call: the exact messages, what the model wrote, its credit."""

    messages: list[dict[str, str]]
    text: str
    credit: float
    purpose: str
    run_id: int

    @property
    def label(self) -> bool | None:
        return credit.label(self.credit)


def label_of(item: RatedAnswer | Example) -> bool | None:
    """The KTO label of a writer answer (its rating) or of a call (its credit)."""
    return item.label if isinstance(item, Example) else label(item)


def _calls(runs: list[Trajectory]) -> list[Example]:
    return [
        Example(call.messages, call.output, call.credit, call.purpose, run.run_id)
        for run in runs
        if run.outcome.judged_by in JUDGED
        for call in run.calls
        if call.purpose in CALLS and call.messages and call.credit is not None
    ]


def call_examples(runs: list[Trajectory]) -> list[Example]:
    """Planner and reflection calls of judged runs that are clearly good or bad (KTO)."""
    return [example for example in _calls(runs) if example.label is not None]


def call_pairs(runs: list[Trajectory]) -> list[tuple[Example, Example]]:
    """Per prompt (identical messages), the best-credited call over the worst, when their
    credits differ by PAIR_GAP or more and they wrote different things (DPO)."""
    by_prompt: dict[str, list[Example]] = {}
    for example in _calls(runs):
        by_prompt.setdefault(json.dumps(example.messages, sort_keys=True), []).append(example)
    pairs = []
    for group in by_prompt.values():
        best = max(group, key=lambda e: e.credit)
        worst = min(group, key=lambda e: e.credit)
        if best.credit - worst.credit >= credit.PAIR_GAP and best.text != worst.text:
            pairs.append((best, worst))
    return pairs
