"""`sleuth train` and `sleuth models`: the trainer and the registry on the command line.

`--progress json` prints one JSON object per line on stdout (the app runs training in a
separate process and reads these); the default is a progress bar on stderr.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from sleuth.agent.models import fingerprint, resolve_model_path
from sleuth.store import Dirs, Store


class ConsoleLogger:
    """A progress bar with the step's metrics, on stderr."""

    def __init__(self, err: TextIO = sys.stderr):
        self.err = err
        self.tty = err.isatty()

    def step(self, step: int, total: int, metrics: dict) -> None:
        from sleuth.train.trainer import describe

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


def run_train(settings, dirs: Dirs, store: Store, args) -> int:
    from sleuth.train.config import TrainConfig
    from sleuth.train.trainer import train

    overrides = {
        key: getattr(args, key)
        for key in (
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
        )
        if getattr(args, key, None) is not None
    }
    config = TrainConfig(**overrides)
    logger = JsonLogger() if args.progress == "json" else ConsoleLogger()
    cancel = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(*_):  # finish the step in hand, save a checkpoint, stop
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        logger.info("stopping after this step (Ctrl-C again to stop at once)…")

    signal.signal(signal.SIGINT, on_interrupt)
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
        signal.signal(signal.SIGINT, previous)
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
    if args.progress == "json":  # the last line: what the app waits for
        logger.emit(
            event="result",
            status=result.status,
            training_run_id=result.training_run_id,
            model_id=result.model_id,
            adapter=result.adapter_path,
            evaluation=result.evaluation,
            steps=result.steps_done,
        )
    return 130 if result.status == "cancelled" else 0


def verdict(evaluation: dict, model_id: int | None) -> str:
    """The evaluation in one paragraph, ending with what to do."""
    if not evaluation.get("n"):
        return (
            f"model {model_id} registered; {evaluation.get('note', 'not evaluated')}. "
            f"Activate it with `sleuth models activate {model_id}` if you want it anyway."
        )
    parent, new = evaluation["parent"], evaluation["new"]
    lines = [
        f"held-out prompts: {evaluation['n']}",
        f"  reward     parent {parent['reward']:.3f} -> new {new['reward']:.3f}",
        f"  pass rate  parent {parent['pass_rate']:.2f} -> new {new['pass_rate']:.2f}",
        f"  cites      parent {parent['check_rates']['cites']:.2f} -> "
        f"new {new['check_rates']['cites']:.2f}",
        f"  win rate of new vs parent: {evaluation['win_rate']:.2f}",
    ]
    if evaluation["improved"]:
        lines.append(
            f"The new model is better: activate it with `sleuth models activate {model_id}`."
        )
    else:
        lines.append(
            f"The new model is not better; it is registered as model {model_id} but not offered."
        )
    return "\n".join(lines)


def run_models(settings, dirs: Dirs, store: Store, args) -> int:
    from sleuth.tui.cli import UsageError

    base = resolve_model_path(settings.model.path, dirs)
    fp = fingerprint(base)
    if args.action == "list":
        base_row = store.base_model(fp, str(base), base.stem)
        rows = store.models(fp)
        active = store.active_model(fp)
        active_id = active["id"] if active else base_row["id"]
        print(f"base {base} ({fp})")
        for row in rows:
            mark = "*" if row["id"] == active_id else " "
            kind = "base" if not row["adapter_path"] else f"adapter of {row['parent_id']}"
            evaluation = row.get("evaluation") or {}
            note = ""
            if evaluation.get("n"):
                note = (
                    f"  eval n={evaluation['n']} reward {evaluation['parent']['reward']:.3f}->"
                    f"{evaluation['new']['reward']:.3f} win {evaluation['win_rate']:.2f}"
                    f"{' (better)' if evaluation['improved'] else ''}"
                )
            run = f"  run {row['training_run_id']}" if row["training_run_id"] else ""
            print(f"{mark} {row['id']:>3}  {row['name']:<18} {kind}{run}{note}")
        print("* active")
        return 0
    if args.action == "activate":
        if args.model_id is None:
            raise UsageError("Say which model: `sleuth models activate ID` (`sleuth models list`).")
        row = store.model(args.model_id)
        if row["base_fingerprint"] != fp:
            raise UsageError(
                f"Model {row['id']} was trained on {row['base_path']}, not the configured {base}."
            )
        if row["adapter_path"] and not Path(row["adapter_path"]).exists():
            raise UsageError(
                f"The adapter file {row['adapter_path']} is missing; it cannot be used."
            )
        store.activate_model(row["id"])
        print(f"active: model {row['id']} ({row['name']}); the app and `sleuth ask` use it now")
        return 0
    # rollback: the active adapter's parent becomes active
    active = store.active_model(fp)
    if active is None or (not active["adapter_path"] and active["parent_id"] is None):
        print("The base model is already active; there is nothing to roll back.")
        return 0
    parent_id = active["parent_id"] or store.base_model(fp, str(base), base.stem)["id"]
    parent = store.activate_model(parent_id)
    print(f"rolled back: model {parent['id']} ({parent['name']}) is active again")
    return 0
