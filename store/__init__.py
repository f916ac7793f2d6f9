"""User state: where it lives (paths), what the user chose (settings), and what happened (the
SQLite database: schema, migrations, every SQL statement). Imports nothing of Sleuth's."""

from .database import SCHEMA_VERSION, now
from .errors import ConfigError, NotFound, StoreError
from .paths import Dirs, app_dirs
from .store import Store

__all__ = [
    "SCHEMA_VERSION",
    "ConfigError",
    "Dirs",
    "NotFound",
    "Store",
    "StoreError",
    "app_dirs",
    "now",
]
