"""The one place sqlite-utils is imported."""

from __future__ import annotations

import sys


def _import_sqlite_utils():
    """sqlite-utils imports pandas and numpy, when installed, only to map their types in
    inserts, which Sleuth never does; that is half a second of the app's start-up. Hide the
    two (if not imported yet) while it imports; they import normally afterwards."""
    hidden = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes `import name` fail
    try:
        import sqlite_utils
    finally:
        for name in hidden:
            del sys.modules[name]
    return sqlite_utils


sqlite_utils = _import_sqlite_utils()
