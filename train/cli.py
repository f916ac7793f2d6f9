"""`sleuth train`, and `python -m sleuth.train` (how the app runs training in its own process).

`--progress json` prints one JSON object per line on stdout ({"event": "step" | "info" |
"result", ...}), which the app reads; the default is a progress bar on stderr. Ctrl-C (or
SIGINT from the app) finishes the step in hand, saves a checkpoint and leaves the active model
alone. No torch at import: the `sleuth` command builds its parser from this module.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import TextIO

from sleuth.agent.errors import AgentError
from sleuth.store import Dirs, Store, StoreError, app_dirs
from sleuth.store.ids import row_id, seed
from sleuth.store.settings import Settings, load_settings

from .errors import TrainingError
from .verdict import verdict

HELP = "Train a LoRA adapter on your feedback (SFT, DPO, KTO, GRPO)."
OVERRIDES = (
    "algo",
    "steps",
    "lr",
    "lora_r",
    "beta",
    "group_size",
    "device",
    "batch_size",
    "seed",
    "max_new_tokens",
    "checkpoint_every",
    "rollouts",
    "gradient_checkpointing",
    "calls",
    "references",
    "grpo_over",
    "rollout_rounds",
    "rollout_evidence_tokens",
)


def add_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--algo", choices=["sft", "dpo", "kto", "grpo"], default="sft")
    p.add_argument("--steps", type=int, help="optimizer steps (default 40)")
    p.add_argument("--lr", type=float, help="learning rate (default depends on --algo)")
    p.add_argument("--lora-r", type=int, help="LoRA rank (default 8)")
    p.add_argument("--beta", type=float, help="DPO/KTO temperature, GRPO KL weight")
    p.add_argument("--group-size", type=int, help="GRPO answers per prompt (default 4)")
    p.add_argument("--batch-size", type=int, help="examples, pairs or prompts per step (default 2)")
    p.add_argument("--max-new-tokens", type=int, help="longest sampled answer (GRPO, evaluation)")
    p.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 10)")
    p.add_argument("--rollouts", choices=["llama.cpp", "transformers"], help="GRPO sampler")
    p.add_argument(
        "--grpo-over",
        choices=["auto", "runs", "answers"],
        help="GRPO samples whole runs of the agent over your library, or answers to stored "
        "prompts (default auto: runs when the library has files)",
    )
    p.add_argument(
        "--rollout-rounds",
        type=int,
        help="GRPO over runs: research rounds per sampled run (default 1: plan, search, write)",
    )
    p.add_argument(
        "--rollout-evidence-tokens",
        type=int,
        help="GRPO over runs: evidence a sampled run's writer reads, in tokens (default 800)",
    )
    p.add_argument(
        "--no-gradient-checkpointing",
        dest="gradient_checkpointing",
        action="store_false",
        default=None,
        help="keep every layer's activations: faster, far more memory on long prompts",
    )
    p.add_argument(
        "--calls",
        choices=["all", "writer"],
        help="DPO/KTO: learn from planner and reflection calls of judged runs too (all, the "
        "default) or from the writer's answers only",
    )
    p.add_argument(
        "--references",
        metavar="FILE",
        help="JSON Lines of {question, answer}: judge held-out correctness by these too",
    )
    p.add_argument("--seed", type=seed)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--resume", type=row_id, metavar="RUN", help="continue a stopped training run")
    p.add_argument("--progress", choices=["bar", "json"], default="bar", help=argparse.SUPPRESS)
    return p


class ConsoleLogger:
    """A progress bar with the step's metrics, on stderr."""

    def __init__(self, err: TextIO = sys.stderr):
        self.err = err
        self.tty = err.isatty()

    def step(self, step: int, total: int, metrics: dict) -> None:
        width = 24
        filled = int(width * step / total)
        line = f"[{'#' * filled}{'.' * (width - filled)}] step {step}/{total}  {describe(metrics)}"
        line += f"  ({metrics.get('seconds', 0):.1f} s)"
        if self.tty:
            self.err.write("\r" + line[:140].ljust(140) + ("\n" if step == total else ""))
        else:
            self.err.write(line + "\n")
        self.err.flush()

    def info(self, text: str) -> None:
        if self.tty:
            self.err.write("\r" + " " * 140 + "\r")
        print(text, file=self.err, flush=True)


class JsonLogger:
    """One JSON object per line on stdout: {"event": "step"|"info"|"result", ...}."""

    def __init__(self, out: TextIO = sys.stdout):
        self.out = out

    def emit(self, **event) -> None:
        self.out.write(json.dumps(event, default=str) + "\n")
        self.out.flush()

    def step(self, step: int, total: int, metrics: dict) -> None:
        self.emit(event="step", step=step, total=total, metrics=metrics)

    def info(self, text: str) -> None:
        self.emit(event="info", text=text)


def describe(metrics: dict) -> str:
    """A short line of a step's metrics for progress output."""
    keys = ["loss", "reward", "pass_rate", "reward_margin", "accuracy", "kl", "diversity"]
    return "  ".join(f"{k} {metrics[k]:.3f}" for k in keys if k in metrics)


def run(settings: Settings, dirs: Dirs, store: Store, args: argparse.Namespace) -> int:
    """Train as the arguments say; returns the exit code (0 done, 130 stopped)."""
    from .config import TrainConfig
    from .trainer import train

    overrides = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k, None) is not None}
    config = TrainConfig(**overrides)
    logger = JsonLogger() if args.progress == "json" else ConsoleLogger()
    cancel = threading.Event()

    def on_interrupt(*_):  # finish the step in hand, save a checkpoint, stop
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        logger.info("stopping after this step (Ctrl-C again to stop at once)…")

    # Ctrl-C, `kill` and a closed terminal: the step in hand finishes and is checkpointed.
    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {signum: signal.getsignal(signum) for signum in stop_signals}
    for signum in stop_signals:
        signal.signal(signum, on_interrupt)
    try:
        result = train(
            store,
            settings,
            dirs,
            config,
            logger,
            resume=args.resume,
            steps=args.steps,
            cancel=cancel,
        )
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not result.main:
        return 0
    if result.status == "cancelled":
        logger.info(
            f"training run {result.training_run_id} stopped after step {result.steps_done}; the "
            "active model is unchanged. Resume with "
            f"`sleuth train --resume {result.training_run_id}`."
        )
    else:
        logger.info(verdict(result.evaluation, result.model_id))
    if isinstance(logger, JsonLogger):  # the last line: what the app waits for
        logger.emit(
            event="result",
            status=result.status,
            training_run_id=result.training_run_id,
            model_id=result.model_id,
            adapter=result.adapter_path,
            evaluation=result.evaluation.as_dict() if result.evaluation else None,
            steps=result.steps_done,
        )
    return 130 if result.status == "cancelled" else 0


def main(argv: list[str] | None = None) -> int:
    """`python -m sleuth.train ...`: the same command as `sleuth train`."""
    parser = add_arguments(argparse.ArgumentParser(prog="python -m sleuth.train", description=HELP))
    parser.add_argument("--model", metavar="PATH", help="GGUF model to use instead of the config's")
    args = parser.parse_args(argv)
    store = None
    try:
        dirs = app_dirs()
        settings = load_settings(dirs.config_file, flags={"model.path": args.model})
        store = Store.open(dirs.database)
        return run(settings, dirs, store, args)
    except (TrainingError, StoreError, AgentError) as exc:
        print(f"sleuth: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sleuth: interrupted; the active model is unchanged.", file=sys.stderr)
        return 130
    finally:
        if store is not None:
            store.close()
