"""Fitting the reward model (agent/research/picker.py) to the user's feedback, in seconds on CPU.

What each kind of feedback says about the reader's candidates (`examples_of`):

- a rating of an answer (a thumb, or stars away from the middle) labels the candidate it
  showed: right or wrong;
- a correction labels every candidate: the one that says what the user said is right (by
  SQuAD's normalisation: case, punctuation and articles aside), the others wrong; a thumb
  beside it changes nothing;
- an A/B choice (after a regenerate) labels the winner's shown candidate right and the loser's
  wrong.

Only corrections say which of the candidates is right; ratings and A/B choices judge the answer
shown, nearly always the model's own reading. A model fitted without a correction therefore
keeps the model's own reading and learns only how sure to be of it (picker `ranks`): fitted
on thumbs alone, its weights, applied to the other candidates, lost EM on the pool.

The fit is a logistic regression over FEATURES whose weights are pulled toward where it
starts (`fit`): the plain reader's preference (picker.PRIOR: its own reading first), or the
reward model being refined. `STRENGTH` is that pull: a handful of ratings moves the weights a
little, hundreds move them far. It, picker.PRIOR and UNSURE were chosen on the benchmark's
train pool, by simulated feedback (bench/reward_curve.py --tune), never on held-out questions.

The threshold below which an answer is "not sure" is chosen on the feedback too: the
confidence under which the UNSURE share of the rated questions' picks fall.
"""

from __future__ import annotations

from dataclasses import dataclass

from sleuth.agent.research.candidates import FEATURES
from sleuth.agent.research.picker import PRIOR, PRIOR_BIAS, RewardModel, probability
from sleuth.store.rows import Comparison, ReaderChoice

from .checks import exact_match, normalize_answer

STRENGTH = 1.0  # the pull toward the start, as a count of examples' worth
UNSURE = 0.3  # the share of the user's rated questions whose picks fall below the threshold
NEWTON_STEPS = 25


@dataclass(frozen=True)
class Example:
    """One candidate's features, whether it was right (1) or wrong (0), and which question
    it belongs to (folds keep a question's candidates together)."""

    features: dict[str, float]
    label: float
    group: int
    weight: float = 1.0
    ranked: bool = False  # from feedback that says which candidate was right (a correction)


def said(candidate: dict) -> str:
    """What a candidate shows as the short answer."""
    return candidate.get("shows") or candidate["text"]


def verdict(thumb: int | None, stars: int | None) -> bool | None:
    """What a rating says of the answer it rates: right, wrong, or nothing (middling, none)."""
    if stars is not None and stars != 3:
        return stars >= 4
    if thumb is not None:
        return thumb > 0
    return None


def examples_of(
    candidates: list[dict],
    shown: int | None,
    group: int,
    *,
    right: bool | None = None,
    correction: str | None = None,
) -> list[Example]:
    """What one answer's feedback says of its candidates: `right`, the verdict on the shown
    one; `correction`, what the user said the answer was (it labels them all)."""
    if correction and normalize_answer(correction):
        return [
            Example(c["features"], float(exact_match(said(c), correction)), group, ranked=True)
            for c in candidates
        ]
    if right is None or shown is None or not 0 <= shown < len(candidates):
        return []
    return [Example(candidates[shown]["features"], float(right), group)]


def examples(choices: list[ReaderChoice], comparisons: list[Comparison]) -> list[Example]:
    """Every example the store's feedback gives: ratings, corrections and A/B choices."""
    out: list[Example] = []
    by_id = {c.answer_id: c for c in choices}
    for choice in choices:
        out += examples_of(
            choice.candidates,
            choice.shown,
            choice.turn_id,
            right=verdict(choice.thumb, choice.stars),
            correction=choice.correction,
        )
    for comparison in comparisons:
        if comparison.tie:
            continue
        for answer_id, right in ((comparison.winner_id, True), (comparison.loser_id, False)):
            choice = by_id.get(answer_id)
            if choice is not None:
                out += examples_of(choice.candidates, choice.shown, choice.turn_id, right=right)
    return out


def fit(
    found: list[Example], start: RewardModel | None = None, strength: float = STRENGTH
) -> RewardModel:
    """The reward model that best explains `found`, pulled toward `start` (the plain reader's
    preference when None) with `strength`: L2-penalised logistic regression, by Newton's
    method (FEATURES are few, so each step solves a small linear system exactly)."""
    import numpy as np

    names = list(FEATURES)
    prior = start.weights if start is not None else PRIOR
    centre = np.array([start.bias if start else PRIOR_BIAS] + [prior.get(n, 0.0) for n in names])
    if not found:
        return _model(centre, names, ranks=False)
    x = np.array([[1.0] + [e.features.get(n, 0.0) for n in names] for e in found])  # (N, F+1)
    y = np.array([e.label for e in found])  # (N,)
    w = np.array([e.weight for e in found])  # (N,)
    theta = centre.copy()
    for _ in range(NEWTON_STEPS):
        p = 1 / (1 + np.exp(-np.clip(x @ theta, -30, 30)))  # (N,)
        gradient = x.T @ (w * (p - y)) + strength * (theta - centre)  # (F+1,)
        hessian = (x * (w * p * (1 - p))[:, None]).T @ x + strength * np.eye(len(theta))
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return _model(theta, names, ranks=any(e.ranked for e in found))


def _model(theta, names: list[str], ranks: bool) -> RewardModel:
    weights = {n: round(float(v), 6) for n, v in zip(names, theta[1:], strict=True) if v != 0}
    return RewardModel(weights=weights, bias=round(float(theta[0]), 6), ranks=ranks)


def threshold(model: RewardModel, questions: list[list[dict]], unsure: float = UNSURE) -> float:
    """The confidence below which the `unsure` share of these questions' picks fall (0 with
    no questions)."""
    confidences = sorted(confidence(model, candidates) for candidates in questions if candidates)
    if not confidences:
        return 0.0
    at = min(int(len(confidences) * unsure), len(confidences) - 1)
    return confidences[at]


def confidence(model: RewardModel, candidates: list[dict]) -> float:
    """The model's confidence in its pick: the probability it gives that candidate."""
    return probability(model.score(candidates[picked(model, candidates)]["features"]))


def picked(model: RewardModel, candidates: list[dict]) -> int:
    """The index of the candidate the model picks, as picker.RewardModel.pick picks it."""
    return model.choose([c["features"] for c in candidates])
