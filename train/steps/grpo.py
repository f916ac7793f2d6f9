"""GRPO over answers to stored prompts: G samples per prompt, scored by the gated reward,
normalised within the group, a clipped policy loss with the KL to the base. The learned part
of the reward is the active reward model's confidence in a short answer that is one of the
reader's candidates, else the preference head's score."""

from __future__ import annotations

import time

import torch

from sleuth.agent.research.picker import probability
from sleuth.agent.research.reader import SHORT_TOKENS, answer_form, read_answer

from .. import losses
from ..checks import correctness, gated_reward, hard_checks, normalize_answer
from ..datasets import Prompt, encode, question_of
from ..reward_model import said
from .context import Context, unfinished


def step(ctx: Context, global_batch: list) -> tuple[torch.Tensor, dict]:
    prompts: list[Prompt] = ctx.world.shard(global_batch)
    config = ctx.config
    if ctx.rollouts.name == "llama.cpp":
        ctx.rollouts.set_adapter(ctx.export_current())
    sampled, rollout_s, rollout_tokens = [], time.perf_counter(), 0
    for prompt in prompts:
        question = question_of(prompt.messages)
        samples = ctx.rollouts.sample(
            prompt.messages,
            config.group_size,
            max_new_tokens=SHORT_TOKENS if prompt.reads else config.max_new_tokens,
            temperature=config.temperature,
            seed=ctx.seed_for(prompt),
            form=answer_form(question, prompt.evidence) if prompt.reads else None,
        )
        sampled.append(samples)
        rollout_tokens += sum(len(ctx.tokenizer(s.text).input_ids) for s in samples)
    rollout_s = time.perf_counter() - rollout_s
    encoded = [
        encode(ctx.tokenizer, ctx.chat, prompt.messages, sample.text)
        if sample.finished
        else unfinished(ctx.tokenizer, ctx.chat, prompt.messages, sample.text)
        for prompt, samples in zip(prompts, sampled, strict=True)
        for sample in samples
    ]
    batch = ctx.batch(encoded)
    ref, feats = ctx.logprobs(batch, reference=True, features=True)
    preference = ctx.head.preference(feats.cpu()) if ctx.head is not None else None
    pairs = [(p, s) for p, samples in zip(prompts, sampled, strict=True) for s in samples]
    learned = [judged(ctx.reward_model, prompt, sample.text) for prompt, sample in pairs]
    rewards = [
        answer_reward(
            shown(prompt, sample.text),
            prompt.evidence,
            prompt.reference,
            learned[flat]
            if learned[flat] is not None
            else None
            if preference is None
            else float(preference[flat]),
        )
        for flat, (prompt, sample) in enumerate(pairs)
    ]
    rewards_t = torch.tensor(rewards).view(len(prompts), config.group_size)
    advantages = losses.group_advantages(rewards_t).view(-1)
    loss, kl = ctx.policy_loss(batch, ref, advantages, len(prompts), len(global_batch))
    distinct = [len({s.text for s in samples}) / config.group_size for samples in sampled]
    collapsed = int((rewards_t.std(dim=1) == 0).sum())
    return loss, {
        "loss": float(ctx.world.sum_(loss.detach().clone())),
        "reward": float(rewards_t.mean()),
        "pass_rate": float((rewards_t >= 0.5).float().mean()),
        "kl": float(kl),
        "diversity": sum(distinct) / len(distinct),
        "collapsed_groups": collapsed,
        "rollout_tokens_per_s": rollout_tokens / max(rollout_s, 1e-9),
    }


def shown(prompt: Prompt, text: str) -> str:
    """A sample as the app would show it: a reader's short answer is read (cited, quoted
    under) before it is judged; a written answer is judged as written."""
    if not prompt.reads:
        return text
    return read_answer(text, question_of(prompt.messages), prompt.evidence).text


def judged(reward_model, prompt: Prompt, text: str) -> float | None:
    """The active reward model's confidence in a sampled short answer, where it is one of the
    reader's candidates for the prompt (their features are stored with its answer); None
    otherwise (the preference head, if any, judges it then)."""
    if reward_model is None or not prompt.reads or not prompt.candidates:
        return None
    short = read_answer(text, question_of(prompt.messages), prompt.evidence).short
    wanted = normalize_answer(short or "")
    for candidate in prompt.candidates:
        if wanted and normalize_answer(said(candidate)) == wanted:
            return probability(reward_model.score(candidate["features"]))
    return None


def answer_reward(
    text: str, evidence: list[dict], reference: str | None, preference: float | None = None
) -> float:
    """The gated reward of an answer against its evidence, with F1 against the reference
    (where one exists) after the gate."""
    right = correctness(text, reference) if reference else None
    return gated_reward(hard_checks(text, evidence), preference, right.f1 if right else None)
