"""An adapter's evaluation against its parent, as a type and as text. No torch here: the
command line and the app's Models screen render it without loading the trainer.

The trainer stores `Evaluation.as_dict()` with the training run and the registry row;
`Evaluation.from_dict` reads it back, so its fields are spelled in one place.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Scores:
    """One model's answers to the held-out prompts, scored."""

    reward: float
    pass_rate: float
    check_rates: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Evaluation:
    n: int  # held-out prompts answered by both
    improved: bool  # offered as better than its parent
    parent: Scores | None = None
    new: Scores | None = None
    win_rate: float = 0.0
    note: str = ""  # why there is no verdict (no held-out prompts yet)
    examples: list[dict[str, str]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Evaluation | None:
        if not data:
            return None
        sides = {k: Scores(**data[k]) for k in ("parent", "new") if data.get(k)}
        return cls(
            n=int(data.get("n", 0)),
            improved=bool(data.get("improved")),
            win_rate=float(data.get("win_rate", 0.0)),
            note=data.get("note", ""),
            examples=list(data.get("examples", [])),
            **sides,
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary(evaluation: Evaluation | None) -> str:
    """One short line: "reward 0.210→0.480, win 0.75, better" (empty when not measured)."""
    if evaluation is None or not evaluation.n or evaluation.parent is None or not evaluation.new:
        return ""
    better = ", better" if evaluation.improved else ""
    return (
        f"reward {evaluation.parent.reward:.3f}→{evaluation.new.reward:.3f}, "
        f"win {evaluation.win_rate:.2f}{better}"
    )


def details(evaluation: Evaluation | None) -> list[str]:
    """The evaluation line by line: counts, reward, pass rate, each check, the verdict."""
    if evaluation is None:
        return []
    if not evaluation.n or evaluation.parent is None or evaluation.new is None:
        return [evaluation.note] if evaluation.note else []
    parent, new = evaluation.parent, evaluation.new
    lines = [
        f"held-out prompts: {evaluation.n}",
        f"  reward     parent {parent.reward:.3f} -> new {new.reward:.3f}",
        f"  pass rate  parent {parent.pass_rate:.2f} -> new {new.pass_rate:.2f}",
    ]
    lines += [
        f"  {name:<10} parent {parent.check_rates.get(name, 0.0):.2f} -> new {rate:.2f}"
        for name, rate in new.check_rates.items()
    ]
    lines.append(f"  win rate of new vs parent: {evaluation.win_rate:.2f}")
    return lines


def verdict(evaluation: Evaluation | None, model_id: int | None) -> str:
    """The evaluation in one paragraph, ending with what to do."""
    if evaluation is None or not evaluation.n:
        note = evaluation.note if evaluation and evaluation.note else "not evaluated"
        return (
            f"model {model_id} registered; {note}. "
            f"Activate it with `sleuth models activate {model_id}` if you want it anyway."
        )
    lines = details(evaluation)
    if evaluation.improved:
        lines.append(
            f"The new model is better: activate it with `sleuth models activate {model_id}`."
        )
    else:
        lines.append(
            f"The new model is not better; it is registered as model {model_id} but not offered."
        )
    return "\n".join(lines)
