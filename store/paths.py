"""Where Sleuth keeps user state.

platformdirs picks the usual per-user folders; `SLEUTH_HOME` moves all of them (data, config,
cache) under one folder, which is how tests and portable installs keep state together.
Nothing here creates a folder on import: callers create what they write to, when they write
it, with `private_dir` and `private_file`: the user's questions, answers, keys and adapters are
theirs alone (folders 0700, files 0600).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "sleuth"


@dataclass(frozen=True)
class Dirs:
    """The three folders Sleuth writes to."""

    data: Path
    config: Path
    cache: Path

    @property
    def database(self) -> Path:
        """The SQLite file with sessions, answers, ratings and the model registry."""
        return self.data / "sleuth.db"

    @property
    def config_file(self) -> Path:
        """The user's TOML settings."""
        return self.config / "config.toml"

    @property
    def adapters(self) -> Path:
        """LoRA adapters written by the trainer (GGUF files)."""
        return self.data / "adapters"

    @property
    def checkpoints(self) -> Path:
        """Training checkpoints, one folder per training run."""
        return self.data / "checkpoints"


def app_dirs() -> Dirs:
    """The folders in effect now: under `$SLEUTH_HOME` when it is set, else platformdirs."""
    home = os.environ.get("SLEUTH_HOME")
    if home:
        root = Path(home).expanduser()
        return Dirs(data=root / "data", config=root / "config", cache=root / "cache")
    return Dirs(
        data=Path(platformdirs.user_data_dir(APP_NAME)),
        config=Path(platformdirs.user_config_dir(APP_NAME)),
        cache=Path(platformdirs.user_cache_dir(APP_NAME)),
    )


def private_dir(path: Path) -> Path:
    """Create `path` (and its parents) readable by the user alone; an existing folder Sleuth
    made keeps or gets that mode. Returns the path."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except PermissionError:  # a folder someone else owns (a shared SLEUTH_HOME): leave it
        pass
    return path


def private_file(path: Path) -> Path:
    """Make a file Sleuth wrote readable and writable by the user alone. Returns the path."""
    try:
        path.chmod(0o600)
    except (PermissionError, FileNotFoundError):
        pass
    return path


def write_private(path: Path, text: str) -> Path:
    """Write `text` to `path`, readable by the user alone from its first byte (a file killed
    half-written is never world-readable, even in a folder others can list). Returns the path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file that was already there keeps its old mode otherwise
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            fd = -1  # the handle owns it now
            handle.write(text)
    finally:
        if fd >= 0:
            os.close(fd)
    return path
