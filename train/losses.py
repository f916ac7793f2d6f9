"""Losses as pure functions. Shapes in comments: B sequences, T tokens, V vocabulary, H hidden.

`token_logprobs` computes the log-probability of each target token from hidden states without
materialising the (B, T, V) logits or their log-softmax: it walks the sequence in chunks and
recomputes each chunk's logits in the backward pass (activation checkpointing). With Gemma 3's
262k vocabulary a full fp32 logits tensor for 2 x 1024 tokens is 2 GB; a chunk of 128 is 1/8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def _chunk_logprobs(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, softcap: float | None
) -> torch.Tensor:
    logits = (hidden @ weight.T).float()  # (B, C, V)
    if softcap is not None:
        logits = torch.tanh(logits / softcap) * softcap
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, C)
    return picked - torch.logsumexp(logits, dim=-1)


def token_logprobs(
    hidden: torch.Tensor,  # (B, T, H) final hidden states (after the final norm)
    weight: torch.Tensor,  # (V, H) the output projection (lm_head)
    targets: torch.Tensor,  # (B, T) the token each position predicts
    chunk: int = 128,
    softcap: float | None = None,
) -> torch.Tensor:  # (B, T)
    """log p(targets[b, t] | context) for every position, chunk by chunk."""
    pieces = []
    for start in range(0, hidden.shape[1], chunk):
        h, y = hidden[:, start : start + chunk], targets[:, start : start + chunk]
        if torch.is_grad_enabled() and (h.requires_grad or weight.requires_grad):
            pieces.append(checkpoint(_chunk_logprobs, h, weight, y, softcap, use_reentrant=False))
        else:
            pieces.append(_chunk_logprobs(h, weight, y, softcap))
    return torch.cat(pieces, dim=1)


def completion_logprobs(
    hidden: torch.Tensor,  # (B, T, H)
    weight: torch.Tensor,  # (V, H)
    targets: torch.Tensor,  # (B, T)
    mask: torch.Tensor,  # (B, T) 1 on completion tokens
    chunk: int = 256,
    softcap: float | None = None,
) -> torch.Tensor:  # (B, T), 0 off the completion
    """`token_logprobs * mask`, projecting only the completion positions onto the vocabulary.
    A writer prompt is ~90% evidence, so this skips most of the lm_head work (with a 262k
    vocabulary, about half a step's compute) and its memory."""
    where = mask.bool()
    picked = token_logprobs(
        hidden[where].unsqueeze(0), weight, targets[where].unsqueeze(0), chunk, softcap
    )[0]
    return torch.zeros_like(mask, dtype=picked.dtype).masked_scatter(where, picked)


def sequence_logprob(
    logprobs: torch.Tensor,  # (B, T) per-token log-probs
    mask: torch.Tensor,  # (B, T) 1 on completion tokens
) -> torch.Tensor:  # (B,)
    """Sum of the completion tokens' log-probs."""
    return (logprobs * mask).sum(-1)


def sft_loss(
    logprobs: torch.Tensor,  # (B, T)
    mask: torch.Tensor,  # (B, T) 1 on completion tokens
) -> torch.Tensor:  # ()
    """Negative log-likelihood per completion token."""
    return -(logprobs * mask).sum() / mask.sum().clamp(min=1)


def dpo_loss(
    policy_chosen: torch.Tensor,  # (B,) sequence log-probs under the policy
    policy_rejected: torch.Tensor,  # (B,)
    ref_chosen: torch.Tensor,  # (B,) under the reference (the adapter disabled)
    ref_rejected: torch.Tensor,  # (B,)
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # loss (), chosen reward (B,), rejected (B,)
    """DPO with the sigmoid loss (Rafailov et al. 2023)."""
    chosen_ratio = policy_chosen - ref_chosen
    rejected_ratio = policy_rejected - ref_rejected
    loss = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()
    return loss, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def ipo_loss(
    policy_chosen: torch.Tensor,  # (B,) sequence log-probs under the policy
    policy_rejected: torch.Tensor,  # (B,)
    ref_chosen: torch.Tensor,  # (B,) under the reference
    ref_rejected: torch.Tensor,  # (B,)
    chosen_tokens: torch.Tensor,  # (B,) completion tokens of each chosen answer
    rejected_tokens: torch.Tensor,  # (B,)
    beta: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:  # loss (), chosen reward (B,), rejected (B,)
    """IPO (Azar et al. 2023, eq. 17) as TRL computes it: each side's log-ratio per completion
    token, their difference regressed onto 1/(2 beta). The margin has a target, so a pair
    already apart stops pulling, and no side gains by its length."""
    chosen_ratio = (policy_chosen - ref_chosen) / chosen_tokens.clamp(min=1)
    rejected_ratio = (policy_rejected - ref_rejected) / rejected_tokens.clamp(min=1)
    loss = ((chosen_ratio - rejected_ratio - 1 / (2 * beta)) ** 2).mean()
    return loss, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


def kto_loss(
    policy: torch.Tensor,  # (B,) sequence log-probs under the policy
    ref: torch.Tensor,  # (B,) under the reference
    labels: torch.Tensor,  # (B,) True for desirable answers
    kl: torch.Tensor,  # () estimate of KL(policy || ref), detached, >= 0
    beta: float,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> torch.Tensor:  # ()
    """KTO (Ethayarajh et al. 2024, eqn. 7): unpaired good/bad answers against a KL anchor."""
    ratio = policy - ref  # (B,)
    labels = labels.bool()
    desirable = desirable_weight * (1 - torch.sigmoid(beta * (ratio[labels] - kl)))
    undesirable = undesirable_weight * (1 - torch.sigmoid(beta * (kl - ratio[~labels])))
    return torch.cat([desirable, undesirable]).mean()


def kto_kl_estimate(
    policy_mismatched: torch.Tensor,  # (B,) log-probs of completions paired with other prompts
    ref_mismatched: torch.Tensor,  # (B,)
) -> torch.Tensor:  # ()
    """KTO's reference point: mean log-ratio on mismatched pairs, clamped at 0, no gradient."""
    return (policy_mismatched - ref_mismatched).mean().detach().clamp(min=0)


def group_advantages(
    rewards: torch.Tensor,  # (N, G) rewards of G answers to each of N prompts
    eps: float = 1e-4,
) -> torch.Tensor:  # (N, G)
    """GRPO's advantages: rewards normalised within their group (a group that all scored the
    same gets zero advantage: it teaches nothing)."""
    mean = rewards.mean(dim=1, keepdim=True)
    std = rewards.std(dim=1, keepdim=True)
    return (rewards - mean) / (std + eps)


def grpo_loss(
    logprobs: torch.Tensor,  # (B, T) per-token log-probs under the current policy
    old_logprobs: torch.Tensor,  # (B, T) under the policy that sampled the answers
    ref_logprobs: torch.Tensor,  # (B, T) under the reference (adapter disabled)
    advantages: torch.Tensor,  # (B,)
    mask: torch.Tensor,  # (B, T) 1 on completion tokens
    beta: float,
    clip_eps: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:  # loss (), mean per-token KL ()
    """Clipped policy gradient with a k3 KL penalty to the reference, averaged per sequence
    over its tokens and then over sequences (TRL's loss_type="grpo")."""
    ratio = torch.exp(logprobs - old_logprobs)  # (B, T)
    clipped = torch.clamp(ratio, 1 - clip_eps, 1 + clip_eps)
    adv = advantages.unsqueeze(1)  # (B, 1)
    per_token = -torch.min(ratio * adv, clipped * adv)  # (B, T)
    delta = ref_logprobs - logprobs
    kl = torch.exp(delta) - delta - 1  # (B, T), k3 estimator, >= 0
    per_token = per_token + beta * kl
    lengths = mask.sum(-1).clamp(min=1)  # (B,)
    loss = ((per_token * mask).sum(-1) / lengths).mean()
    mean_kl = ((kl * mask).sum(-1) / lengths).mean().detach()
    return loss, mean_kl


def bradley_terry_loss(
    winner_scores: torch.Tensor,  # (P,) scores of preferred answers
    loser_scores: torch.Tensor,  # (P,)
) -> torch.Tensor:  # ()
    """-log sigmoid(s_w - s_l): the preference head's pairwise loss."""
    return -F.logsigmoid(winner_scores - loser_scores).mean()
