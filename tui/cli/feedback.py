"""`sleuth rate`, `compare`, `export` and `history`: the user's verdicts and what was recorded."""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import asdict
from pathlib import Path

from sleuth.store.ids import row_id
from sleuth.store.paths import write_private

from ..render import describe_rating, plain, session_markdown
from .context import Context, UsageError
from .progress import progress

FORMATS = ["sft", "dpo", "kto", "runs", "trajectories", "md"]


def add_commands(command) -> None:
    p = command(
        "rate",
        cmd_rate,
        "Rate an answer: thumbs or 1-5 stars, with an optional comment or the right answer.",
    )
    p.add_argument("answer_id", type=row_id)
    group = p.add_mutually_exclusive_group(required=False)
    group.add_argument("--up", action="store_true", help="thumbs up")
    group.add_argument("--down", action="store_true", help="thumbs down")
    p.add_argument("--stars", type=int, metavar="N", help="1 to 5 stars")
    p.add_argument("--comment", help="a note kept with the rating")
    p.add_argument(
        "--correct",
        metavar="TEXT",
        help="what the right answer is: trained on as the answer to give, preferred over this "
        'one ("" removes it)',
    )
    p.add_argument("--clear", action="store_true", help="remove the rating")

    p = command("compare", cmd_compare, "Record that one answer is better than another.")
    p.add_argument("winner_id", type=row_id)
    p.add_argument("loser_id", type=row_id)
    p.add_argument("--tie", action="store_true", help="neither is better")

    p = command("export", cmd_export, "Export feedback for training, trajectories, or a report.")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="write here instead of stdout (- is stdout; a symlink is followed, a pipe or a "
        "device written in place)",
    )
    p.add_argument("--session", type=row_id, metavar="ID", help="the session to report (md)")
    p.add_argument(
        "--references",
        metavar="FILE",
        help="trajectories: JSON Lines of {question, answer} to judge runs' correctness by",
    )

    p = command("history", cmd_history, "Recent sessions with their question and answer ids.")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--search", metavar="WORDS", help="full-text search in questions and answers")
    p.add_argument("--json", action="store_true", help="print JSON")


def cmd_rate(ctx: Context) -> int:
    args = ctx.args
    if args.clear:
        ctx.store.runs.answer(args.answer_id)
        ctx.store.feedback.clear_rating(args.answer_id)
        print(f"answer {args.answer_id}: rating removed")
        return 0
    thumb = 1 if args.up else -1 if args.down else None
    if thumb is None and args.stars is None and args.comment is None and args.correct is None:
        raise UsageError(
            "Say how you rate it: --up, --down or --stars N (and --comment, --correct TEXT)."
        )
    rating = ctx.store.feedback.rate(
        args.answer_id,
        thumb=thumb,
        stars=args.stars,
        comment=args.comment,
        correction=args.correct,
    )
    print(f"answer {args.answer_id}: {describe_rating(rating)}")
    return 0


def cmd_compare(ctx: Context) -> int:
    args = ctx.args
    ctx.store.feedback.compare(args.winner_id, args.loser_id, tie=args.tie)
    if args.tie:
        print(f"answers {args.winner_id} and {args.loser_id}: a tie")
    else:
        print(f"answer {args.winner_id} is better than answer {args.loser_id}")
    return 0


def cmd_export(ctx: Context) -> int:
    args = ctx.args
    if args.format == "md":
        if args.session is None:
            raise UsageError("A Markdown report is of one session: add --session ID.")
        text = session_markdown(ctx.store, args.session)
        count = 1
    else:
        lines = []
        with progress(sys.stderr, "exporting", "records") as update:
            for count, record in enumerate(_records(ctx, args.format), start=1):
                lines.append(json.dumps(record, ensure_ascii=False, default=str) + "\n")
                update(count, 0, "", False)
        text, count = "".join(lines), len(lines)
    if args.output and args.output != "-":
        write_output(args.output, text)
        print(f"wrote {count} {args.format} record(s) to {plain(args.output)}", file=sys.stderr)
    else:
        sys.stdout.write(text if args.format != "md" else plain(text))
        if args.format != "md":
            print(f"{count} {args.format} record(s)", file=sys.stderr)
    return 0


def _records(ctx: Context, format: str):
    if format == "runs":
        from sleuth.store.export import run_records

        return run_records(ctx.store)
    if format == "trajectories":
        from sleuth.train.trajectories import load_references, trajectory_records

        try:
            references = load_references(ctx.args.references) if ctx.args.references else None
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        return trajectory_records(ctx.store, references)
    from sleuth.train.feedback import EXPORTERS

    return EXPORTERS[format](ctx.store)


def write_output(target: str, text: str) -> None:
    """Write an export where the user said (`-`, stdout, is the caller's): a new or regular
    file is replaced atomically (via a temporary file, so an interrupted export never leaves
    half a file); a symlink is followed to the file it names; a FIFO or a device is written
    in place, never replaced. A failure is one sentence (UsageError); a file that was there
    is kept."""
    path = Path(os.path.realpath(Path(target).expanduser()))  # a symlink's own target
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise UsageError(f"Cannot write {target}: {_reason(exc)}.") from exc
    if mode is not None and stat.S_ISDIR(mode):
        raise UsageError(f"Cannot write {target}: it is a folder; name a file.")
    if mode is not None and not stat.S_ISREG(mode):
        _write_in_place(target, path, text)
        return
    if not path.parent.is_dir():
        raise UsageError(f"The folder {path.parent} does not exist.")
    tmp = path.with_name(path.name + ".partial")
    try:
        write_private(tmp, text).replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise UsageError(f"Cannot write {target}: {_reason(exc)}.") from exc


def _write_in_place(target: str, path: Path, text: str) -> None:
    """A FIFO, a terminal or another device: opened for writing as it is (no temporary file,
    no truncation of what is not a file)."""
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
    except OSError as exc:
        raise UsageError(f"Cannot write {target}: {_reason(exc)}.") from exc


def _reason(error: OSError) -> str:
    """An OSError's reason in lower case ("no space left on device")."""
    reason = error.strerror or str(error)
    return reason[:1].lower() + reason[1:]


def cmd_history(ctx: Context) -> int:
    sessions = ctx.store.runs.history(limit=ctx.args.limit, query=ctx.args.search)
    if ctx.args.json:
        print(json.dumps([asdict(s) for s in sessions], indent=2, ensure_ascii=False))
        return 0
    if not sessions:
        print("No sessions yet." if not ctx.args.search else "Nothing matches.")
        return 0
    for session in sessions:
        when = session.updated_at[:16].replace("T", " ")
        print(f"session {session.id}  {when}  {plain(session.title)}")
        for turn in session.turns:
            ids = ", ".join(str(i) for i in turn.answer_ids) or "none"
            print(f"  {turn.position}. {shorten(plain(turn.question), 70)}  [answers: {ids}]")
    return 0


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
