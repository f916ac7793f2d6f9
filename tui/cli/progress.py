"""Progress of the command line's long work (indexing, exporting) on stderr: a rich progress
bar with its rate and time left on a terminal, plain lines when stderr is a file or a pipe."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..render import one_line

Update = Callable[[int, int, str, bool], None]  # done, total, what was just handled, say it


@contextlib.contextmanager
def progress(err: TextIO, what: str, unit: str) -> Iterator[Update]:
    """Yields `update(done, total, note, notable)` (total 0: not known yet): on a terminal it
    moves a bar (`unit`s per second, time left, the note); elsewhere it writes a line for
    each notable step and the last one, so a log stays short."""
    if not err.isatty():

        def line(done: int, total: int, note: str, notable: bool) -> None:
            if notable or done == total:
                err.write(one_line(f"{what} {done}/{total} {note}") + "\n")
                err.flush()

        yield line
        return
    columns = (
        TextColumn(f"{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[note]}", markup=False),
    )
    with Progress(*columns, console=Console(file=err), transient=False) as bar:
        task = bar.add_task(what, total=None, rate="", note="")

        def move(done: int, total: int, note: str, notable: bool) -> None:
            speed = bar.tasks[0].speed
            rate = f"{speed:.1f} {unit}/s" if speed else ""
            shown = one_line(note)[:60]
            bar.update(task, completed=done, total=total or None, rate=rate, note=shown)

        yield move
