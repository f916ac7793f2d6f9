"""KTO: answers labelled good or bad, each against a shared reference point (the KL of
answers read after another answer's prompt)."""

from __future__ import annotations

import torch

from .. import losses
from ..feedback import label_of
from .context import Context


def step(ctx: Context, global_batch: list) -> tuple[torch.Tensor, dict]:
    answers = ctx.world.shard(global_batch)
    matched = [ctx.encode(a.messages, a.text) for a in answers]
    # KTO's reference point: each answer scored after another answer's prompt.
    shifted = answers[1:] + answers[:1]
    mismatched = [ctx.encode(a.messages, b.text) for a, b in zip(answers, shifted, strict=True)]
    batch = ctx.batch(matched)
    policy = losses.sequence_logprob(ctx.logprobs(batch), batch["mask"])
    ref = losses.sequence_logprob(ctx.logprobs(batch, reference=True), batch["mask"])
    kl_batch = ctx.batch(mismatched)
    with torch.no_grad():
        policy_kl = losses.sequence_logprob(ctx.logprobs(kl_batch), kl_batch["mask"])
    ref_kl = losses.sequence_logprob(ctx.logprobs(kl_batch, reference=True), kl_batch["mask"])
    local_kl = (policy_kl - ref_kl).sum()
    kl = (ctx.world.sum_(local_kl) / len(global_batch)).clamp(min=0)
    labels = torch.tensor([bool(label_of(a)) for a in answers], device=ctx.device)
    loss = losses.kto_loss(policy, ref, labels, kl, ctx.config.beta)
    loss = loss * ctx.share(len(answers), len(global_batch))
    return loss, {"loss": float(ctx.world.sum_(loss.detach().clone())), "kl": float(kl)}
