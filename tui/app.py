"""The Textual app (built out in the TUI issue)."""

from __future__ import annotations

from sleuth.agent.config import Settings
from sleuth.store import Dirs


def run_app(settings: Settings, dirs: Dirs) -> int:
    from textual.app import App
    from textual.widgets import Footer, Header, Static

    class SleuthApp(App):
        def compose(self):
            yield Header()
            yield Static("Sleuth")
            yield Footer()

    SleuthApp().run()
    return 0
