"""Odd files handed to the indexer: a link to /dev/zero, a named pipe, a socket, a link out of
the folder, a symlink loop. Each is skipped and said, quickly, without reading it."""

from __future__ import annotations

import os
import socket
import time

from sleuth.store import Store
from tests.reliability.conftest import GIB, run


def test_special_files_are_skipped_and_reported_never_read(env, sleuth_home, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "real.md").write_text("# Real\n\nThe Saône meets the Rhône at Lyon.")
    (notes / "zero.md").symlink_to("/dev/zero")  # read: gigabytes of nothing
    os.mkfifo(notes / "pipe.md")  # read: waits forever
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(notes / "socket.md"))
    outside = tmp_path / "secret.md"
    outside.write_text("# Secret\n\nnot for the library")
    (notes / "out.md").symlink_to(outside)  # leads out of the indexed folder
    (notes / "loop.md").symlink_to(notes / "loop.md")
    started = time.monotonic()
    done = run("index", str(notes), env=env, timeout=60)
    listener.close()
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 30 and done.max_rss < GIB
    assert "indexed 1, unchanged 0, failed 0, removed 0, skipped 5" in done.stderr
    for name, why in [
        ("zero.md", "outside the indexed folder"),  # /dev/zero is outside it too
        ("pipe.md", "a named pipe"),
        ("socket.md", "a socket"),
        ("out.md", "outside the indexed folder"),
        ("loop.md", "a symlink loop"),
    ]:
        assert f"skipped: {notes / name}: " in done.stderr and why in done.stderr, name
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    assert [d.path for d in store.library.documents()] == [str(notes / "real.md")]
    assert store.library.search_chunks(["secret"]) == []
    store.close()


def test_a_device_given_to_index_is_one_sentence(env):
    done = run("index", "/dev/zero", env=env, timeout=60)
    assert done.returncode == 2 and "not a regular file or a folder" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_a_symlink_loop_given_to_index_is_one_sentence(env, tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    done = run("index", str(loop), env=env, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"sleuth: {loop} is a symlink loop: nothing was indexed."
