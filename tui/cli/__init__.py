"""The `sleuth` command: the app when run bare, and scripting subcommands over the store.

One module per group of commands: research.py (ask, index, library), feedback.py (rate,
compare, export, history), models.py, doctor.py and config.py here; `sleuth train` belongs to
the trainer (`sleuth.train.cli`), which the app also runs as `python -m sleuth.train`.
The app's screens never import this package.

Errors a user can cause end in one sentence on stderr and exit code 2, never a traceback.
Heavy imports (llama.cpp, torch, textual) happen inside the commands that need them, so
`sleuth --version` and `sleuth history` start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from sleuth.agent.errors import AgentError
from sleuth.store import StoreError

from ..render import plain
from .context import EXIT_INTERRUPTED, EXIT_USER_ERROR, Context, UsageError, version


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[Context], int | None] = getattr(args, "handler", cmd_app)
    context = None
    try:
        context = Context(args)
        return handler(context) or 0
    except (StoreError, AgentError, UsageError) as exc:
        print(f"sleuth: {plain(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("sleuth: interrupted; everything saved so far is kept.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `sleuth export | head`: the reader left; that is not an error.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    finally:
        if context is not None:
            context.close()


def build_parser() -> argparse.ArgumentParser:
    from sleuth.train import cli as train_cli

    from . import config, doctor, feedback, models, research

    parser = argparse.ArgumentParser(
        prog="sleuth",
        description="A research assistant for the terminal that learns from you. "
        "Run without a command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"sleuth {version()}")
    parser.add_argument("--model", metavar="PATH", help="GGUF model to use instead of the config's")
    parser.set_defaults(handler=cmd_app)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    def command(
        name: str, handler, help: str, loads_model: bool = False
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(handler=handler)
        if loads_model:
            # SUPPRESS: an absent sub-command flag must not erase `sleuth --model X COMMAND`.
            p.add_argument(
                "--model",
                metavar="PATH",
                default=argparse.SUPPRESS,
                help="GGUF model to use instead of the config's",
            )
        return p

    research.add_commands(command)
    train_cli.add_arguments(command("train", cmd_train, train_cli.HELP, True))
    models.add_commands(command)
    config.add_commands(command)
    doctor.add_commands(command)
    feedback.add_commands(command)
    return parser


def cmd_app(ctx: Context) -> int:
    from sleuth.tui.app import run_app

    return run_app(ctx.settings, ctx.dirs)


def cmd_train(ctx: Context) -> int:
    from sleuth.train.cli import run
    from sleuth.train.errors import TrainingError

    try:
        return run(ctx.settings, ctx.dirs, ctx.store, ctx.args)
    except TrainingError as exc:
        raise UsageError(str(exc)) from exc
