"""Rewards: hard checks first, then a learned preference score, gated.

Hard checks (each a pure function of the answer and the evidence it was written from):
  cites      at least one citation, and every [n] points at real evidence
  grounded   every cited sentence is supported by the evidence it cites
  format     prose, not a copy of the prompt or of the evidence list, no repetition loop
  length     between MIN_WORDS and MAX_WORDS words
The preference score comes from a small Bradley-Terry head on the model's pooled hidden
states, trained on the user's comparisons and ratings. Failing any hard check caps the reward
below every passing answer's, whatever the preference head says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from sleuth.agent.answers import problems
from sleuth.agent.citations import cited_numbers
from sleuth.agent.writer import verify

from .losses import bradley_terry_loss

MIN_WORDS = 5
MAX_WORDS = 250
FAIL_CAP = 0.4  # the most a failing answer can score; a passing one scores 0.5 to 1.0
CHECKS = ("cites", "grounded", "format", "length")


@dataclass
class Checked:
    """An answer's hard checks and the verification they came from."""

    checks: dict[str, bool]
    verification: dict
    citations: int

    @property
    def passed(self) -> bool:
        return all(self.checks.values())


def cites(text: str, n_evidence: int) -> bool:
    """At least one citation, and none pointing past the evidence."""
    numbers = cited_numbers(text)
    return bool(numbers) and all(1 <= n <= n_evidence for n in numbers)


def well_formed(text: str) -> bool:
    """Prose rather than a loop, citation markers, a copy of the prompt or of the evidence list:
    the same checks the research loop makes before it shows an answer (agent/answers.py)."""
    return not problems(text)


def length_ok(text: str) -> bool:
    return MIN_WORDS <= len(text.split()) <= MAX_WORDS


def hard_checks(text: str, evidence: list[dict]) -> Checked:
    """All hard checks of one answer against its evidence."""
    checked = verify(text, evidence)
    grounded = bool(checked.citations) and all(c["supported"] for c in checked.citations)
    return Checked(
        checks={
            "cites": cites(text, len(evidence)),
            "grounded": grounded,
            "format": well_formed(text),
            "length": length_ok(text),
        },
        verification=checked.verification,
        citations=checked.verification["citations"],
    )


def gated_reward(checked: Checked, preference: float | None = None) -> float:
    """0.5 + 0.5 * preference when every hard check passes (1.0 with no preference head);
    otherwise at most FAIL_CAP, in proportion to the checks passed."""
    if checked.passed:
        return 0.5 + 0.5 * (1.0 if preference is None else float(preference))
    passed = sum(checked.checks.values())
    return FAIL_CAP * passed / len(checked.checks)


# -- the preference head -----------------------------------------------------------------------


class PreferenceHead(torch.nn.Module):
    """A linear score on mean-pooled hidden states of the answer's tokens."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.norm = torch.nn.LayerNorm(hidden_size, elementwise_affine=False)
        self.score = torch.nn.Linear(hidden_size, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (N, H) -> (N,)
        return self.score(self.norm(features)).squeeze(-1)

    def preference(self, features: torch.Tensor) -> torch.Tensor:  # (N,) in 0..1
        with torch.no_grad():
            return torch.sigmoid(self(features))

    def save(self, path: Path) -> None:
        torch.save({"hidden_size": self.score.in_features, "state": self.state_dict()}, path)

    @classmethod
    def load(cls, path: Path) -> PreferenceHead:
        data = torch.load(path, weights_only=True)
        head = cls(data["hidden_size"])
        head.load_state_dict(data["state"])
        return head


def pooled(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of the hidden states where mask is 1. hidden (N, T, H), mask (N, T) -> (N, H)."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)


def train_preference_head(
    pairs: list[tuple[torch.Tensor, torch.Tensor]],  # (winner features, loser features)
    labeled: list[tuple[torch.Tensor, bool]],  # (features, desirable)
    hidden_size: int,
    *,
    steps: int = 300,
    lr: float = 0.01,
    weight_decay: float = 0.01,
    seed: int = 0,
) -> PreferenceHead:
    """Fit the head: Bradley-Terry on pairs plus a logistic loss on labelled answers."""
    torch.manual_seed(seed)
    head = PreferenceHead(hidden_size)
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    winners = torch.stack([w for w, _ in pairs]) if pairs else None
    losers = torch.stack([loser for _, loser in pairs]) if pairs else None
    singles = torch.stack([f for f, _ in labeled]) if labeled else None
    labels = torch.tensor([float(y) for _, y in labeled]) if labeled else None
    for _ in range(steps):
        loss = torch.zeros(())
        if winners is not None:
            loss = loss + bradley_terry_loss(head(winners), head(losers))
        if singles is not None:
            loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(
                head(singles), labels
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return head.eval()
