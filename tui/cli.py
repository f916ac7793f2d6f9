"""The `sleuth` command: the app when run bare, and scripting subcommands over the store.

Errors a user can cause end in one sentence on stderr and exit code 2, never a traceback.
Heavy imports (llama.cpp, torch, textual) happen inside the commands that need them, so
`sleuth --version` and `sleuth history` start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from sleuth.agent.errors import AgentError
from sleuth.store import Dirs, Store, StoreError, app_dirs
from sleuth.store.settings import Settings, load_settings, save_setting, setting_help

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command-line input that argparse could not catch."""


def version() -> str:
    try:
        return metadata.version("sleuth")
    except metadata.PackageNotFoundError:
        return "unknown"


class Context:
    """What a command needs, opened on first use: settings, folders, the store."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.dirs: Dirs = app_dirs()
        self.settings: Settings = load_settings(self.dirs.config_file, flags=setting_flags(args))
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store.open(self.dirs.database)
        return self._store

    def close(self) -> None:
        if self._store is not None:
            self._store.close()


def setting_flags(args: argparse.Namespace) -> dict[str, Any]:
    """Command-line options that override settings."""
    from sleuth.tui.ask import parse_budget

    flags: dict[str, Any] = {"model.path": getattr(args, "model", None)}
    if getattr(args, "local_only", False):
        flags["network.local_only"] = True
    try:
        flags.update(parse_budget(getattr(args, "budget", None)))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return flags


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[Context], int | None] = getattr(args, "handler", cmd_app)
    context = None
    try:
        context = Context(args)
        return handler(context) or 0
    except (StoreError, AgentError, UsageError) as exc:
        print(f"sleuth: {exc}", file=sys.stderr)
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

    p = command("ask", cmd_ask, "Research a question and print a cited answer.", True)
    p.add_argument("question", nargs="+", help="the question (quote it, or not)")
    p.add_argument("--session", type=int, metavar="ID", help="ask a follow-up in this session")
    p.add_argument("--no-web", action="store_true", help="do not search or fetch the web")
    p.add_argument(
        "--library",
        action="append",
        default=[],
        metavar="PATH",
        help="index PATH (incrementally) and search only it in the library; repeatable",
    )
    p.add_argument(
        "--budget",
        metavar="K=N,...",
        help="limits for this run: rounds, steps, pages, seconds, tokens, evidence",
    )
    p.add_argument("--local-only", action="store_true", help="send nothing off this machine")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--seed", type=int, help="sampling seed (for reproducible runs)")

    p = command("index", cmd_index, "Index files and folders into the library (incremental).")
    p.add_argument("paths", nargs="+", metavar="PATH")

    p = command("library", cmd_library, "List what is indexed, or remove a folder from it.")
    p.add_argument("--files", action="store_true", help="list every file")
    p.add_argument("--remove", metavar="PATH", help="forget an indexed folder (files untouched)")

    p = command(
        "train", cmd_train, "Train a LoRA adapter on your feedback (SFT, DPO, KTO, GRPO).", True
    )
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
        "--no-gradient-checkpointing",
        dest="gradient_checkpointing",
        action="store_false",
        default=None,
        help="keep every layer's activations: faster, far more memory on long prompts",
    )
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--resume", type=int, metavar="RUN", help="continue a stopped training run")
    p.add_argument("--progress", choices=["bar", "json"], default="bar", help=argparse.SUPPRESS)

    p = command("models", cmd_models, "List, activate or roll back trained adapters.", True)
    p.add_argument("action", choices=["list", "activate", "rollback"], nargs="?", default="list")
    p.add_argument("model_id", type=int, nargs="?")

    p = command("config", cmd_config, "Show the effective settings and where each came from.")
    p.add_argument("--json", action="store_true", help="print JSON")
    config_sub = p.add_subparsers(metavar="ACTION")
    p_set = config_sub.add_parser("set", help="write one setting to the config file")
    p_set.add_argument("key")
    p_set.add_argument("value")
    p_set.set_defaults(handler=cmd_config_set)

    p = command(
        "doctor", cmd_doctor, "Check the installation: versions, model, GPU, database.", True
    )
    p.add_argument("--quick", action="store_true", help="only find the model file, do not load it")

    p = command("rate", cmd_rate, "Rate an answer: thumbs or 1-5 stars, with an optional comment.")
    p.add_argument("answer_id", type=int)
    group = p.add_mutually_exclusive_group(required=False)
    group.add_argument("--up", action="store_true", help="thumbs up")
    group.add_argument("--down", action="store_true", help="thumbs down")
    p.add_argument("--stars", type=int, metavar="N", help="1 to 5 stars")
    p.add_argument("--comment", help="a note kept with the rating")
    p.add_argument("--clear", action="store_true", help="remove the rating")

    p = command("compare", cmd_compare, "Record that one answer is better than another.")
    p.add_argument("winner_id", type=int)
    p.add_argument("loser_id", type=int)
    p.add_argument("--tie", action="store_true", help="neither is better")

    p = command("export", cmd_export, "Export feedback for training, trajectories, or a report.")
    p.add_argument("--format", required=True, choices=["sft", "dpo", "kto", "runs", "md"])
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.add_argument("--session", type=int, metavar="ID", help="the session to report (md)")

    p = command("history", cmd_history, "Recent sessions with their question and answer ids.")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--search", metavar="WORDS", help="full-text search in questions and answers")
    p.add_argument("--json", action="store_true", help="print JSON")

    return parser


# -- commands ----------------------------------------------------------------------------------


def cmd_app(ctx: Context) -> int:
    from sleuth.tui.app import run_app

    return run_app(ctx.settings, ctx.dirs)


def cmd_ask(ctx: Context) -> int:
    import asyncio

    from sleuth.tui.ask import run_ask

    args = ctx.args
    question = " ".join(args.question).strip()
    if not question:
        raise UsageError("Ask a question: it was empty.")
    if args.session is not None:
        ctx.store.session(args.session)
    library = [Path(p) for p in args.library]
    for path in library:
        if not path.expanduser().exists():
            raise UsageError(f"The library path {path} does not exist.")
    return asyncio.run(
        run_ask(
            ctx.settings,
            ctx.dirs,
            ctx.store,
            question,
            session_id=args.session,
            use_web=not args.no_web,
            library=library,
            as_json=args.json,
            seed=args.seed,
        )
    )


def cmd_index(ctx: Context) -> int:
    from sleuth.agent.library import LibraryError
    from sleuth.tui.ask import index_with_progress

    try:
        report = index_with_progress(ctx.store, [Path(p) for p in ctx.args.paths])
    except LibraryError as exc:
        raise UsageError(str(exc)) from exc
    return EXIT_INTERRUPTED if report.cancelled else 0


def cmd_library(ctx: Context) -> int:
    args = ctx.args
    if args.remove:
        root = str(Path(args.remove).expanduser().resolve())
        count = ctx.store.remove_root(root)
        if not count:
            raise UsageError(f"{root} is not an indexed folder: `sleuth library` lists them.")
        print(f"forgot {count} file(s) under {root} (the files themselves are untouched)")
        return 0
    roots = ctx.store.library_summary()
    if not roots:
        print("The library is empty: add files with `sleuth index PATH`.")
        return 0
    for root in roots:
        failed = f", {root['failed']} failed" if root["failed"] else ""
        print(
            f"{root['root']}: {root['indexed']} file(s) indexed{failed}, {root['chunks']} chunks, "
            f"{(root['bytes'] or 0) / 1e6:.1f} MB, last indexed {root['indexed_at'][:16]}"
        )
        if args.files:
            for doc in ctx.store.documents(root=root["root"]):
                note = f"  ({doc['error']})" if doc["error"] else ""
                print(f"  {doc['status']:<8} {doc['path']}{note}")
    return 0


def cmd_train(ctx: Context) -> int:
    from sleuth.train.config import TrainConfigError
    from sleuth.train.model_io import ModelIOError
    from sleuth.train.trainer import TrainError
    from sleuth.tui.train_cmd import run_train

    try:
        return run_train(ctx.settings, ctx.dirs, ctx.store, ctx.args)
    except (TrainError, TrainConfigError, ModelIOError) as exc:
        raise UsageError(str(exc)) from exc


def cmd_models(ctx: Context) -> int:
    from sleuth.tui.train_cmd import run_models

    return run_models(ctx.settings, ctx.dirs, ctx.store, ctx.args)


def cmd_config(ctx: Context) -> int:
    items = ctx.settings.items()
    if ctx.args.json:
        print(json.dumps({k: {"value": v, "origin": o} for k, v, o in items}, indent=2))
        return 0
    width = max(len(k) for k, _, _ in items)
    for key, value, origin in items:
        print(f"{key:<{width}} = {json.dumps(value):<28} ({origin})")
    state = "exists" if ctx.dirs.config_file.exists() else "not created yet"
    print(f"\nconfig file: {ctx.dirs.config_file} ({state})")
    print(f"data: {ctx.dirs.data}\ncache: {ctx.dirs.cache}")
    print("Set one with `sleuth config set KEY VALUE` or the SLEUTH_<SECTION>_<KEY> variable.")
    return 0


def cmd_config_set(ctx: Context) -> int:
    key, value = ctx.args.key, ctx.args.value
    save_setting(ctx.dirs.config_file, key, value)
    print(f"{key} = {value}  written to {ctx.dirs.config_file}")
    print(f"  {setting_help(key)}")
    return 0


def cmd_doctor(ctx: Context) -> int:
    from sleuth.agent.doctor import find_model_check, run_checks

    checks = [find_model_check(ctx.settings, ctx.dirs)] if ctx.args.quick else None
    ok = True
    for check in checks or run_checks(ctx.settings, ctx.dirs):
        mark = "ok " if check.ok else "BAD"
        print(f"[{mark}] {check.name:<16} {check.detail}")
        ok = ok and check.ok
    return 0 if ok else EXIT_USER_ERROR


def cmd_rate(ctx: Context) -> int:
    args = ctx.args
    if args.clear:
        ctx.store.answer(args.answer_id)
        ctx.store.clear_rating(args.answer_id)
        print(f"answer {args.answer_id}: rating removed")
        return 0
    thumb = 1 if args.up else -1 if args.down else None
    if thumb is None and args.stars is None and args.comment is None:
        raise UsageError("Say how you rate it: --up, --down or --stars N (and --comment).")
    rating = ctx.store.rate(args.answer_id, thumb=thumb, stars=args.stars, comment=args.comment)
    from sleuth.store.export import describe_rating

    print(f"answer {args.answer_id}: {describe_rating(rating)}")
    return 0


def cmd_compare(ctx: Context) -> int:
    args = ctx.args
    ctx.store.compare(args.winner_id, args.loser_id, tie=args.tie)
    if args.tie:
        print(f"answers {args.winner_id} and {args.loser_id}: a tie")
    else:
        print(f"answer {args.winner_id} is better than answer {args.loser_id}")
    return 0


def cmd_export(ctx: Context) -> int:
    from sleuth.store.export import EXPORTERS, session_markdown

    args = ctx.args
    if args.format == "md":
        if args.session is None:
            raise UsageError("A Markdown report is of one session: add --session ID.")
        text = session_markdown(ctx.store, args.session)
        count = 1
    else:
        records = list(EXPORTERS[args.format](ctx.store))
        text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
        count = len(records)
    if args.output:
        write_atomically(Path(args.output), text)
        print(f"wrote {count} {args.format} record(s) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        if args.format != "md":
            print(f"{count} {args.format} record(s)", file=sys.stderr)
    return 0


def write_atomically(path: Path, text: str) -> None:
    """Write via a temporary file so an interrupted export never leaves half a file behind."""
    path = path.expanduser()
    if not path.parent.exists():
        raise UsageError(f"The folder {path.parent} does not exist.")
    tmp = path.with_name(path.name + ".partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"Cannot write {path}: {exc.strerror}.") from exc


def cmd_history(ctx: Context) -> int:
    sessions = ctx.store.history(limit=ctx.args.limit, query=ctx.args.search)
    if ctx.args.json:
        print(json.dumps(sessions, indent=2, ensure_ascii=False, default=str))
        return 0
    if not sessions:
        print("No sessions yet." if not ctx.args.search else "Nothing matches.")
        return 0
    for session in sessions:
        when = session["updated_at"][:16].replace("T", " ")
        print(f"session {session['id']}  {when}  {session['title']}")
        for turn in session["turns"]:
            ids = ", ".join(str(i) for i in turn["answer_ids"]) or "none"
            print(f"  {turn['position']}. {shorten(turn['question'], 70)}  [answers: {ids}]")
    return 0


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


if __name__ == "__main__":  # `python -m sleuth.tui.cli` (how the app starts a training run)
    sys.exit(main())
