"""The learned part of the reward: a small Bradley-Terry head on the model's pooled hidden
states, trained on the user's comparisons, ratings and corrections (a correction is a strong
"this, not that" over the answer it corrects). The hard checks, correctness against a
reference and the gated reward that combines them are in train/checks.py (no torch there).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .losses import bradley_terry_loss

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
