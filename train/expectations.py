"""What feedback is likely to buy, said before training: Sleuth's own learning curve.

bench/reward_curve.py measures how held-out answers change after a reward model is fitted to
the feedback of 10 to 320 questions (each rated and, where wrong, corrected);
`bench/report.py --write` copies its points into assets/learning_curve.json, which ships with
Sleuth. Here that curve is read against how many questions this user has rated, so the Train
screen and `sleuth train` can say, for example:

    In Sleuth's benchmark (qwen2.5-0.5b, reward model, 400 held-out questions), training on
    20 rated questions changed held-out F1 by +0.01 (95% interval -0.01 to +0.03: no clear
    change); on 40 rated questions by +0.02 (95% interval +0.00 to +0.04: better). You have
    rated 23 questions.

No curve shipped (or one that does not parse): nothing is said.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

CURVE_FILE = "learning_curve.json"


def load_curve() -> dict | None:
    """The shipped learning curve ({"model": an alias, "gguf": its file's stem, "pipeline",
    "n_questions", "commit", "points": [{"ratings", "f1": {"mean", "ci95"}}, ...]}), or None
    when none ships or it does not parse."""
    try:
        text = resources.files("sleuth.assets").joinpath(CURVE_FILE).read_text("utf-8")
        return parse_curve(json.loads(text))
    except (OSError, ValueError):
        return None


def parse_curve(raw: dict) -> dict | None:
    """The curve with its fields checked and typed (ValueError where one is missing or odd);
    None when it has no points."""
    try:
        points = [
            {
                "ratings": int(point["ratings"]),
                "f1": {
                    "mean": float(point["f1"]["mean"]),
                    "ci95": [float(point["f1"]["ci95"][0]), float(point["f1"]["ci95"][1])],
                },
            }
            for point in raw["points"]
        ]
        curve = {
            "model": str(raw["model"]),
            "gguf": str(raw.get("gguf") or ""),
            "pipeline": str(raw["pipeline"]),
            "n_questions": int(raw["n_questions"]),
            "commit": str(raw.get("commit") or ""),
            "points": points,
        }
    except (KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not a learning curve: {exc}") from exc
    return curve if points else None


def questions_rated(store) -> int:
    """How many questions (turns) have at least one answer rated, compared or corrected."""
    answers = store.feedback.rated_answers()
    turn_of = {answer.answer_id: answer.turn_id for answer in answers}
    turns = {
        answer.turn_id
        for answer in answers
        if answer.thumb is not None or answer.stars is not None or answer.correction
    }
    for comparison in store.feedback.comparisons():
        pair = (comparison.winner_id, comparison.loser_id)
        turns.update(turn_of[answer_id] for answer_id in pair if answer_id in turn_of)
    return len(turns)


def expectation(rated: int, model: str, curve: dict | None) -> str | None:
    """One or two sentences: what the benchmark's training on about as many rated questions as
    `rated` did to held-out F1 (the point at or below it, and the next one up), and for which
    model. `model`: the model setting (an alias or a GGUF path; "" for the default)."""
    if not curve:
        return None
    points = sorted(curve["points"], key=lambda p: p["ratings"])
    below = [p for p in points if p["ratings"] <= rated]
    above = [p for p in points if p["ratings"] > rated]
    shown = ([below[-1]] if below else []) + above[:1]
    parts = []
    for number, point in enumerate(shown):
        lead = "training on" if number == 0 else "on"
        says = _change(point["f1"]["mean"], point["f1"]["ci95"], first=number == 0)
        parts.append(f"{lead} {point['ratings']} rated questions {says}")
    about = f"{curve['model']}, {curve['pipeline']}, {curve['n_questions']} held-out questions"
    text = f"In Sleuth's benchmark ({about}), " + "; ".join(parts) + "."
    text += f" You have rated {rated} question{'s' if rated != 1 else ''}."
    if not _same_model(model, curve):
        text += f" (Measured with {curve['model']}; yours may learn faster or slower.)"
    return text


def _change(mean: float, ci95: list[float], first: bool) -> str:
    low, high = ci95
    verb = "changed held-out F1 by " if first else "by "
    interval = f"{_bound(low)} to {_bound(high)}"
    verdict = "no clear change" if low <= 0 <= high else "better" if low > 0 else "worse"
    return f"{verb}{_signed(mean)} (95% interval {interval}: {verdict})"


def _bound(value: float) -> str:
    """An interval's end: signed, and "just below 0" or "just above 0" where it rounds to zero
    but is not (an interval said to lie below zero does not end at +0.00)."""
    if round(value, 2) == 0 and value != 0:
        return "just below 0" if value < 0 else "just above 0"
    return _signed(value)


def _signed(value: float) -> str:
    """+0.04, -0.01, and +0.00 for what rounds to zero (not -0.00)."""
    return f"{round(value, 2) + 0.0:+.2f}"


def _same_model(model: str, curve: dict) -> bool:
    """Whether the user's model setting names the model the curve measured."""
    from sleuth.agent.models.catalog import DEFAULT_MODEL

    spec = model or DEFAULT_MODEL
    names = {curve.get("model"), curve.get("gguf")}
    return spec in names or Path(spec).stem in names


def what_feedback_buys(store, model: str) -> str | None:
    """`expectation` for this store's feedback and the shipped curve."""
    return expectation(questions_rated(store), model, load_curve())
