"""SQLite storage: schema, migrations, every SQL statement, exports. Imports nothing of Sleuth's."""

from .db import SCHEMA_VERSION, Store, now
from .errors import NotFound, StoreError
from .paths import Dirs, app_dirs

__all__ = ["SCHEMA_VERSION", "Dirs", "NotFound", "Store", "StoreError", "app_dirs", "now"]
