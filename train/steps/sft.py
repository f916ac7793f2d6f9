"""SFT: the per-token mean log-likelihood of the good answers (and corrections)."""

from __future__ import annotations

import torch

from .context import Context


def step(ctx: Context, global_batch: list) -> tuple[torch.Tensor, dict]:
    encoded = [ctx.encode(a.messages, a.text) for a in global_batch]
    total_tokens = sum(len(e) - e.completion_start for e in encoded)
    batch = ctx.batch(ctx.world.shard(encoded))
    lp = ctx.logprobs(batch)
    loss = -lp.sum() / total_tokens  # the global per-token mean, summed over processes
    return loss, {"loss": float(ctx.world.sum_(loss.detach().clone())), "tokens": total_tokens}
