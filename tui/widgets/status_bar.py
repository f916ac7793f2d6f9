"""The status bar: model, adapter, GPU or CPU, tokens per second, elapsed time."""

from __future__ import annotations

from textual.reactive import reactive
from textual.widgets import Static


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $boost;
        color: $text-muted;
        padding: 0 1;
    }
    """

    model = reactive("loading the model…")
    adapter = reactive("")
    device = reactive("")
    speed = reactive("")
    elapsed = reactive("")
    note = reactive("")

    def on_mount(self) -> None:
        if hasattr(self.app, "model_state"):
            self.watch(self.app, "model_state", self._model_changed)

    def _model_changed(self, state: tuple[str, str, str, str]) -> None:
        self.model, self.adapter, self.device, self.note = state

    def render(self) -> str:
        parts = [
            self.model,
            self.adapter or "no adapter",
            self.device,
            self.speed,
            self.elapsed,
            self.note,
        ]
        return "  •  ".join(p for p in parts if p)
