"""Credit for each step of a research run: what a planner or reflection call earned.

A run is judged once, by its outcome (train/trajectories.py: the user's rating, comparison or
correction, else correctness against a reference, else the hard checks), a number in [0, 1].
Every model call of the run shares that outcome; a planner or reflection call's credit then
moves by what its own queries caused:

    credit = clamp(outcome + PROCESS_WEIGHT * (useful - repeated) / proposed, 0, 1)

- proposed: the queries the call wrote (its JSON output, before any filtering);
- useful:   of those, the ones that were searched and were the first search of the run to bring
            in a passage the final answer cites in a sentence that passed verification;
- repeated: the ones that add no content word to the question or to a query run before them
            (agent/research/bridges.py `rephrases`): a search spent on nothing new.

Why this rule. The outcome alone gives every step of a run the same signal, so a run's good and
bad decisions are not told apart until many runs average them out; a user rates a few dozen
answers, not thousands. The process term tells them apart within one run by facts the record
holds: which query found what the answer stood on, which one was wasted. Its weight is a
quarter so that it orders steps without overturning the outcome: a step of a run judged wrong
(0) earns at most 0.25 however useful its queries looked, and one of a run judged right (1)
keeps at least 0.75 however wasteful; KTO's labels (DESIRABLE, UNDESIRABLE) and the pair gap
(PAIR_GAP) are set against these bounds. The writer's credit is the outcome: its answer is what
the outcome judged.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sleuth.agent.research.bridges import rephrases

PROCESS_WEIGHT = 0.25
DESIRABLE = 0.75  # a step with at least this credit is a good example (KTO label True)
UNDESIRABLE = 0.25  # at most this, a bad one (label False)
PAIR_GAP = 0.25  # two steps from one prompt pair up (DPO) when their credits differ this much


@dataclass(frozen=True)
class Search:
    """One search the run issued, in order, and the addresses its results named."""

    query: str
    found: frozenset[str]


@dataclass(frozen=True)
class Proposal:
    """A query a planner or reflection call wrote, and what became of it."""

    query: str
    useful: bool
    repeated: bool


def judge_proposals(
    queries: Sequence[str],
    question: str,
    run_before: Sequence[str],
    searches: Sequence[Search],
    cited: Iterable[str],
) -> list[Proposal]:
    """What each proposed query caused. `run_before` are the queries searched before the call;
    `searches` every search of the run, in order; `cited` the addresses of the passages cited
    in supported sentences of the final answer."""
    cited = set(cited)
    first_finder: dict[str, str] = {}  # a cited address -> the query that brought it in first
    for search in searches:
        for address in search.found & cited:
            first_finder.setdefault(address, search.query)
    finders = set(first_finder.values())
    proposals, before = [], list(run_before)
    for query in queries:
        repeated = rephrases(query, question, before)
        proposals.append(
            Proposal(query, useful=not repeated and query in finders, repeated=repeated)
        )
        before.append(query)
    return proposals


def step_credit(outcome: float, proposals: Sequence[Proposal]) -> float:
    """The run's outcome, moved by what the step's own queries did (see the module's rule)."""
    if not proposals:
        return outcome
    useful = sum(p.useful for p in proposals)
    repeated = sum(p.repeated for p in proposals)
    process = (useful - repeated) / len(proposals)
    return min(1.0, max(0.0, outcome + PROCESS_WEIGHT * process))


def label(credit: float) -> bool | None:
    """Desirable, undesirable, or neither (KTO leaves the middle out)."""
    if credit >= DESIRABLE:
        return True
    if credit <= UNDESIRABLE:
        return False
    return None
