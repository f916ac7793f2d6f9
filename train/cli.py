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
from dataclasses import fields
from typing import TextIO

from sleuth.agent.errors import AgentError
from sleuth.store import Dirs, Store, StoreError, app_dirs
from sleuth.store.ids import row_id, seed
from sleuth.store.settings import Settings, load_settings

from .errors import TrainingError
from .verdict import verdict

HELP = (
    "Train a LoRA adapter on your feedback (SFT, DPO, KTO, GRPO), or a reward model that "
    "picks among the reader's candidates (--algo reward, seconds on CPU)."
)
OVERRIDES = (
    "algo",
    "steps",
    "lr",
    "lora_r",
    "beta",
    "sft_weight",
    "dpo_loss",
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
    """`sleuth train`'s flags, one per TrainConfig field in OVERRIDES, each with the field's
    own help, choices and default (train/config.py): nothing here to drift from it."""
    from .config import TrainConfig, flag

    specs = {f.name: f for f in fields(TrainConfig)}
    p.add_argument("--algo", choices=specs["algo"].metadata["choices"], default="sft")
    for name in OVERRIDES[1:]:  # after --algo
        spec = specs[name]
        help_text, default = spec.metadata["help"], spec.default
        if name == "gradient_checkpointing":  # on by default: the flag turns it off
            p.add_argument(
                "--no-gradient-checkpointing",
                dest=name,
                action="store_false",
                default=None,
                help=f"do not {help_text[0].lower()}{help_text[1:]}",
            )
            continue
        kind = {"seed": seed}.get(name) or _type_of(spec)
        shown = "" if default in (None, "") else f" (default {default})"
        p.add_argument(
            flag(name),
            type=kind,
            choices=spec.metadata["choices"],
            metavar=None
            if spec.metadata["choices"]
            else _METAVARS.get(name, name.split("_")[-1].upper()),
            help=help_text + shown,
        )
    p.add_argument("--resume", type=row_id, metavar="RUN", help="continue a stopped training run")
    p.add_argument("--progress", choices=["bar", "json"], default="bar", help=argparse.SUPPRESS)
    return p


_METAVARS = {"references": "FILE"}


def _type_of(spec) -> type:
    """The Python type of a config field's values (int, float or str)."""
    annotation = str(spec.type)
    return int if annotation.startswith("int") else float if "float" in annotation else str


class ConsoleLogger:
    """Training progress on stderr: a rich bar with the step's metrics, its rate and the time
    left on a terminal; a plain line per step when stderr is a file or a pipe."""

    def __init__(self, err: TextIO = sys.stderr):
        self.err = err
        self.bar = None
        self.task = None

    def step(self, step: int, total: int, metrics: dict) -> None:
        line = f"step {step}/{total}  {describe(metrics)}  ({metrics.get('seconds', 0):.1f} s)"
        if not self.err.isatty():
            print(line, file=self.err, flush=True)
            return
        if self.bar is None:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                TextColumn("training"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("left"),
                TimeRemainingColumn(),
                TextColumn("{task.fields[metrics]}", markup=False),
                console=Console(file=self.err),
            )
            self.bar.start()
            self.task = self.bar.add_task("training", total=total, completed=step - 1, metrics="")
        self.bar.update(self.task, completed=step, total=total, metrics=describe(metrics))
        if step == total:
            self.close()

    def info(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.err, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


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


class Prefaced:
    """A logger that says `preface` before the first thing training reports: a run refused
    before any work (too little feedback, a bad setting) stays one sentence."""

    def __init__(self, logger, preface: str):
        self.logger, self.preface = logger, preface

    def _first(self) -> None:
        if self.preface:
            preface, self.preface = self.preface, ""
            self.logger.info(preface)

    def step(self, step: int, total: int, metrics: dict) -> None:
        self._first()
        self.logger.step(step, total, metrics)

    def info(self, text: str) -> None:
        self._first()
        self.logger.info(text)

    def __getattr__(self, name: str):
        return getattr(self.logger, name)


def describe(metrics: dict) -> str:
    """A short line of a step's metrics for progress output."""
    keys = ["loss", "reward", "pass_rate", "reward_margin", "accuracy", "kl", "diversity"]
    return "  ".join(f"{k} {metrics[k]:.3f}" for k in keys if k in metrics)


def run(settings: Settings, dirs: Dirs, store: Store, args: argparse.Namespace) -> int:
    """Train as the arguments say; returns the exit code (0 done, 130 stopped)."""
    from .config import TrainConfig
    from .expectations import what_feedback_buys
    from .trainer import train

    overrides = {k: getattr(args, k) for k in OVERRIDES if getattr(args, k, None) is not None}
    config = TrainConfig(**overrides)
    output = JsonLogger() if args.progress == "json" else ConsoleLogger()
    if config.algo == "reward":
        return run_reward(settings, dirs, store, output)
    logger = output
    cancel = threading.Event()
    if not args.resume and (expected := what_feedback_buys(store, settings.model.path)):
        logger = Prefaced(output, expected)  # said once training starts, not on a refusal

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
        if isinstance(output, ConsoleLogger):
            output.close()
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
    if isinstance(output, JsonLogger):  # the last line: what the app waits for
        output.emit(
            event="result",
            status=result.status,
            training_run_id=result.training_run_id,
            model_id=result.model_id,
            adapter=result.adapter_path,
            evaluation=result.evaluation.as_dict() if result.evaluation else None,
            steps=result.steps_done,
        )
    return 130 if result.status == "cancelled" else 0


def run_reward(settings: Settings, dirs: Dirs, store: Store, output) -> int:
    """Fit and register a reward model; say its verdict and where the user's number of
    rated questions stands on Sleuth's learning curve."""
    from .expectations import what_feedback_buys
    from .reward_run import describe, train_reward

    try:
        result = train_reward(store, settings, dirs, output)
        if expected := what_feedback_buys(store, settings.model.path):
            output.info(expected)
        output.info(describe(result))
    finally:
        if isinstance(output, ConsoleLogger):
            output.close()
    if isinstance(output, JsonLogger):
        output.emit(
            event="result",
            status="done",
            training_run_id=None,
            model_id=result.model_id,
            adapter=None,
            reward=result.path,
            evaluation=result.evaluation,
            steps=0,
        )
    return 0


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
