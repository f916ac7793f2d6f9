"""Compare: two answers to the same question side by side; one key picks A, B or a tie."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Markdown

from sleuth.store import StoreError

from ..render import plain
from ..widgets.answer_view import linked


class CompareScreen(ModalScreen[str | None]):
    """Stores the verdict as a comparison (the trainer's preference data) and returns
    "a", "b", "tie", or None when skipped."""

    BINDINGS = [
        Binding("a", "pick('a')", "A is better", id="compare.a"),
        Binding("b", "pick('b')", "B is better", id="compare.b"),
        Binding("t", "pick('tie')", "Tie", id="compare.tie"),
        Binding("escape", "skip", "Skip", id="compare.skip"),
    ]

    def __init__(self, a_id: int, a_text: str, b_id: int, b_text: str) -> None:
        super().__init__()
        self.a_id, self.a_text, self.b_id, self.b_text = a_id, a_text, b_id, b_text

    def compose(self) -> ComposeResult:
        yield Label(
            "[b]Which answer is better?[/b]  a / b / t (tie) / escape (skip)", id="compare-title"
        )
        with Horizontal(id="compare-body"):
            with VerticalScroll(classes="compare-side") as left:
                left.border_title = f"A — answer {self.a_id}"
                yield Markdown(linked(plain(self.a_text)), open_links=False)
            with VerticalScroll(classes="compare-side") as right:
                right.border_title = f"B — answer {self.b_id} (regenerated)"
                yield Markdown(linked(plain(self.b_text)), open_links=False)
        yield Footer()

    def action_pick(self, verdict: str) -> None:
        winner, loser = (self.a_id, self.b_id) if verdict != "b" else (self.b_id, self.a_id)
        try:
            self.app.store.feedback.compare(winner, loser, tie=verdict == "tie")
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        label = {"a": "A is better", "b": "B is better", "tie": "a tie"}[verdict]
        self.notify(f"Saved: {label}.")
        self.dismiss(verdict)

    def action_skip(self) -> None:
        self.dismiss(None)
