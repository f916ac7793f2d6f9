"""The research plan: sub-questions that tick off as their searches finish."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class PlanPanel(Static):
    """Sub-questions of the current run, each waiting (○), done (●) or empty (◌)."""

    DEFAULT_CSS = """
    PlanPanel {
        height: auto;
        max-height: 12;
        border: round $primary 40%;
        border-title-color: $text-muted;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.border_title = "Plan"
        self.clear()

    def clear(self) -> None:
        self._items: list[dict] = []
        self._state: dict[int, str] = {}
        self.update(Text("Ask a question to start.", style="dim"))

    def add_round(self, subquestions: list[dict], round_number: int, fallback: bool) -> None:
        for sub in subquestions:
            self._items.append({**sub, "round": round_number})
        if fallback:
            self._items[-1]["note"] = "the model's plan was unusable: searching the question"
        self._redraw()

    def replace_first_round(self, subquestions: list[dict]) -> None:
        """The user edited the plan: show the searches that will run instead."""
        self._items = [item for item in self._items if item.get("round", 1) > 1]
        self._state.clear()
        self.add_round(subquestions, 1, fallback=False)

    def done(self, index: int, sources: int) -> None:
        self._state[index] = "done" if sources else "empty"
        self._redraw()

    def _redraw(self) -> None:
        text = Text()
        for index, item in enumerate(self._items):
            state = self._state.get(index)
            mark, style = {"done": ("●", "green"), "empty": ("◌", "yellow")}.get(
                state, ("○", "dim")
            )
            where = "web" if item["tool"] == "web_search" else "library"
            text.append(f"{mark} ", style=style)
            text.append(item["query"], style="bold" if state else "")
            text.append(f" · {where}", style="dim")
            if item.get("round", 1) > 1:
                text.append(f" (round {item['round']})", style="dim")
            if item.get("note"):
                text.append(f"\n   {item['note']}", style="yellow dim")
            text.append("\n")
        self.update(text)
