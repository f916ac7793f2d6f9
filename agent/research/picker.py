"""The reward model at answer time: of the reader's candidates (candidates.py), the one it
scores best is the short answer, and below its threshold the answer is shown as not sure.

It is a logistic model over the candidates' FEATURES, a weight each and a bias, learned from
the user's ratings, A/B choices and corrections (train/reward_model.py fits it in seconds) and
kept in the model registry beside the adapters (activate, roll back). Its score of a
candidate is the log-odds that the user would call it right; the confidence shown is that
probability. Without an active reward model the model's own reading is the short answer, as
before, with no confidence.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sleuth.agent.errors import AgentError

from .candidates import FEATURES, Candidate

FORMAT = 1  # the file's format: raised when FEATURES change meaning
# The plain reader's own preference, where learning starts: its own reading first, the rest
# unweighted. A few ratings move the weights a little; many move them far. Chosen with
# train/reward_model.py's STRENGTH on the benchmark's train pool (bench/README.md).
PRIOR = {"greedy": 1.0}
PRIOR_BIAS = -1.0


def probability(score: float) -> float:
    """A score (log-odds) as the confidence shown: the probability that the answer is right."""
    return 1 / (1 + math.exp(-score))


class RewardModelError(AgentError):
    """A reward model file that cannot be read (missing, corrupt, of another format)."""


@dataclass
class RewardModel:
    """Weights over FEATURES, a bias, and the confidence below which an answer is not sure."""

    weights: dict[str, float] = field(default_factory=lambda: dict(PRIOR))
    bias: float = PRIOR_BIAS
    threshold: float = 0.0  # confidence below this: "not sure" (0: always sure)
    trained_on: dict[str, int] = field(default_factory=dict)  # ratings, corrections, choices
    # Whether it may pick another candidate than the model's own reading: only feedback that
    # says which candidate was right (a correction) teaches it to rank; thumbs and A/B choices
    # judge the answers shown, so they teach it how sure to be of the model's own reading.
    ranks: bool = True
    format: int = FORMAT

    def score(self, features: dict[str, float]) -> float:
        """The log-odds that a candidate with these features is right."""
        return self.bias + sum(self.weights.get(n, 0.0) * features.get(n, 0.0) for n in FEATURES)

    def pick(self, candidates: list[Candidate]) -> tuple[Candidate, float]:
        """The best-scored candidate (the earlier on a tie: the model's own reading first; the
        model's own reading alone unless it `ranks`) and its confidence, 0..1. Each candidate
        keeps its score."""
        for candidate in candidates:
            candidate.score = self.score(candidate.features)
        best = candidates[self.choose([c.features for c in candidates])]
        return best, probability(best.score)

    def choose(self, features: list[dict[str, float]]) -> int:
        """Which of the candidates with these features `pick` picks (by index)."""
        scores = [self.score(f) for f in features]
        own = [n for n, f in enumerate(features) if f.get("greedy")]
        allowed = range(len(features)) if self.ranks or not own else own
        return max(allowed, key=lambda n: scores[n])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        temporary.replace(path)  # a reader never sees half a file

    @classmethod
    def load(cls, path: Path | str) -> RewardModel:
        """The reward model in `path`; RewardModelError with what to do when it cannot be."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RewardModelError(
                f"The reward model file {path} is missing: roll back (`sleuth models rollback "
                "--reward`) or train a new one."
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RewardModelError(
                f"The reward model file {path} cannot be read ({exc}): roll back or retrain."
            ) from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise RewardModelError(
                f"The reward model file {path} is of another format: train a new one."
            )
        try:
            weights = {str(k): float(v) for k, v in data["weights"].items()}
            return cls(
                weights=weights,
                bias=float(data["bias"]),
                threshold=float(data.get("threshold", 0.0)),
                ranks=bool(data.get("ranks", True)),
                trained_on={str(k): int(v) for k, v in (data.get("trained_on") or {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RewardModelError(
                f"The reward model file {path} is damaged ({exc}): roll back or retrain."
            ) from None
