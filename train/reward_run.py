"""`sleuth train --algo reward`: a reward model fitted to the user's feedback in seconds, with
its verdict on the user's own questions, registered beside the adapters (inactive until the
user activates it, as an adapter is).

The verdict is held out the only way a user's own feedback allows: each fold of the rated
questions is picked by a model fitted on the others, and a question counts where the
feedback says whether both picks (the reward model's, the plain reader's) are right. The
threshold (not sure below it) is set on all the feedback (reward_model.threshold).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from sleuth.agent.models.catalog import resolve_model_path
from sleuth.agent.models.files import fingerprint
from sleuth.agent.models.registry import ModelRegistry
from sleuth.store import Dirs, Store
from sleuth.store.paths import private_dir, private_file
from sleuth.store.rows import ReaderChoice
from sleuth.store.settings import Settings

from .checks import exact_match, normalize_answer
from .errors import TrainingError
from .reward_model import examples, fit, picked, said, threshold, verdict

FOLDS = 5


@dataclass
class RewardResult:
    model_id: int
    path: str
    evaluation: dict


def rated(choices: list[ReaderChoice]) -> list[ReaderChoice]:
    """The answers whose feedback says something of their candidates."""
    return [c for c in choices if c.correction or verdict(c.thumb, c.stars) is not None]


def right_of(choice: ReaderChoice, index: int | None) -> bool | None:
    """Whether candidate `index` is right, as far as the feedback says (None: not known)."""
    if index is None:
        return None
    if choice.correction and normalize_answer(choice.correction):
        return exact_match(said(choice.candidates[index]), choice.correction)
    if index == choice.shown:
        return verdict(choice.thumb, choice.stars)
    return None


def own_reading(choice: ReaderChoice) -> int | None:
    """The index of the model's own reading among the candidates (None: it had none)."""
    return next((n for n, c in enumerate(choice.candidates) if c["features"].get("greedy")), None)


def cross_check(choices: list[ReaderChoice], comparisons, seed: int = 0) -> dict:
    """The held-out verdict on the user's own rated questions (see the module's docstring):
    {"n": judged, "reader": its right share, "picked": the reward model's, "better": picks
    right where the reader's was wrong, "worse": the other way}."""
    answers = rated(choices)
    turns = sorted({c.turn_id for c in answers})
    random.Random(seed).shuffle(turns)
    fold_of = {turn: n % FOLDS for n, turn in enumerate(turns)}
    judged = reader = chosen = better = worse = 0
    for fold in range(FOLDS):
        train = [c for c in choices if fold_of.get(c.turn_id, -1) != fold]
        model = fit(examples(train, comparisons))
        for choice in answers:
            if fold_of[choice.turn_id] != fold:
                continue
            a = right_of(choice, own_reading(choice))
            b = right_of(choice, picked(model, choice.candidates))
            if a is None or b is None:
                continue
            judged += 1
            reader += a
            chosen += b
            better += b and not a
            worse += a and not b
    return {
        "n": judged,
        "reader": round(reader / judged, 3) if judged else None,
        "picked": round(chosen / judged, 3) if judged else None,
        "better": better,
        "worse": worse,
    }


def active_reward_model(store: Store, base_path: Path):
    """The active reward model over this base (agent/research/picker.py), or None."""
    from sleuth.agent.research.picker import RewardModel, RewardModelError

    row = store.registry.active(fingerprint(base_path), "reward")
    try:
        return RewardModel.load(row.reward_path) if row is not None else None
    except RewardModelError:
        return None  # the registry says why when it is activated or used


def train_reward(store: Store, settings: Settings, dirs: Dirs, logger) -> RewardResult:
    """Fit, check and register a reward model over the configured base model."""
    choices = store.feedback.reader_choices()
    comparisons = store.feedback.comparisons()
    found = examples(choices, comparisons)
    if not found:
        raise TrainingError(
            "No rated short answers to learn from yet: rate answers the reader gave (a thumb, "
            "stars, or a correction), then train the reward model."
        )
    base = resolve_model_path(settings.model.path, dirs)
    logger.info(f"fitting the reward model on {len(found)} labelled candidates…")
    model = fit(found)
    answers = rated(choices)
    model.threshold = threshold(model, [c.candidates for c in answers])
    model.trained_on = {
        "questions": len({c.turn_id for c in answers}),
        "ratings": sum(verdict(c.thumb, c.stars) is not None for c in answers),
        "corrections": sum(bool(c.correction) for c in answers),
        "comparisons": sum(not c.tie for c in comparisons),
    }
    check = cross_check(choices, comparisons)
    registry = ModelRegistry(store)
    parent = registry.active_reward(fingerprint(base))
    number = len([m for m in store.registry.models() if m.kind == "reward"]) + 1
    path = private_dir(Path(dirs.data) / "reward") / f"reward-{number}.json"
    model.save(path)
    private_file(path)
    evaluation = {"reward": {**check, "trained_on": model.trained_on, "threshold": model.threshold}}
    row = registry.register_reward(
        name=f"reward-{number}",
        base_path=base,
        reward_path=path,
        parent_id=parent.id if parent else None,
        evaluation=evaluation,
    )
    return RewardResult(row.id, str(path), evaluation)


def describe(result: RewardResult) -> str:
    """The reward model's verdict in a few lines, ending with what to do."""
    check = result.evaluation["reward"]
    on = check["trained_on"]
    lines = [
        f"reward model {result.model_id} fitted on {on['questions']} rated questions "
        f"({on['ratings']} ratings, {on['corrections']} corrections, "
        f"{on['comparisons']} A/B choices); not sure below {check['threshold']:.2f} confidence."
    ]
    if check["n"]:
        lines.append(
            f"On your own questions, each picked by a model fitted without it: right "
            f"{check['picked']:.0%} of {check['n']} where the reader alone was right "
            f"{check['reader']:.0%} ({check['better']} better, {check['worse']} worse)."
        )
    else:
        lines.append("Too little feedback to check it on your own questions yet.")
    lines.append(
        f"Activate it with `sleuth models activate {result.model_id}`; "
        "`sleuth models rollback --reward` undoes that."
    )
    return "\n".join(lines)
