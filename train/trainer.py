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
process. `train()` reads top to bottom as its stages: begin, load, algorithm, run_steps, export,
evaluate, register. The per-algorithm steps are train/steps/, one module each.
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

from sleuth.agent.models.catalog import resolve_model_path
from sleuth.agent.models.chat_format import ChatFormat, chat_formatter
from sleuth.agent.models.files import fingerprint
from sleuth.agent.models.registry import ModelRegistry
from sleuth.agent.research.assistant import limits_from
from sleuth.agent.research.budget import Limits
from sleuth.store import Dirs, Store
from sleuth.store.rows import Model
from sleuth.store.settings import ResearchSettings, Settings

from . import checkpoints
from .checkpoints import Checkpoint
from .config import TrainConfig
from .datasets import Feedback, load_feedback
from .distributed import World, resolve_device
from .errors import TrainConfigError, TrainError
from .evaluate import compare
from .model_io import (
    BaseModel,
    LoraFactors,
    factors_from_peft,
    load_base,
    load_factors_into_peft,
    merge_factors,
    write_gguf_adapter,
)
from .reward_run import active_reward_model
from .rollouts import LlamaRollouts, RunRollouts, TransformersRollouts
from .stages import Clock, Previous, duration
from .steps import GRPO_OVER_RUNS, STEPS, Context, trainable
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


@dataclass
class Job:
    """What one training run is: its settings, the base and parent it trains over, the
    feedback it learns from, its row in the store, and where it resumes from."""

    config: TrainConfig
    base_path: Path
    parent: Model | None  # None only in a torchrun process other than the main one, at first
    feedback: Feedback
    run_id: int
    checkpoint: Checkpoint | None = None


@dataclass
class Trainee:
    """The model being trained: the base in torch (with the parent's LoRA merged in), a fresh
    LoRA over it, its optimizer, and the step it starts from."""

    base: BaseModel
    model: torch.nn.Module
    chat: ChatFormat
    optimizer: torch.optim.Optimizer
    params: list[torch.nn.Parameter]
    parent_factors: LoraFactors | None
    start: int = 0


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
    job = begin(store, settings, dirs, config, world, resume=resume, steps=steps)
    clock = Clock(logger.info, Previous.find(store, job.config.algo, job.parent and job.parent.id))
    work = {
        "load": None,
        "prepare": None,
        "steps": job.config.steps - (job.checkpoint.step if job.checkpoint else 0),
        "export": None,
        "evaluate": len(job.feedback.heldout_prompts[: job.config.eval_limit]),
    }
    whole = clock.total(work)
    if whole is not None:
        logger.info(f"this run should take about {duration(whole)}, stage by stage:")
    with clock.stage("load"):
        trainee = load(job, dirs, device, logger)
        context = Context(
            trainee.model,
            trainee.base.tokenizer,
            trainee.chat,
            job.config,
            world,
            device,
            getattr(trainee.model.config, "final_logit_softcapping", None),
        )
    with clock.stage("prepare"):
        step_fn, rollouts, head = algorithm(job, trainee, context, store, settings, dirs, logger)
    try:
        with clock.stage("steps", work["steps"]):
            result = run_steps(job, trainee, context, step_fn, store, dirs, logger, cancel)
    finally:
        if rollouts is not None:
            rollouts.close()
    if result.status != "done" or not world.main:
        return result
    with clock.stage("export"):
        adapter, factors = export(job, trainee, dirs, logger)
    with clock.stage("evaluate", work["evaluate"]):
        evaluation = evaluate(job, trainee, adapter, context, head)
    return register(job, adapter, factors, evaluation, store, clock)


def begin(
    store: Store,
    settings: Settings,
    dirs: Dirs,
    config: TrainConfig,
    world: World,
    *,
    resume: int | None,
    steps: int | None,
) -> Job:
    """Which base and parent, which feedback, and the run's row: a new one, or the stopped
    run being resumed (with its own settings; only more steps may be asked for)."""
    base_path = resolve_model_path(settings.model.path, dirs)
    base_fp = fingerprint(base_path)
    registry = ModelRegistry(store)
    checkpoint = None
    if resume is not None:
        row = store.training.run(resume)
        if row.status == "done":
            raise TrainError(f"Training run {resume} already finished; there is nothing to resume.")
        if not row.checkpoint or not Path(row.checkpoint).exists():
            raise TrainError(f"Training run {resume} has no checkpoint to resume from.")
        config = TrainConfig(**row.config)
        if steps is not None and steps > config.steps:
            config.steps = steps
        parent = store.registry.model(row.parent_model_id)
        checkpoint = checkpoints.load(row.checkpoint)
    else:
        # Only the main process may register the base: two would race to create its row.
        parent = registry.active(base_fp)
        if parent is None and world.main:
            parent = registry.ensure_base(base_path, base_fp)
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
    run_id = resume or 0
    if world.main and checkpoint is not None:
        store.training.resume(run_id, os.getpid())
    elif world.main:
        run_id = store.training.start(config.algo, config.as_dict(), parent.id, os.getpid())
    return Job(config, base_path, parent, feedback, run_id, checkpoint)


def load(job: Job, dirs: Dirs, device: str, logger: Logger) -> Trainee:
    """The base GGUF in torch (the parent's LoRA merged in), a fresh LoRA and its optimizer,
    and the checkpoint's weights and optimizer state when resuming."""
    config = job.config
    torch.manual_seed(config.seed)
    logger.info(f"loading {job.base_path.name} for training on {device}…")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    base = load_base(job.base_path, dirs.cache, device=device, dtype=dtype)
    tokenizer = base.tokenizer
    chat = chat_formatter(
        base.chat_template,
        base.architecture,
        bos=tokenizer.bos_token or "",
        eos=tokenizer.eos_token or "",
    )
    parent_factors = None
    if job.parent is not None and job.parent.adapter_path:
        parent_factors = LoraFactors.load(factors_path(job.parent.adapter_path))
        merge_factors(base.model, parent_factors)
    model = trainable(base.model, config)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    trainee = Trainee(base, model, chat, optimizer, params, parent_factors)
    if job.checkpoint is not None:
        load_factors_into_peft(model, job.checkpoint.factors)
        optimizer.load_state_dict(job.checkpoint.optimizer)
        trainee.start = job.checkpoint.step
        logger.info(f"resuming training run {job.run_id} at step {trainee.start}")
    return trainee


def algorithm(job, trainee, context, store, settings, dirs, logger):
    """The configured algorithm's step function, and for GRPO its rollouts and preference
    head: (step, rollouts or None, head or None)."""
    config = job.config
    # The preference head shapes GRPO's rewards. Fitting it costs a forward pass per rated
    # answer (minutes on a CPU), so the other algorithms are judged by the hard checks alone.
    head = context.preference_head(job.feedback) if config.algo == "grpo" else None
    if config.algo != "grpo":
        return STEPS[config.algo], None, head
    over_runs = grpo_over_runs(config, store)
    logger.info(
        "GRPO over whole runs of the agent over your library"
        if over_runs
        else "GRPO over answers to stored writer prompts"
    )
    rollouts = (
        make_run_rollouts(config, job.base_path, store, settings)
        if over_runs
        else _rollouts(config, job.base_path, trainee.base, trainee.chat, trainee.model)
    )
    folder = dirs.cache / "rollout-adapters" / str(job.run_id)
    context.attach_rollouts(rollouts, head, trainee.parent_factors, folder)
    context.reward_model = active_reward_model(store, job.base_path)
    if context.reward_model is not None:
        logger.info("the active reward model judges the reader's candidates among the samples")
    return (GRPO_OVER_RUNS if over_runs else STEPS["grpo"]), rollouts, head


def run_steps(job, trainee, context, step_fn, store, dirs, logger, cancel) -> TrainResult:
    """The optimizer steps, with metrics and checkpoints; Ctrl-C (or `cancel`) finishes the
    step in hand, checkpoints it and stops."""
    config, world, run_id = job.config, context.world, job.run_id
    data = context.prepare(job.feedback)
    step = trainee.start
    try:
        trainee.model.train()
        for step in range(trainee.start + 1, config.steps + 1):
            if cancel is not None and cancel.is_set():
                raise KeyboardInterrupt
            started = time.perf_counter()
            context.step = step
            loss, metrics = step_fn(context, _pick(data, config.batch_size, config.seed, step))
            loss.backward()
            world.sync_grads(trainee.params)
            metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(trainee.params, 1.0))
            trainee.optimizer.step()
            trainee.optimizer.zero_grad(set_to_none=True)
            metrics["seconds"] = time.perf_counter() - started
            if world.main:
                store.training.log_metrics(run_id, step, metrics)
                logger.step(step, config.steps, metrics)
                if step % config.checkpoint_every == 0 and step < config.steps:
                    checkpoints.save(store, dirs, run_id, step, trainee.model, trainee.optimizer)
    except KeyboardInterrupt:
        completed = step - 1
        if world.main:
            if completed > trainee.start:
                checkpoints.save(store, dirs, run_id, completed, trainee.model, trainee.optimizer)
            store.training.finish(
                run_id,
                "cancelled",
                error=f"stopped at step {completed}; resume with `sleuth train --resume {run_id}`",
            )
        return TrainResult(run_id, "cancelled", completed)
    finally:
        world.barrier()
    return TrainResult(run_id, "done", config.steps, main=world.main)


def export(job: Job, trainee: Trainee, dirs: Dirs, logger: Logger) -> tuple[Path, LoraFactors]:
    """The adapter: the parent's LoRA followed by the new one, one exact LoRA over the base,
    written as GGUF next to its factors."""
    new = factors_from_peft(trainee.model)
    combined = trainee.parent_factors.combined_with(new) if trainee.parent_factors else new
    name = f"{job.config.algo}-{job.run_id}"
    adapter = dirs.adapters / f"{name}.gguf"
    combined.save(factors_path(adapter))
    base = trainee.base
    write_gguf_adapter(
        combined,
        adapter,
        architecture=base.architecture,
        n_head=base.n_head,
        n_head_kv=base.n_head_kv,
        name=name,
    )
    logger.info(f"wrote {adapter}; evaluating against {job.parent.name} on held-out prompts…")
    return adapter, combined


def evaluate(job: Job, trainee: Trainee, adapter: Path, context, head) -> Evaluation:
    """The new adapter against its parent on the held-out prompts (train/evaluate.py)."""
    config = job.config
    return compare(
        job.base_path,
        Path(job.parent.adapter_path) if job.parent.adapter_path else None,
        adapter,
        job.feedback.heldout_prompts[: config.eval_limit],
        preference=context.scorer(head) if head is not None else None,
        n_ctx=config.max_length + config.max_new_tokens + 64,
        max_new_tokens=config.max_new_tokens,
        seed=config.seed,
    )


def register(
    job: Job,
    adapter: Path,
    factors: LoraFactors,
    evaluation: Evaluation,
    store: Store,
    clock: Clock,
) -> TrainResult:
    """The adapter in the registry (not activated: the user decides), the run finished."""
    config = job.config
    name = adapter.stem
    model_id = (
        ModelRegistry(store)
        .register_adapter(
            name=name,
            base_path=job.base_path,
            adapter_path=adapter,
            parent_id=job.parent.id,
            training_run_id=job.run_id,
            evaluation=evaluation.as_dict(),
        )
        .id
    )
    store.training.finish(
        job.run_id,
        "done",
        evaluation=evaluation.as_dict(),
        output_model_id=model_id,
        summary={
            "steps": config.steps,
            "examples": job.feedback.count(config.algo),
            "adapter": str(adapter),
            "rank": factors.rank,
            "stage_seconds": clock.seconds,
            "stage_work": clock.work,
        },
    )
    return TrainResult(job.run_id, "done", config.steps, model_id, str(adapter), evaluation)


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
    limits = limits_from(research)
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
