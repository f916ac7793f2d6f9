"""Taking turns at the model: one llama.cpp computation at a time on this machine, whichever
Sleuth process asks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import threading
import time
from pathlib import Path

TURN_POLL_S = 0.02  # how often a process waiting for the model checks again
TURN_COURTESY_S = 0.06  # a process that just had its turn waits this long before another


class TurnCancelled(Exception):  # noqa: N818 - a state, not a failure of the code
    """The caller's stop signal came while it waited for another Sleuth's model call."""

    def __init__(self, waited: float):
        super().__init__(f"stopped after waiting {waited:.0f} s for the model")
        self.waited = waited


class ModelTurns:
    """One model computes at a time on this machine, whichever Sleuth process holds it.

    llama.cpp uses every core it is given, and two processes that each take all of them on
    a small machine both slow to a crawl (four asks on 2 cores all ran out of time). So each
    call takes this machine's turn, an exclusive lock on one file in the temporary folder,
    for the length of the call: Sleuths on one machine take turns, each at full speed, and a
    waiting call stops waiting when its own stop signal comes. The lock is the kernel's
    (flock), so a process that dies gives up its turn at once.
    """

    def __init__(self, path: Path | None = None):
        self.path = path or Path(tempfile.gettempdir()) / f"sleuth-{os.getuid()}" / "model.lock"
        self._released = 0.0

    @contextlib.contextmanager
    def turn(self, cancel: threading.Event | None = None):
        """Hold the machine's model turn; yields the seconds spent waiting for it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        started = time.monotonic()
        try:
            # Just had a turn: give a waiting process the chance to take the next one.
            courtesy = self._released + TURN_COURTESY_S - started
            if courtesy > 0:
                time.sleep(courtesy)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if cancel is not None and cancel.is_set():
                        raise TurnCancelled(time.monotonic() - started) from None
                    time.sleep(TURN_POLL_S)
            yield time.monotonic() - started
        finally:
            os.close(fd)  # releases the lock
            self._released = time.monotonic()
