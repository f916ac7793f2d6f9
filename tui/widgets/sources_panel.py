"""The sources of an answer: numbered like its citations; select one to preview or open it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..render import literal


class SourcesPanel(OptionList):
    """Numbered evidence; enter previews a source in place, `o` opens it in the browser."""

    DEFAULT_CSS = """
    SourcesPanel {
        border: round $primary 40%;
        border-title-color: $text-muted;
        height: 1fr;
    }
    """

    @dataclass
    class Chosen(Message):
        """The user chose a source (number from 1)."""

        source: dict

    def on_mount(self) -> None:
        self.border_title = "Sources"
        self.sources: list[dict] = []

    def show(self, sources: list[dict]) -> None:
        self.sources = sources
        self.clear_options()
        for source in sources:
            uri = source.get("uri", "")
            snippet = " ".join((source.get("snippet") or "").split())[:140]
            prompt = Text.assemble(
                (f"[{source['number']}] ", "bold"),
                literal(source.get("title") or uri),
                "\n",
                literal(uri, "dim"),
            )
            if snippet:
                prompt.append("\n")
                prompt.append(literal(snippet, "dim italic"))
            self.add_option(Option(prompt, id=str(source["number"])))
        if sources:
            self.highlighted = 0  # enter works as soon as the panel has focus

    def highlight_number(self, number: int) -> None:
        if 1 <= number <= len(self.sources):
            self.highlighted = number - 1
            self.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.post_message(self.Chosen(self.sources[event.option_index]))
