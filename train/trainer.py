"""The training script: feedback in the store -> a LoRA adapter GGUF -> the model registry.

    feedback = load_feedback(store)          # SFT / DPO / KTO / GRPO data, held-out split
    model    = base GGUF in torch (+ the active adapter merged in) + a fresh LoRA
    for step: batch -> loss (train/losses.py) -> AdamW on the LoRA -> metrics, checkpoints
    adapter  = parent's LoRA + the new one, written as GGUF next to its factors
    verdict  = new vs parent on held-out prompts (train/evaluate.py), stored with the run

The active model is never changed here: the user (or the app) activates an adapter after
seeing its evaluation. Ctrl-C saves a checkpoint and stops; `--resume` continues from it.
Under torchrun (WORLD_SIZE > 1) each process takes an equal shard of every global batch and
gradients are summed across processes (train/distributed.py), so the result matches a single
process. The per-algorithm steps are in train/steps.py.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

import torch

from sleuth.agent.budget import Limits
from sleuth.agent.chat_format import chat_formatter
from sleuth.agent.gguf_file import fingerprint
from sleuth.agent.models import resolve_model_path
from sleuth.agent.registry import ModelRegistry
from sleuth.store import Dirs, Store
from sleuth.store.paths import private_dir, private_file
from sleuth.store.settings import ResearchSettings, Settings

from .config import TrainConfig
from .datasets import load_feedback
from .distributed import World, resolve_device
from .errors import TrainConfigError, TrainError
from .evaluate import compare
from .model_io import (
    LoraFactors,
    factors_from_peft,
    load_base,
    load_factors_into_peft,
    merge_factors,
    write_gguf_adapter,
)
from .rollouts import LlamaRollouts, RunRollouts, TransformersRollouts
from .steps import Context, trainable
from .trajectories import load_references
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
        store.training.close_abandoned()
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
    try:
        references = load_references(config.references) if config.references else None
    except ValueError as exc:
        raise TrainConfigError(str(exc)) from exc
    feedback = load_feedback(store, calls=config.calls, references=references)
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
            run_id = store.training.start(config.algo, config.as_dict(), parent.id, os.getpid())
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
    over_runs = config.algo == "grpo" and grpo_over_runs(config, store)
    step_fn = {
        "sft": context.sft_step,
        "dpo": context.dpo_step,
        "kto": context.kto_step,
        "grpo": context.grpo_runs_step if over_runs else context.grpo_step,
    }[config.algo]
    rollouts = None
    if config.algo == "grpo":
        logger.info(
            "GRPO over whole runs of the agent over your library"
            if over_runs
            else "GRPO over answers to stored writer prompts"
        )
        rollouts = (
            make_run_rollouts(config, base_path, store, settings)
            if over_runs
            else _rollouts(config, base_path, base, chat, model)
        )
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


def grpo_over_runs(config: TrainConfig, store: Store) -> bool:
    if config.grpo_over == "auto":
        return config.rollouts == "llama.cpp" and store.library.has_documents()
    return config.grpo_over == "runs"


def make_run_rollouts(config: TrainConfig, base_path: Path, store: Store, settings: Settings):
    n_ctx = config.max_length + config.max_new_tokens + 64
    return RunRollouts(base_path, n_ctx, store, rollout_limits(config, settings.research))


def rollout_limits(config: TrainConfig, research: ResearchSettings) -> Limits:
    """A sampled run's limits, on a GRPO step's budget: the user's research limits, cut to the
    config's rounds and evidence (bench/grpo_step.py measures what each costs)."""
    limits = Limits.from_settings(research)
    return replace(
        limits,
        max_rounds=min(limits.max_rounds, config.rollout_rounds),
        evidence_tokens=min(limits.evidence_tokens, config.rollout_evidence_tokens),
    )


def _rollouts(config: TrainConfig, base_path: Path, base, chat, model):
    if config.rollouts == "llama.cpp":
        return LlamaRollouts(base_path, n_ctx=config.max_length + config.max_new_tokens + 64)
    return TransformersRollouts(model, base.tokenizer, chat)


def _pick(data: list, batch_size: int, seed: int, step: int) -> list:
    """The global batch of one step: the same in every process and on resume."""
    rng = random.Random(seed * 1_000_003 + step)
    return [data[i] for i in rng.sample(range(len(data)), min(batch_size, len(data)))]


def _save_checkpoint(store: Store, dirs: Dirs, run_id: int, step: int, model, optimizer) -> None:
    folder = private_dir(dirs.checkpoints / str(run_id))
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
    os.replace(private_file(partial), path)
    store.training.record_checkpoint(run_id, step, str(path))


def _factors_from_state(state: dict) -> LoraFactors:
    return LoraFactors({k: tuple(v) for k, v in state.items()})
