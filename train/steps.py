"""The per-algorithm training steps (SFT, DPO, KTO, GRPO) and what they share: the model with
its LoRA, the tokenizer and chat format, the process layout, and log-probs computed from hidden
states (train/losses.py). Each step takes a global batch and returns (loss, metrics).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import torch

from . import losses
from .checks import FAIL_CAP, correctness, gated_reward, hard_checks
from .config import TrainConfig
from .datasets import Encoded, Feedback, Prompt, collate, encode, length_groups, question_of
from .distributed import World
from .errors import TrainError
from .feedback import Example, label, label_of
from .model_io import attach_lora, factors_from_peft, write_gguf_adapter
from .rewards import PreferenceHead, pooled, train_preference_head


def trainable(model, config: TrainConfig):
    """The model with a fresh LoRA attached and, unless turned off, its layers recomputed in
    the backward pass. Without that every layer keeps its (heads x T x T) attention for the
    backward pass: ~20 GB for a DPO batch of 1,500-token writer prompts on the 135M model."""
    if config.gradient_checkpointing:
        kwargs = {"use_reentrant": False}
        if hasattr(model, "activation_checkpointing_enable"):  # its name from transformers 5.x
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    return attach_lora(model, config.lora_r, config.lora_alpha)


class Context:
    """The model, tokenizer and settings the per-algorithm steps share."""

    def __init__(
        self,
        model,
        tokenizer,
        chat,
        config: TrainConfig,
        world: World,
        device: str,
        softcap: float | None,
    ):
        self.model, self.tokenizer, self.chat = model, tokenizer, chat
        self.config, self.world, self.device, self.softcap = config, world, device, softcap
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self._encoded: dict[tuple, Encoded] = {}
        self.rollouts = None
        self.head: PreferenceHead | None = None
        self.step = 0

    # data

    def encode(self, messages, answer: str) -> Encoded:
        key = (id(messages), answer)
        if key not in self._encoded:
            self._encoded[key] = encode(self.tokenizer, self.chat, messages, answer)
        return self._encoded[key]

    def fits(self, *encoded: Encoded) -> bool:
        return all(len(e) <= self.config.max_length for e in encoded)

    def prepare(self, feedback: Feedback) -> list:
        """The training examples of the configured algorithm that fit max_length."""
        algo = self.config.algo
        if algo == "sft":
            data = [a for a in feedback.sft if self.fits(self.encode(a.messages, a.text))]
        elif algo == "kto":
            data = [a for a in feedback.kto if self.fits(self.encode(a.messages, a.text))]
        elif algo == "dpo":
            data = [
                (c, r)
                for c, r in feedback.dpo
                if self.fits(self.encode(c.messages, c.text), self.encode(r.messages, r.text))
            ]
        else:
            data = [
                p
                for p in feedback.prompts
                if self.fits(
                    Encoded(
                        self.tokenizer(
                            self.chat.prompt(p.messages), add_special_tokens=False
                        ).input_ids,
                        0,
                    )
                )
            ]
        if not data:
            raise TrainError(
                f"Every {algo.upper()} example is longer than --max-length "
                f"{self.config.max_length} tokens: raise it."
            )
        return data

    def batch(self, items: list[Encoded]) -> dict[str, torch.Tensor]:
        return {k: v.to(self.device) for k, v in collate(items, self.pad_id).items()}

    # forward passes

    def logprobs(self, batch: dict, *, reference: bool = False, features: bool = False):
        """Per-token log-probs of the targets (B, T), masked to the completion; with
        `reference`, under the model with the adapter disabled. With `features`, also the
        mean hidden state of the completion tokens (B, H) for the preference head."""

        def run():
            inner = self.model.get_base_model()
            hidden = inner.model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            ).last_hidden_state[:, :-1]
            lp = losses.completion_logprobs(
                hidden, inner.lm_head.weight, batch["targets"], batch["mask"], softcap=self.softcap
            )
            pooled_hidden = pooled(hidden.float(), batch["mask"]) if features else None
            return lp, pooled_hidden

        if reference:
            with torch.no_grad(), self.model.disable_adapter():
                lp, feats = run()
        else:
            lp, feats = run()
        return (lp, feats) if features else lp

    def share(self, local: int, total: int) -> float:
        """Weight of this process's shard in a global mean."""
        return local / max(total, 1)

    # SFT

    def sft_step(self, global_batch: list) -> tuple[torch.Tensor, dict]:
        encoded = [self.encode(a.messages, a.text) for a in global_batch]
        total_tokens = sum(len(e) - e.completion_start for e in encoded)
        batch = self.batch(self.world.shard(encoded))
        lp = self.logprobs(batch)
        loss = -lp.sum() / total_tokens  # the global per-token mean, summed over processes
        return loss, {"loss": float(self.world.sum_(loss.detach().clone())), "tokens": total_tokens}

    # DPO

    def dpo_step(self, global_batch: list) -> tuple[torch.Tensor, dict]:
        pairs = self.world.shard(global_batch)
        chosen = [self.encode(c.messages, c.text) for c, _ in pairs]
        rejected = [self.encode(r.messages, r.text) for _, r in pairs]
        batch = self.batch(chosen + rejected)
        policy = losses.sequence_logprob(self.logprobs(batch), batch["mask"])
        ref = losses.sequence_logprob(self.logprobs(batch, reference=True), batch["mask"])
        n = len(pairs)
        loss, chosen_reward, rejected_reward = losses.dpo_loss(
            policy[:n], policy[n:], ref[:n], ref[n:], self.config.beta
        )
        loss = loss * self.share(n, len(global_batch))
        margin = chosen_reward - rejected_reward
        return loss, {
            "loss": float(self.world.sum_(loss.detach().clone())),
            "reward_margin": float(margin.mean()),
            "accuracy": float((margin > 0).float().mean()),
        }

    # KTO

    def kto_step(self, global_batch: list) -> tuple[torch.Tensor, dict]:
        answers = self.world.shard(global_batch)
        matched = [self.encode(a.messages, a.text) for a in answers]
        # KTO's reference point: each answer scored after another answer's prompt.
        shifted = answers[1:] + answers[:1]
        mismatched = [
            self.encode(a.messages, b.text) for a, b in zip(answers, shifted, strict=True)
        ]
        batch = self.batch(matched)
        policy = losses.sequence_logprob(self.logprobs(batch), batch["mask"])
        ref = losses.sequence_logprob(self.logprobs(batch, reference=True), batch["mask"])
        kl_batch = self.batch(mismatched)
        with torch.no_grad():
            policy_kl = losses.sequence_logprob(self.logprobs(kl_batch), kl_batch["mask"])
        ref_kl = losses.sequence_logprob(self.logprobs(kl_batch, reference=True), kl_batch["mask"])
        local_kl = (policy_kl - ref_kl).sum()
        kl = (self.world.sum_(local_kl) / len(global_batch)).clamp(min=0)
        labels = torch.tensor([bool(label_of(a)) for a in answers], device=self.device)
        loss = losses.kto_loss(policy, ref, labels, kl, self.config.beta)
        loss = loss * self.share(len(answers), len(global_batch))
        return loss, {"loss": float(self.world.sum_(loss.detach().clone())), "kl": float(kl)}

    # GRPO

    def attach_rollouts(self, rollouts, head, parent_factors, folder: Path) -> None:
        self.rollouts, self.head, self.parent_factors, self.rollout_folder = (
            rollouts,
            head,
            parent_factors,
            folder,
        )

    def _export_current(self) -> Path | None:
        """The current policy as an adapter GGUF for llama.cpp to sample from."""
        new = factors_from_peft(self.model)
        combined = self.parent_factors.combined_with(new) if self.parent_factors else new
        base = self.model.get_base_model()
        path = self.rollout_folder / f"rank{self.world.rank}.gguf"
        heads = base.config.num_attention_heads
        return write_gguf_adapter(
            combined,
            path,
            architecture=_architecture(base),
            n_head=heads,
            n_head_kv=getattr(base.config, "num_key_value_heads", None) or heads,
        )

    def grpo_step(self, global_batch: list) -> tuple[torch.Tensor, dict]:
        prompts: list[Prompt] = self.world.shard(global_batch)
        config = self.config
        if self.rollouts.name == "llama.cpp":
            self.rollouts.set_adapter(self._export_current())
        sampled, rollout_s, rollout_tokens = [], time.perf_counter(), 0
        for prompt in prompts:
            samples = self.rollouts.sample(
                prompt.messages,
                config.group_size,
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                seed=self._seed(prompt),
            )
            sampled.append(samples)
            rollout_tokens += sum(len(self.tokenizer(s.text).input_ids) for s in samples)
        rollout_s = time.perf_counter() - rollout_s
        encoded = [
            encode(self.tokenizer, self.chat, prompt.messages, sample.text)
            if sample.finished
            else _unfinished(self.tokenizer, self.chat, prompt.messages, sample.text)
            for prompt, samples in zip(prompts, sampled, strict=True)
            for sample in samples
        ]
        batch = self.batch(encoded)
        ref, feats = self.logprobs(batch, reference=True, features=True)
        preference = self.head.preference(feats.cpu()) if self.head is not None else None
        rewards = [
            answer_reward(
                sample.text,
                prompt.evidence,
                prompt.reference,
                None if preference is None else float(preference[flat]),
            )
            for flat, (prompt, sample) in enumerate(
                (p, s) for p, samples in zip(prompts, sampled, strict=True) for s in samples
            )
        ]
        rewards_t = torch.tensor(rewards).view(len(prompts), config.group_size)
        advantages = losses.group_advantages(rewards_t).view(-1)
        loss, kl = self._policy_loss(batch, ref, advantages, len(prompts), len(global_batch))
        distinct = [len({s.text for s in samples}) / config.group_size for samples in sampled]
        collapsed = int((rewards_t.std(dim=1) == 0).sum())
        return loss, {
            "loss": float(self.world.sum_(loss.detach().clone())),
            "reward": float(rewards_t.mean()),
            "pass_rate": float((rewards_t >= 0.5).float().mean()),
            "kl": float(kl),
            "diversity": sum(distinct) / len(distinct),
            "collapsed_groups": collapsed,
            "rollout_tokens_per_s": rollout_tokens / max(rollout_s, 1e-9),
        }

    # GRPO over whole runs

    def grpo_runs_step(self, global_batch: list) -> tuple[torch.Tensor, dict]:
        """G whole runs of the agent per stored question (plan, search the library, reflect,
        write), each scored by the gated reward of its answer (0 without one; F1 against the
        question's reference after the gate, where one exists). Every token the model wrote in
        a run (its plan, reflections and answer) shares the run's group advantage, with the KL
        to the base. A group whose runs all scored the same has no advantage to learn from and
        is left out of the loss (as DAPO does), KL and all: when every group is like that, the
        step costs its rollouts only. The calls are run through the model in groups of
        similar length, so a short plan is not padded to an evidence-long writer prompt."""
        prompts: list[Prompt] = self.world.shard(global_batch)
        config = self.config
        self.rollouts.set_adapter(self._export_current())
        started = time.perf_counter()
        groups = [
            self.rollouts.sample_runs(
                question_of(prompt.messages),
                config.group_size,
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                seed=self._seed(prompt),
            )
            for prompt in prompts
        ]
        rollout_s = time.perf_counter() - started
        runs = [
            (prompt, run) for prompt, group in zip(prompts, groups, strict=True) for run in group
        ]
        encoded, owner, writes = [], [], {}
        for flat, (_, run) in enumerate(runs):
            for call in run.calls:
                encode_call = encode if call.finished else _unfinished
                item = encode_call(self.tokenizer, self.chat, call.messages, call.text)
                if not self.fits(item):
                    continue
                if call.purpose == "write":
                    writes[len(encoded)] = flat
                encoded.append(item)
                owner.append(flat)
        reference = _Reference(self, encoded)
        preference: dict[int, float] = {}
        if self.head is not None and writes:  # the head scores answers by the base's features
            features = reference.compute(list(writes), features=True)
            scores = self.head.preference(torch.stack([features[i] for i in writes]).cpu())
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
            loss = sum(p.sum() * 0.0 for p in self.model.parameters() if p.requires_grad)
            total = float(self.world.sum_(loss.detach().clone()))
            return loss, {**metrics, "loss": total, "kl": 0.0}
        reference.compute([i for i in train_on if i not in reference.rows])
        loss, kl = 0.0, 0.0
        for group in length_groups([len(encoded[i]) for i in train_on]):
            members = [train_on[j] for j in group]
            batch = self.batch([encoded[i] for i in members])
            ref = reference.batch(members, batch["mask"])
            seq_adv = torch.stack([advantages[owner[i]] for i in members])
            part, part_kl = self._policy_loss(batch, ref, seq_adv, len(prompts), len(global_batch))
            weight = len(members) / len(train_on)  # the loss is a mean over sequences
            loss, kl = loss + part * weight, kl + float(part_kl) * weight
        return loss, {
            **metrics,
            "loss": float(self.world.sum_(loss.detach().clone())),
            "kl": kl,
        }

    def _policy_loss(self, batch, ref, advantages, local: int, total: int):
        """GRPO's clipped policy loss with the KL to the base, for this process's share."""
        policy = self.logprobs(batch)
        loss, kl = losses.grpo_loss(
            policy,
            policy.detach(),
            ref,
            advantages.to(self.device),
            batch["mask"],
            beta=self.config.beta,
            clip_eps=self.config.clip_eps,
        )
        return loss * self.share(local, total), kl

    def _seed(self, prompt: Prompt) -> int:
        """A seed per (run seed, step, question): the same samples in any process layout."""
        question = question_of(prompt.messages).encode()
        return (
            self.config.seed * 1_000_003
            + self.step * 10_007
            + int(hashlib.sha256(question).hexdigest()[:6], 16)
        ) % 2**31

    # the preference head

    def features(self, messages, answer: str) -> torch.Tensor:
        batch = self.batch([encode(self.tokenizer, self.chat, messages, answer)])
        _, feats = self.logprobs(batch, reference=True, features=True)
        return feats[0].cpu()

    def preference_head(self, feedback: Feedback) -> PreferenceHead | None:
        """Fit the Bradley-Terry head on the user's verdicts on answers: corrections,
        comparisons and ratings (None without enough). Planner calls are not answers."""
        pairs = [
            (self.features(c.messages, c.text), self.features(r.messages, r.text))
            for c, r in feedback.dpo
            if not isinstance(c, Example)
        ]
        labeled = [
            (self.features(a.messages, a.text), bool(label(a)))
            for a in feedback.kto
            if not isinstance(a, Example)
        ]
        if len(pairs) + len(labeled) < 4 or (not pairs and len({y for _, y in labeled}) < 2):
            return None
        hidden = (pairs[0][0] if pairs else labeled[0][0]).shape[-1]
        return train_preference_head(pairs, labeled, hidden, seed=self.config.seed)

    def scorer(self, head: PreferenceHead) -> Callable[[list[dict], str], float]:
        def score(messages, answer: str) -> float:
            return float(head.preference(self.features(messages, answer).unsqueeze(0))[0])

        return score


def answer_reward(
    text: str, evidence: list[dict], reference: str | None, preference: float | None = None
) -> float:
    """The gated reward of an answer against its evidence, with F1 against the reference
    (where one exists) after the gate."""
    right = correctness(text, reference) if reference else None
    return gated_reward(hard_checks(text, evidence), preference, right.f1 if right else None)


class _Reference:
    """Per-token log-probs under the base (adapter disabled) of encoded calls, computed once
    each in groups of similar length and kept per call."""

    def __init__(self, context: Context, encoded: list[Encoded]):
        self.context, self.encoded = context, encoded
        self.rows: dict[int, torch.Tensor] = {}

    def compute(self, indices: list[int], *, features: bool = False) -> dict[int, torch.Tensor]:
        """Fill `rows` for `indices`; with `features`, return each one's pooled hidden state."""
        pooled_of = {}
        for group in length_groups([len(self.encoded[i]) for i in indices]):
            members = [indices[j] for j in group]
            batch = self.context.batch([self.encoded[i] for i in members])
            out = self.context.logprobs(batch, reference=True, features=features)
            lp, feats = out if features else (out, None)
            for row, i in enumerate(members):
                self.rows[i] = lp[row, : len(self.encoded[i]) - 1]
                if feats is not None:
                    pooled_of[i] = feats[row]
        return pooled_of

    def batch(self, members: list[int], mask: torch.Tensor) -> torch.Tensor:
        """The kept rows of `members` as one (B, T) tensor shaped like `mask`."""
        out = torch.zeros_like(mask, dtype=self.rows[members[0]].dtype)
        for row, i in enumerate(members):
            out[row, : len(self.rows[i])] = self.rows[i]
        return out


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


def _unfinished(tokenizer, chat, messages, text: str) -> Encoded:
    """An answer cut off by the token limit: no end-of-turn token after it."""
    prompt_ids = tokenizer(chat.prompt(messages), add_special_tokens=False).input_ids
    return Encoded(
        prompt_ids + tokenizer(text, add_special_tokens=False).input_ids, len(prompt_ids)
    )


def _architecture(model) -> str:
    model_type = model.config.model_type
    return {"gemma3_text": "gemma3"}.get(model_type, model_type)
