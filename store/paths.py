"""Where Sleuth keeps user state.

platformdirs picks the usual per-user folders; `SLEUTH_HOME` moves all of them (data, config,
cache) under one folder, which is how tests and portable installs keep state together.
Nothing here creates a folder: callers create what they write to, when they write it.
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
