"""What every command starts from: its arguments, the settings they override, the folders and
the store (opened on first use); and how a command fails (UsageError, exit codes)."""

from __future__ import annotations

import argparse
from importlib import metadata
from typing import Any

from sleuth.store import Dirs, Store, app_dirs
from sleuth.store.settings import Settings, load_settings

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
    flags: dict[str, Any] = {"model.path": getattr(args, "model", None)}
    if getattr(args, "local_only", False):
        flags["network.local_only"] = True
    try:
        flags.update(parse_budget(getattr(args, "budget", None)))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return flags


BUDGET_KEYS = {
    "rounds": "research.max_rounds",
    "steps": "research.max_steps",
    "pages": "research.max_pages",
    "seconds": "research.max_seconds",
    "tokens": "research.max_llm_tokens",
    "evidence": "research.evidence_k",
}


def parse_budget(text: str | None) -> dict[str, str]:
    """'rounds=1,pages=5' -> {'research.max_rounds': '1', 'research.max_pages': '5'}."""
    flags: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, _, value = part.partition("=")
        key = key.strip()
        if key not in BUDGET_KEYS or not value.strip():
            raise ValueError(
                f"Bad --budget item {part.strip()!r}: use KEY=N with KEY one of "
                f"{', '.join(BUDGET_KEYS)}."
            )
        flags[BUDGET_KEYS[key]] = value.strip()
    return flags
