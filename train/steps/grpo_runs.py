"""GRPO over whole runs of the agent: G runs per stored question (plan, search the library,
reflect, answer), every token the model wrote in a run trained on the run's advantage."""

from __future__ import annotations

import time

import torch

from .. import losses
from ..checks import FAIL_CAP, gated_reward, hard_checks
from ..datasets import Prompt, encode, length_groups, question_of
from .context import Context, Reference, unfinished
from .grpo import answer_reward


def step(ctx: Context, global_batch: list) -> tuple[torch.Tensor, dict]:
    """G whole runs of the agent per stored question (plan, search the library, reflect,
    write), each scored by the gated reward of its answer (0 without one; F1 against the
    question's reference after the gate, where one exists). Every token the model wrote in
    a run (its plan, reflections and answer) shares the run's group advantage, with the KL
    to the base. A group whose runs all scored the same has no advantage to learn from and
    is left out of the loss (as DAPO does), KL and all: when every group is like that, the
    step costs its rollouts only. The calls are run through the model in groups of
    similar length, so a short plan is not padded to an evidence-long writer prompt."""
    prompts: list[Prompt] = ctx.world.shard(global_batch)
    config = ctx.config
    ctx.rollouts.set_adapter(ctx.export_current())
    started = time.perf_counter()
    groups = [
        ctx.rollouts.sample_runs(
            question_of(prompt.messages),
            config.group_size,
            max_new_tokens=config.max_new_tokens,
            temperature=config.temperature,
            seed=ctx.seed_for(prompt),
        )
        for prompt in prompts
    ]
    rollout_s = time.perf_counter() - started
    runs = [(prompt, run) for prompt, group in zip(prompts, groups, strict=True) for run in group]
    encoded, owner, writes = [], [], {}
    for flat, (_, run) in enumerate(runs):
        for call in run.calls:
            encode_call = encode if call.finished else unfinished
            item = encode_call(ctx.tokenizer, ctx.chat, call.messages, call.text)
            if not ctx.fits(item):
                continue
            if call.purpose == "write":
                writes[len(encoded)] = flat
            encoded.append(item)
            owner.append(flat)
    reference = Reference(ctx, encoded)
    preference: dict[int, float] = {}
    if ctx.head is not None and writes:  # the head scores answers by the base's features
        features = reference.compute(list(writes), features=True)
        scores = ctx.head.preference(torch.stack([features[i] for i in writes]).cpu())
        preference = {writes[i]: float(score) for i, score in zip(writes, scores, strict=True)}
    rewards = [
        run_reward(run, prompt.reference, preference.get(flat))
        for flat, (prompt, run) in enumerate(runs)
    ]
    rewards_t = torch.tensor(rewards).view(len(prompts), config.group_size)
    advantages = losses.group_advantages(rewards_t).view(-1)
    varied = (rewards_t.std(dim=1) > 0).tolist()
    train_on = [i for i in range(len(encoded)) if varied[owner[i] // config.group_size]]
    metrics = {
        "reward": float(rewards_t.mean()),
        "answered": sum(run.answer is not None for _, run in runs) / len(runs),
        "calls_per_run": sum(len(run.calls) for _, run in runs) / len(runs),
        "collapsed_groups": varied.count(False),
        "rollout_s": rollout_s,
    }
    if not train_on:  # the other processes still sum the loss: every one must take part
        loss = sum(p.sum() * 0.0 for p in ctx.model.parameters() if p.requires_grad)
        total = float(ctx.world.sum_(loss.detach().clone()))
        return loss, {**metrics, "loss": total, "kl": 0.0}
    reference.compute([i for i in train_on if i not in reference.rows])
    loss, kl = 0.0, 0.0
    for group in length_groups([len(encoded[i]) for i in train_on]):
        members = [train_on[j] for j in group]
        batch = ctx.batch([encoded[i] for i in members])
        ref = reference.batch(members, batch["mask"])
        seq_adv = torch.stack([advantages[owner[i]] for i in members])
        part, part_kl = ctx.policy_loss(batch, ref, seq_adv, len(prompts), len(global_batch))
        weight = len(members) / len(train_on)  # the loss is a mean over sequences
        loss, kl = loss + part * weight, kl + float(part_kl) * weight
    return loss, {
        **metrics,
        "loss": float(ctx.world.sum_(loss.detach().clone())),
        "kl": kl,
    }


def run_reward(run, reference: str | None, preference: float | None = None) -> float:
    """A sampled run's reward: its answer's; for an answer the loop rejected, the failing
    answer's share of FAIL_CAP by the hard checks it passed (below any accepted answer that
    passes them, and not all alike, so a group of failed runs still has an order to learn);
    0 with no answer written at all."""
    if run.answer is not None:
        return answer_reward(run.answer, run.evidence, reference, preference)
    if run.attempt is None:
        return 0.0
    # The gated reward of a failing answer; one that passed the hard checks all the same
    # still counts as failing (the loop's checks turned it down), at the cap.
    return min(gated_reward(hard_checks(run.attempt, run.evidence)), FAIL_CAP)
