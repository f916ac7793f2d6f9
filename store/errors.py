"""Errors the store raises: each carries one sentence a user can act on."""

from __future__ import annotations

import sqlite3
from pathlib import Path


class StoreError(Exception):
    """A problem with the user's stored state that they can fix: a locked, corrupt, newer or
    unwritable database, or a bad config file or value."""


class ConfigError(StoreError):
    """An unreadable config file, an unknown key, or a value of the wrong type."""


class NotFound(StoreError):
    """An id that names no row (a mistyped answer id, a deleted session)."""


def translate(exc: sqlite3.Error, path: Path | str) -> StoreError:
    """Turn an sqlite3 error into one clear sentence naming the file and what to do."""
    text = str(exc).lower()
    if "locked" in text or "busy" in text:
        return StoreError(
            f"The database {path} is locked by another program (another Sleuth, or a training "
            "run?): wait for it to finish or close it, then try again."
        )
    if "not a database" in text or "malformed" in text or "corrupt" in text:
        return StoreError(
            f"The database {path} is corrupt or not a Sleuth database: move it aside (Sleuth then "
            "starts a new one) or restore it from a backup."
        )
    if "disk is full" in text or "disk i/o" in text or "no space" in text:
        return StoreError(
            f"Could not write to {path}: the disk is full or failing. Free some space and try "
            "again; nothing already saved was lost."
        )
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return StoreError(
            f"Cannot open {path} for writing: check that the folder exists and you may write to it."
        )
    return StoreError(f"Database error in {path}: {exc}.")
