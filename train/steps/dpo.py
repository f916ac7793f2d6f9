"""DPO: preferred over dispreferred answers, against the base with the adapter off."""

from __future__ import annotations

import torch

from .. import losses
from .context import Context


def step(ctx: Context, global_batch: list) -> tuple[torch.Tensor, dict]:
    pairs = ctx.world.shard(global_batch)
    chosen = [ctx.encode(c.messages, c.text) for c, _ in pairs]
    rejected = [ctx.encode(r.messages, r.text) for _, r in pairs]
    batch = ctx.batch(chosen + rejected)
    per_token = ctx.logprobs(batch)
    policy = losses.sequence_logprob(per_token, batch["mask"])
    ref = losses.sequence_logprob(ctx.logprobs(batch, reference=True), batch["mask"])
    n = len(pairs)
    if ctx.config.dpo_loss == "ipo":
        tokens = batch["mask"].sum(-1)
        loss, chosen_reward, rejected_reward = losses.ipo_loss(
            policy[:n], policy[n:], ref[:n], ref[n:], tokens[:n], tokens[n:], ctx.config.beta
        )
    else:
        loss, chosen_reward, rejected_reward = losses.dpo_loss(
            policy[:n], policy[n:], ref[:n], ref[n:], ctx.config.beta
        )
    extra = {}
    if ctx.config.sft_weight:  # RPO: the chosen answers' own likelihood, as SFT would
        nll = losses.sft_loss(per_token[:n], batch["mask"][:n])
        loss = loss + ctx.config.sft_weight * nll
        extra["chosen_nll"] = float(nll.detach())
    loss = loss * ctx.share(n, len(global_batch))
    margin = chosen_reward - rejected_reward
    return loss, {
        "loss": float(ctx.world.sum_(loss.detach().clone())),
        "reward_margin": float(margin.mean()),
        "accuracy": float((margin > 0).float().mean()),
        **extra,
    }
