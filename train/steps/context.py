"""What the per-algorithm training steps share: the model with its LoRA, the tokenizer and chat
format, the process layout, the data each algorithm trains on, and log-probs computed from
hidden states (train/losses.py). Each algorithm's step is a module of its own beside this one
(sft.py, dpo.py, kto.py, grpo.py, grpo_runs.py): a function of (context, global batch) that
returns (loss, metrics).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import torch

from .. import losses
from ..config import TrainConfig
from ..datasets import Encoded, Feedback, Prompt, collate, encode, length_groups, question_of
from ..distributed import World
from ..errors import TrainError
from ..feedback import Example, label
from ..model_io import attach_lora, factors_from_peft, write_gguf_adapter
from ..rewards import PreferenceHead, pooled, train_preference_head


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
        self._features: dict[tuple, torch.Tensor] = {}  # under the base: they never change
        self.rollouts = None
        self.head: PreferenceHead | None = None
        self.reward_model = None  # the active reward model (agent/research/picker.py), if any
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

    def attach_rollouts(self, rollouts, head, parent_factors, folder: Path) -> None:
        self.rollouts, self.head, self.parent_factors, self.rollout_folder = (
            rollouts,
            head,
            parent_factors,
            folder,
        )

    def export_current(self) -> Path | None:
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

    def policy_loss(self, batch, ref, advantages, local: int, total: int):
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

    def seed_for(self, prompt: Prompt) -> int:
        """A seed per (run seed, step, question): the same samples in any process layout."""
        question = question_of(prompt.messages).encode()
        return (
            self.config.seed * 1_000_003
            + self.step * 10_007
            + int(hashlib.sha256(question).hexdigest()[:6], 16)
        ) % 2**31

    # the preference head

    def features(self, messages, answer: str) -> torch.Tensor:
        """The base model's mean hidden state over `answer` to `messages` (the preference
        head's input), computed once for each distinct text: an answer regenerated alike, and
        an answer that is both a side of a pair and a rated example, are one forward pass."""
        encoded = encode(self.tokenizer, self.chat, messages, answer)
        key = (tuple(encoded.ids), encoded.completion_start)
        if key not in self._features:
            _, feats = self.logprobs(self.batch([encoded]), reference=True, features=True)
            self._features[key] = feats[0].cpu()
        return self._features[key]

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


class Reference:
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


def unfinished(tokenizer, chat, messages, text: str) -> Encoded:
    """An answer cut off by the token limit: no end-of-turn token after it."""
    prompt_ids = tokenizer(chat.prompt(messages), add_special_tokens=False).input_ids
    return Encoded(
        prompt_ids + tokenizer(text, add_special_tokens=False).input_ids, len(prompt_ids)
    )


def _architecture(model) -> str:
    model_type = model.config.model_type
    return {"gemma3_text": "gemma3"}.get(model_type, model_type)
