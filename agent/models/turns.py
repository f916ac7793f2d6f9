"""Taking turns at the model: one llama.cpp computation at a time on this machine, whichever
Sleuth process asks."""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import time
from pathlib import Path

from sleuth.agent.errors import ModelError
from sleuth.store.paths import app_dirs, private_dir

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
    call takes the turn, an exclusive lock on one file in the user's cache folder, for the
    length of the call: the Sleuths of one user take turns, each at full speed, and a waiting
    call stops waiting when its own stop signal comes. The lock is the kernel's (flock), so a
    process that dies gives up its turn at once.

    The lock file lives where only the user can write (their cache folder, 0700, never the
    shared temporary folder, where another user could plant a link or hold the lock), and
    is opened without following a link, its owner and mode checked.
    """

    def __init__(self, path: Path | None = None):
        self._path = path  # None: the cache folder in effect when the first turn is taken
        self._released = 0.0

    @property
    def path(self) -> Path:
        return self._path or app_dirs().cache / "model.lock"

    @contextlib.contextmanager
    def turn(self, cancel: threading.Event | None = None):
        """Hold the model turn; yields the seconds spent waiting for it."""
        fd = open_lock(self.path)
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


def open_lock(path: Path) -> int:
    """The lock file at `path`, opened for flock: its folder the user's alone, the file a
    regular file of theirs, no link followed. Anything else is one sentence (ModelError)."""
    folder = private_dir(path.parent)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ModelError(
            f"The model lock's folder {folder} is not the user's alone (owner {info.st_uid}, "
            f"mode {stat.S_IMODE(info.st_mode):o}): make it yours with mode 700."
        )
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise ModelError(
            f"Cannot open the model lock {path} ({exc.strerror}): remove it if it is a link "
            "or a folder."
        ) from exc
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
        os.close(fd)
        raise ModelError(f"The model lock {path} is not a file of this user's: remove it.")
    return fd
