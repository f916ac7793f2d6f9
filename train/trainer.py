"""The training script: feedback in the store -> a LoRA adapter GGUF -> the model registry.

    feedback = load_feedback(store)          # SFT / DPO / KTO / GRPO data, held-out split
    model    = base GGUF in torch (+ the active adapter merged in) + a fresh LoRA
    for step: batch -> loss (train/losses.py) -> AdamW on the LoRA -> metrics, checkpoints
    adapter  = parent's LoRA + the new one, written as GGUF next to its factors
    verdict  = new vs parent on held-out prompts (train/evaluate.py), stored with the run

The active model is never changed here: the user (or the app) activates an adapter after
seeing its evaluation. Ctrl-C saves a checkpoint and stops; `--resume` continues from it.
Under torchrun (WORLD_SIZE > 1) each process takes an equal shard of every global batch and
gradients are summed across processes, so the result matches a single process.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import torch

from sleuth.agent.chat_format import chat_formatter
from sleuth.agent.models import fingerprint, resolve_model_path
from sleuth.agent.registry import ModelRegistry
from sleuth.store import Dirs, Store
from sleuth.store.settings import Settings

from . import losses
from .config import TrainConfig
from .datasets import Encoded, Feedback, Prompt, collate, encode, load_feedback, question_of
from .errors import TrainError
from .evaluate import compare
from .feedback import label
from .model_io import (
    LoraFactors,
    attach_lora,
    factors_from_peft,
    load_base,
    load_factors_into_peft,
    merge_factors,
    write_gguf_adapter,
)
from .rewards import PreferenceHead, gated_reward, hard_checks, pooled, train_preference_head
from .rollouts import LlamaRollouts, TransformersRollouts
from .verdict import Evaluation

log = logging.getLogger(__name__)


class Logger(Protocol):
    def step(self, step: int, total: int, metrics: dict[str, float]) -> None: ...
    def info(self, text: str) -> None: ...


class _Silent:
    def step(self, step: int, total: int, metrics: dict[str, float]) -> None:
        pass

    def info(self, text: str) -> None:
        pass


@dataclass
class TrainResult:
    training_run_id: int
    status: str  # done, cancelled
    steps_done: int
    model_id: int | None = None
    adapter_path: str | None = None
    evaluation: Evaluation | None = None
    main: bool = True  # False in the other processes of a torchrun job


# -- processes ---------------------------------------------------------------------------------


@dataclass
class World:
    """This process's place among torchrun's processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1

    @classmethod
    def from_env(cls, device: str) -> World:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size == 1:
            return cls()
        import torch.distributed as dist

        if device == "cuda":  # one GPU per process: "cuda" then means this process's own
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
        return cls(rank=dist.get_rank(), size=size)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list) -> list:
        """This process's equal share of a global batch (the batch size must divide evenly)."""
        return items[self.rank :: self.size]

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.size > 1:
            import torch.distributed as dist

            dist.all_reduce(tensor)
        return tensor

    def sync_grads(self, params: list[torch.nn.Parameter]) -> None:
        for param in params:
            if param.grad is not None:
                self.sum_(param.grad)

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()


def resolve_device(choice: str) -> str:
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda was asked for, but torch sees no CUDA GPU here.")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


def mark_stale_runs(store: Store) -> None:
    """A run still 'running' whose process is gone was killed: say so (it can be resumed)."""
    for run in store.training.runs():
        if run.status == "running" and run.pid and not _alive(run.pid):
            store.training.finish(
                run.id,
                "failed",
                error="the training process stopped unexpectedly (killed?); "
                f"resume with `sleuth train --resume {run.id}`",
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def factors_path(adapter_path: str | Path) -> Path:
    """Where an adapter GGUF's factors (its exact weights, HF layout) live."""
    return Path(adapter_path).with_suffix(".safetensors")


# -- the run -----------------------------------------------------------------------------------


def train(
    store: Store,
    settings: Settings,
    dirs: Dirs,
    config: TrainConfig,
    logger: Logger,
    *,
    resume: int | None = None,
    steps: int | None = None,
    cancel: threading.Event | None = None,
) -> TrainResult:
    """Train, export, register and evaluate one adapter. Raises TrainError when it cannot.
    `resume` continues a stopped run with its own settings (`steps` may extend it)."""
    device = resolve_device(config.device)
    world = World.from_env(device)
    if world.main:
        mark_stale_runs(store)
    else:
        logger = _Silent()  # one process speaks for all

    # What we train on, and over which model.
    base_path = resolve_model_path(settings.model.path, dirs)
    base_fp = fingerprint(base_path)
    registry = ModelRegistry(store)
    checkpoint = None
    if resume is not None:
        run_row = store.training.run(resume)
        if run_row.status == "done":
            raise TrainError(f"Training run {resume} already finished; there is nothing to resume.")
        if not run_row.checkpoint or not Path(run_row.checkpoint).exists():
            raise TrainError(f"Training run {resume} has no checkpoint to resume from.")
        # A resumed run keeps its own configuration; only more steps may be asked for.
        stored = TrainConfig(**run_row.config)
        if steps is not None and steps > stored.steps:
            stored.steps = steps
        config = stored
        parent = store.registry.model(run_row.parent_model_id)
        checkpoint = torch.load(run_row.checkpoint, weights_only=False)
    else:
        # Only the main process may register the base: two would race to create its row.
        parent = registry.active(base_fp)
        if parent is None and world.main:
            parent = registry.ensure_base(base_path, base_fp)
    parent_adapter = parent.adapter_path if parent is not None else None
    feedback = load_feedback(store)
    shortfall = feedback.shortfall(config.algo)
    if shortfall:
        raise TrainError(shortfall)
    if world.size > 1 and config.batch_size % world.size:
        raise TrainError(
            f"--batch-size {config.batch_size} must divide over {world.size} processes."
        )

    if world.main:
        if checkpoint is not None:
            run_id = resume
            store.training.resume(run_id, os.getpid())
        else:
            run_id = store.training.start(
                config.algo, config.as_dict(), parent.id, os.getpid()
            )
    else:
        run_id = resume or 0

    torch.manual_seed(config.seed)
    logger.info(f"loading {base_path.name} for training on {device}…")
    base = load_base(
        base_path,
        dirs.cache,
        device=device,
        dtype=torch.bfloat16 if device == "cuda" else torch.float32,
    )
    tokenizer = base.tokenizer
    chat = chat_formatter(
        base.chat_template,
        base.architecture,
        bos=tokenizer.bos_token or "",
        eos=tokenizer.eos_token or "",
    )
    parent_factors = None
    if parent_adapter:
        parent_factors = LoraFactors.load(factors_path(parent_adapter))
        merge_factors(base.model, parent_factors)
    model = trainable(base.model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    start = 0
    if checkpoint is not None:
        load_factors_into_peft(model, _factors_from_state(checkpoint["factors"]))
        optimizer.load_state_dict(checkpoint["optimizer"])
        start = checkpoint["step"]
        logger.info(f"resuming training run {run_id} at step {start}")

    softcap = getattr(model.config, "final_logit_softcapping", None)
    context = Context(model, tokenizer, chat, config, world, device, softcap)
    data = context.prepare(feedback)
    # The preference head shapes GRPO's rewards. Fitting it costs a forward pass per rated
    # answer (minutes on a CPU), so the other algorithms are judged by the hard checks alone.
    head = context.preference_head(feedback) if config.algo == "grpo" else None
    step_fn = {
        "sft": context.sft_step,
        "dpo": context.dpo_step,
        "kto": context.kto_step,
        "grpo": context.grpo_step,
    }[config.algo]
    rollouts = None
    if config.algo == "grpo":
        rollouts = _rollouts(config, base_path, base, chat, model)
        context.attach_rollouts(
            rollouts, head, parent_factors, dirs.cache / "rollout-adapters" / str(run_id)
        )

    step = start
    try:
        model.train()
        for step in range(start + 1, config.steps + 1):
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
            started = time.perf_counter()
            batch = _pick(data, config.batch_size, config.seed, step)
            context.step = step
            loss, metrics = step_fn(batch)
            loss.backward()
            world.sync_grads(params)
            metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, 1.0))
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            metrics["seconds"] = time.perf_counter() - started
            if world.main:
                store.training.log_metrics(run_id, step, metrics)
                logger.step(step, config.steps, metrics)
                if step % config.checkpoint_every == 0 and step < config.steps:
                    _save_checkpoint(store, dirs, run_id, step, model, optimizer)
    except KeyboardInterrupt:
        completed = step - 1
        if world.main:
            if completed > start:
                _save_checkpoint(store, dirs, run_id, completed, model, optimizer)
            store.training.finish(
                run_id,
                "cancelled",
                error=f"stopped at step {completed}; resume with `sleuth train --resume {run_id}`",
            )
        if rollouts is not None:
            rollouts.close()
        return TrainResult(run_id, "cancelled", completed)
    finally:
        world.barrier()

    if rollouts is not None:
        rollouts.close()
    if not world.main:
        return TrainResult(run_id, "done", config.steps, main=False)

    # The adapter: the parent's LoRA followed by the new one, one exact LoRA over the base.
    new = factors_from_peft(model)
    combined = parent_factors.combined_with(new) if parent_factors else new
    name = f"{config.algo}-{run_id}"
    adapter = dirs.adapters / f"{name}.gguf"
    combined.save(factors_path(adapter))
    write_gguf_adapter(
        combined,
        adapter,
        architecture=base.architecture,
        n_head=base.n_head,
        n_head_kv=base.n_head_kv,
        name=name,
    )
    logger.info(f"wrote {adapter}; evaluating against {parent.name} on held-out prompts…")

    evaluation = compare(
        base_path,
        Path(parent_adapter) if parent_adapter else None,
        adapter,
        feedback.heldout_prompts[: config.eval_limit],
        preference=context.scorer(head) if head is not None else None,
        n_ctx=config.max_length + config.max_new_tokens + 64,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
    )
    model_id = registry.register_adapter(
        name=name,
        base_path=base_path,
        adapter_path=adapter,
        parent_id=parent.id,
        training_run_id=run_id,
        evaluation=evaluation.as_dict(),
    ).id
    store.training.finish(
        run_id,
        "done",
        evaluation=evaluation.as_dict(),
        output_model_id=model_id,
        summary={
            "steps": config.steps,
            "examples": feedback.count(config.algo),
            "adapter": str(adapter),
            "rank": combined.rank,
        },
    )
    return TrainResult(run_id, "done", config.steps, model_id, str(adapter), evaluation)


def _rollouts(config: TrainConfig, base_path: Path, base, chat, model):
    if config.rollouts == "llama.cpp":
        return LlamaRollouts(base_path, n_ctx=config.max_length + config.max_new_tokens + 64)
    return TransformersRollouts(model, base.tokenizer, chat)


def _pick(data: list, batch_size: int, seed: int, step: int) -> list:
    """The global batch of one step: the same in every process and on resume."""
    rng = random.Random(seed * 1_000_003 + step)
    return [data[i] for i in rng.sample(range(len(data)), min(batch_size, len(data)))]


def _save_checkpoint(store: Store, dirs: Dirs, run_id: int, step: int, model, optimizer) -> None:
    folder = dirs.checkpoints / str(run_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "checkpoint.pt"
    partial = folder / "checkpoint.pt.partial"
    factors = factors_from_peft(model)
    torch.save(
        {
            "step": step,
            "factors": {k: (a, b, s) for k, (a, b, s) in factors.modules.items()},
            "optimizer": optimizer.state_dict(),
        },
        partial,
    )
    os.replace(partial, path)
    store.training.record_checkpoint(run_id, step, str(path))


def _factors_from_state(state: dict) -> LoraFactors:
    return LoraFactors({k: tuple(v) for k, v in state.items()})


# -- the steps ---------------------------------------------------------------------------------


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
        labels = torch.tensor([bool(label(a)) for a in answers], device=self.device)
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
            # A seed per (run seed, step, question): the same samples in any process layout.
            question = question_of(prompt.messages).encode()
            seed = (
                config.seed * 1_000_003
                + self.step * 10_007
                + int(hashlib.sha256(question).hexdigest()[:6], 16)
            ) % 2**31
            samples = self.rollouts.sample(
                prompt.messages,
                config.group_size,
                max_new_tokens=config.max_new_tokens,
                temperature=config.temperature,
                seed=seed,
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
        rewards = []
        for flat, (prompt, sample) in enumerate(
            (p, s) for p, samples in zip(prompts, sampled, strict=True) for s in samples
        ):
            checked = hard_checks(sample.text, prompt.evidence)
            rewards.append(
                gated_reward(checked, None if preference is None else float(preference[flat]))
            )
        rewards_t = torch.tensor(rewards).view(len(prompts), config.group_size)
        advantages = losses.group_advantages(rewards_t).view(-1).to(self.device)
        policy = self.logprobs(batch)
        loss, kl = losses.grpo_loss(
            policy,
            policy.detach(),
            ref,
            advantages,
            batch["mask"],
            beta=config.beta,
            clip_eps=config.clip_eps,
        )
        loss = loss * self.share(len(prompts), len(global_batch))
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

    # the preference head

    def features(self, messages, answer: str) -> torch.Tensor:
        batch = self.batch([encode(self.tokenizer, self.chat, messages, answer)])
        _, feats = self.logprobs(batch, reference=True, features=True)
        return feats[0].cpu()

    def preference_head(self, feedback: Feedback) -> PreferenceHead | None:
        """Fit the Bradley-Terry head on comparisons and ratings (None without enough)."""
        pairs = [
            (self.features(c.messages, c.text), self.features(r.messages, r.text))
            for c, r in feedback.dpo
        ]
        labeled = [(self.features(a.messages, a.text), bool(label(a))) for a in feedback.kto]
        if len(pairs) + len(labeled) < 4 or (not pairs and len({y for _, y in labeled}) < 2):
            return None
        hidden = (pairs[0][0] if pairs else labeled[0][0]).shape[-1]
        return train_preference_head(pairs, labeled, hidden, seed=self.config.seed)

    def scorer(self, head: PreferenceHead) -> Callable[[list[dict], str], float]:
        def score(messages, answer: str) -> float:
            return float(head.preference(self.features(messages, answer).unsqueeze(0))[0])

        return score


def _unfinished(tokenizer, chat, messages, text: str) -> Encoded:
    """An answer cut off by the token limit: no end-of-turn token after it."""
    prompt_ids = tokenizer(chat.prompt(messages), add_special_tokens=False).input_ids
    return Encoded(
        prompt_ids + tokenizer(text, add_special_tokens=False).input_ids, len(prompt_ids)
    )


def _architecture(model) -> str:
    model_type = model.config.model_type
    return {"gemma3_text": "gemma3"}.get(model_type, model_type)
