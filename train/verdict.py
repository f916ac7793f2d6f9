"""An adapter's evaluation against its parent, as a type and as text. No torch here: the
command line and the app's Models screen render it without loading the trainer.

Each metric is a ratio of sums over held-out prompts (a mean is a sum over a count; citation
validity is valid citations over citations written), so one paired bootstrap serves them all:
the prompts are resampled with replacement, the same draw for parent and new, and the 2.5th and
97.5th percentiles of the difference are its 95% interval. The new adapter is offered as better
only when the interval of the deciding metric (correctness F1 where prompts have a reference
answer, else the reward) lies above zero and citation validity did not fall by more than
VALIDITY_SLACK.

The trainer stores `Evaluation.as_dict()` with the training run and the registry row;
`Evaluation.from_dict` reads it back, so its fields are spelled in one place.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

BOOTSTRAP_DRAWS = 2000
VALIDITY_SLACK = 0.05
# What each metric is, as the report names it; the order they are shown in.
METRICS = {
    "f1": "correctness: token F1 of the answer's first sentence against the reference",
    "contains": "correctness: the reference appears in the answer",
    "em": "correctness: exact match of the first sentence",
    "citation_validity": "citations that point at real evidence, of those written",
    "support": "cited sentences supported by what they cite, of those cited",
    "reward": "the gated reward",
    "pass_rate": "answers passing every hard check",
}

Parts = Sequence[tuple[float, float]]  # per prompt: (numerator, denominator)


def ratio(parts: Parts, draw: Sequence[int] | None = None) -> float | None:
    indices = range(len(parts)) if draw is None else draw
    num = sum(parts[i][0] for i in indices)
    den = sum(parts[i][1] for i in indices)
    return num / den if den else None


@dataclass(frozen=True)
class Difference:
    """One metric for parent and new, and new minus parent with its 95% interval."""

    n: float  # what the metric is counted over (prompts, citations, sentences), parent + new
    parent: float
    new: float
    mean: float
    ci95: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ci95": list(self.ci95)}


def paired_bootstrap(
    parent: Parts, new: Parts, *, draws: int = BOOTSTRAP_DRAWS, seed: int = 0
) -> Difference | None:
    """The difference of a ratio-of-sums metric, new minus parent, over the same prompts;
    None where neither side has anything to count."""
    assert len(parent) == len(new)
    a, b = ratio(parent), ratio(new)
    if a is None or b is None:
        return None
    rng = random.Random(seed)
    size = len(parent)
    diffs = []
    for _ in range(draws):
        draw = [rng.randrange(size) for _ in range(size)]
        x, y = ratio(parent, draw), ratio(new, draw)
        if x is not None and y is not None:
            diffs.append(y - x)
    diffs.sort()
    lo = diffs[int(0.025 * (len(diffs) - 1))]
    hi = diffs[int(0.975 * (len(diffs) - 1))]
    n = sum(d for _, d in parent) + sum(d for _, d in new)
    return Difference(n, a, b, b - a, (lo, hi))


def decide(differences: dict[str, Difference]) -> tuple[str, bool]:
    """(the deciding metric, whether the new adapter is better by it)."""
    primary = "f1" if "f1" in differences else "reward"
    deciding = differences.get(primary)
    validity = differences.get("citation_validity")
    held = validity is None or validity.mean >= -VALIDITY_SLACK
    return primary, bool(deciding is not None and deciding.ci95[0] > 0 and held)


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
    differences: dict[str, Difference] = field(default_factory=dict)  # by METRICS name
    decided_by: str = ""  # the metric whose interval decided `improved`
    references: int = 0  # held-out prompts with a reference answer

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Evaluation | None:
        if not data:
            return None
        sides = {k: Scores(**data[k]) for k in ("parent", "new") if data.get(k)}
        differences = {
            name: Difference(**{**d, "ci95": tuple(d["ci95"])})
            for name, d in (data.get("differences") or {}).items()
        }
        return cls(
            n=int(data.get("n", 0)),
            improved=bool(data.get("improved")),
            win_rate=float(data.get("win_rate", 0.0)),
            note=data.get("note", ""),
            examples=list(data.get("examples", [])),
            differences=differences,
            decided_by=data.get("decided_by", ""),
            references=int(data.get("references", 0)),
            **sides,
        )

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["differences"] = {k: d.as_dict() for k, d in self.differences.items()}
        return data


def summary(evaluation: Evaluation | None) -> str:
    """One short line: "reward 0.210→0.480, win 0.75, better" (empty when not measured)."""
    if evaluation is None or not evaluation.n or evaluation.parent is None or not evaluation.new:
        return ""
    better = ", better" if evaluation.improved else ""
    d = evaluation.differences.get(evaluation.decided_by)
    if d is not None:
        return (
            f"{evaluation.decided_by} {d.parent:.3f}→{d.new:.3f} "
            f"[{d.ci95[0]:+.2f}, {d.ci95[1]:+.2f}]{better}"
        )
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
    if evaluation.differences:
        lines = [
            f"held-out prompts: {evaluation.n} ({evaluation.references} with a reference answer)"
        ]
        for name in METRICS:
            d = evaluation.differences.get(name)
            if d is None:
                continue
            mark = " *" if name == evaluation.decided_by else ""
            lines.append(
                f"  {name:<17} parent {d.parent:.3f} -> new {d.new:.3f}  "
                f"diff {d.mean:+.3f} [{d.ci95[0]:+.3f}, {d.ci95[1]:+.3f}]  n={d.n:g}{mark}"
            )
        lines.append(
            f"  win rate of new vs parent: {evaluation.win_rate:.2f}   "
            "(diff: new - parent, [95% interval]; * decides)"
        )
        return lines
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
    by = evaluation.decided_by or "reward"
    if evaluation.improved:
        lines.append(
            f"The new model is better ({by}: the 95% interval of the difference is above zero): "
            f"activate it with `sleuth models activate {model_id}`."
        )
    else:
        lines.append(
            f"The new model is not shown to be better ({by}: the 95% interval of the difference "
            f"includes zero or less, or citation validity fell); it is registered as model "
            f"{model_id} but not offered."
        )
    return "\n".join(lines)
