"""The activity log: every search, fetch and read of a run, failures included."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import RichLog


class ActivityLog(RichLog):
    """One line per step; failed steps in red, never hidden."""

    DEFAULT_CSS = """
    ActivityLog {
        border: round $primary 40%;
        border-title-color: $text-muted;
        height: 1fr;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(wrap=True, markup=False, highlight=False, **kwargs)

    def on_mount(self) -> None:
        self.border_title = "Activity"

    def add(self, line: str, *, failed: bool = False, dim: bool = False) -> None:
        style = "red" if failed else ("dim" if dim else "")
        self.write(Text(("✗ " if failed else "") + line, style=style))
