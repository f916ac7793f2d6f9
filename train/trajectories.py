"""Whole research runs as training data: every planner, reflection and writer call of a run with
its exact messages and output, in order, tied to the run's outcome and credited step by step
(train/credit.py). No torch here: `sleuth export --format trajectories` uses it too.

A run's outcome, in [0, 1], is the first of these that exists:
  correction  the user wrote the right answer: token F1 of the answer's first sentence against
              the correction's (train/checks.py `answer_span`)
  user        the user's rating: thumbs 1 or 0, stars (n - 1) / 4
  comparison  the share of A-vs-B verdicts the answer won
  reference   a reference answer for the question (another answer's correction, or a question
              file the user gives): the gated reward with token F1 after the hard-check gate
  checks      the gated reward of the hard checks alone
A run that found nothing or failed has outcome 0 ("no answer"); one cancelled or interrupted
has none and teaches nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sleuth.store import Store
from sleuth.store.rows import Answer, Comparison, Rating

from .checks import answer_span, correctness, gated_reward, hard_checks, normalize_answer
from .credit import Proposal, Search, judge_proposals, step_credit

UNFINISHED = ("cancelled", "interrupted", "running")


@dataclass(frozen=True)
class Outcome:
    score: float | None  # in [0, 1]; None: nothing to learn from (an unfinished run)
    judged_by: str  # correction, user, comparison, reference, checks, no answer, unfinished
    correctness: dict[str, float] | None = None  # em, f1, contains, where a reference exists


@dataclass
class Call:
    """One model call of a run: what it was asked, what it wrote, what it earned."""

    purpose: str  # plan, reflect or write
    round: int  # the search round its queries feed (plan 1, first reflection 2); a write: after
    messages: list[dict[str, str]] | None  # None in runs recorded before messages were kept
    output: str
    proposals: list[Proposal] = field(default_factory=list)
    accepted: bool = True  # a write the loop rejected (degenerate) is False
    credit: float | None = None
    recorded: bool = True  # False in runs recorded before calls' outputs were kept

    def as_dict(self) -> dict[str, Any]:
        return {
            "purpose": self.purpose,
            "round": self.round,
            "messages": self.messages,
            "output": self.output,
            "proposed": [asdict(p) for p in self.proposals],
            "accepted": self.accepted,
            "credit": self.credit,
        }


@dataclass
class Trajectory:
    run_id: int
    turn_id: int
    question: str
    status: str
    answer_id: int | None
    answer: str | None
    calls: list[Call]
    searches: list[Search]
    cited: list[str]  # addresses of passages cited in supported sentences of the answer
    outcome: Outcome

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "turn_id": self.turn_id,
            "question": self.question,
            "status": self.status,
            "answer_id": self.answer_id,
            "answer": self.answer,
            "outcome": asdict(self.outcome),
            "steps": [call.as_dict() for call in self.calls],
            "searches": [{"query": s.query, "found": sorted(s.found)} for s in self.searches],
            "cited": self.cited,
        }


# -- outcomes ----------------------------------------------------------------------------------


def question_key(question: str) -> str:
    return normalize_answer(question)


def load_references(path: Path | str) -> dict[str, str]:
    """Reference answers from a JSON Lines file of {"question": ..., "answer": ...} objects."""
    path = Path(path).expanduser()
    references = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ValueError(f"Cannot read the question file {path}: {exc.strerror}.") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            question, answer = str(item["question"]), str(item["answer"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(
                f"{path}:{number} is not a JSON object with a question and an answer."
            ) from None
        references[question_key(question)] = answer
    return references


def outcome(
    answer: Answer | None,
    status: str,
    evidence: list[dict],
    rating: Rating | None = None,
    comparisons: list[Comparison] = (),
    reference: str | None = None,
) -> Outcome:
    """How the run turned out (see the module's order of judges)."""
    if status in UNFINISHED:
        return Outcome(None, "unfinished")
    if answer is None:
        return Outcome(0.0, "no answer")
    known = correctness(answer.text, reference).as_dict() if reference else None
    if rating is not None and rating.correction:
        right = correctness(answer.text, answer_span(rating.correction) or rating.correction)
        return Outcome(right.f1, "correction", right.as_dict())
    if rating is not None and rating.stars is not None:
        return Outcome((rating.stars - 1) / 4, "user", known)
    if rating is not None and rating.thumb is not None:
        return Outcome(float(rating.thumb > 0), "user", known)
    verdicts = [c for c in comparisons if not c.tie]
    if verdicts:
        won = sum(c.winner_id == answer.id for c in verdicts)
        return Outcome(won / len(verdicts), "comparison", known)
    checked = hard_checks(answer.text, evidence)
    if known is not None:
        return Outcome(gated_reward(checked, f1=known["f1"]), "reference", known)
    return Outcome(gated_reward(checked), "checks")


# -- runs --------------------------------------------------------------------------------------


def proposed_queries(purpose: str, output: str) -> list[str] | None:
    """The queries a plan or reflection call wrote, or None when its output is not the JSON
    object it was asked for."""
    try:
        value = json.loads(output)
    except json.JSONDecodeError:
        return None
    if not isinstance(value, dict):
        return None
    items = value.get("subquestions" if purpose == "plan" else "new_queries", [])
    if not isinstance(items, list):
        return None
    return [
        " ".join(str(item.get("query", "")).split())
        for item in items
        if isinstance(item, dict) and str(item.get("query", "")).strip()
    ]


def trajectory(store: Store, run_id: int, references: dict[str, str] | None = None) -> Trajectory:
    """One recorded run as a trajectory, each call credited."""
    run = store.runs.run(run_id)
    turn = store.runs.turn(run.turn_id)
    answer = store.runs.answer_for_run(run_id)
    evidence = [asdict(e) for e in store.runs.evidence(run_id)]
    steps = store.runs.steps(run_id)
    searches = [
        Search(
            " ".join(s.data["query"].split()),
            frozenset(r.get("uri") or r.get("url") for r in s.data["results"]) - {None},
        )
        for s in steps
        if s.kind == "search_done"
    ]
    by_number = {e["number"]: e["uri"] for e in evidence}
    cited = sorted(
        {
            by_number[n]
            for c in (answer.citations if answer else [])
            if c.get("supported")
            for n in c.get("numbers", [])
            if n in by_number
        }
    )
    rating = store.feedback.rating(answer.id) if answer else None
    comparisons = store.feedback.comparisons_for(answer.id) if answer else []
    reference = (references or {}).get(question_key(turn.question))
    result = outcome(answer, run.status, evidence, rating, comparisons, reference)

    calls: list[Call] = []
    run_before: list[str] = []
    reflections = 0
    writes = [s for s in steps if s.kind == "llm_call" and s.data["purpose"] == "write"]
    rejected = sum(s.kind == "answer_rejected" for s in steps)
    for step in steps:
        if step.kind == "search_issued":
            run_before.append(" ".join(step.data["query"].split()))
        if step.kind != "llm_call":
            continue
        purpose, output = step.data["purpose"], step.data.get("output", "")
        if purpose == "write":
            index = writes.index(step)
            calls.append(
                Call(
                    "write",
                    reflections + 1,
                    answer.messages if answer else None,
                    output,
                    # The writes the loop rejected come first; a quoted fallback rejected all.
                    accepted=index >= rejected,
                    recorded="output" in step.data,
                )
            )
            continue
        reflections += purpose == "reflect"
        queries = proposed_queries(purpose, output)
        proposals = (
            judge_proposals(queries, turn.question, run_before, searches, cited)
            if queries is not None
            else []
        )
        call = Call(
            purpose,
            reflections + 1 if purpose == "reflect" else 1,
            step.data.get("messages"),
            output,
            proposals,
        )
        call.accepted = queries is not None
        call.recorded = "output" in step.data
        calls.append(call)
    if result.score is not None:
        for call in calls:
            if not call.recorded:
                continue  # recorded before outputs were kept: nothing to judge it by
            if not call.accepted:
                call.credit = 0.0  # unusable JSON, or an answer the loop rejected
            elif call.purpose == "write":
                call.credit = result.score
            else:
                call.credit = step_credit(result.score, call.proposals)
    return Trajectory(
        run.id,
        run.turn_id,
        turn.question,
        run.status,
        answer.id if answer else None,
        answer.text if answer else None,
        calls,
        searches,
        cited,
        result,
    )


def references_from_corrections(store: Store) -> dict[str, str]:
    """The user's corrections as reference answers for their questions."""
    references = {}
    for rated in store.feedback.rated_answers():
        if rated.correction:
            question = store.runs.turn(rated.turn_id).question
            references[question_key(question)] = answer_span(rated.correction) or rated.correction
    return references


def known_references(store: Store, references: dict[str, str] | None = None) -> dict[str, str]:
    """Reference answers by question: the user's corrections, then `references` (a question
    file's answers take precedence where both exist)."""
    return {**references_from_corrections(store), **(references or {})}


def trajectories(store: Store, references: dict[str, str] | None = None) -> Iterator[Trajectory]:
    """Every recorded run, oldest first, judged against `known_references`."""
    known = known_references(store, references)
    for summary in store.runs.all_runs():
        yield trajectory(store, summary.id, known)


def trajectory_records(store: Store, references: dict[str, str] | None = None) -> Iterator[dict]:
    """`sleuth export --format trajectories`: one JSON object per run, steps in order."""
    for item in trajectories(store, references):
        yield item.as_dict()
