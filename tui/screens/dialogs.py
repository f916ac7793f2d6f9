"""Small modal dialogs: a line of text, a longer text to edit, a yes/no question, a source
preview."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Markdown, TextArea

from ..render import literal, plain


class AskText(ModalScreen[str | None]):
    """One line of input (a comment, a folder path); enter saves, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="dialog.cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self.title_text, self.value, self.placeholder = title, value, placeholder

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.title_text)
            yield Input(value=self.value, placeholder=self.placeholder, id="dialog-input")
            yield Label("enter: save  •  escape: cancel", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class EditText(ModalScreen[str | None]):
    """Several lines to edit (an answer to correct); ctrl+s saves, escape cancels."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="edit.save"),
        Binding("escape", "cancel", "Cancel", id="edit.cancel"),
    ]

    def __init__(self, title: str, value: str = "") -> None:
        super().__init__()
        self.title_text, self.value = title, value

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog edit-dialog"):
            yield Label(self.title_text)
            yield TextArea(self.value, id="edit-text", soft_wrap=True, show_line_numbers=False)
            yield Label("ctrl+s: save  •  escape: cancel", classes="hint")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one(TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class Confirm(ModalScreen[bool]):
    """A yes/no question; y or enter confirms, n or escape declines."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="dialog.yes"),
        Binding("n,escape", "answer(False)", "No", id="dialog.no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question)
            with Horizontal(classes="buttons"):
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, value: bool) -> None:
        self.dismiss(value)


class Preview(ModalScreen[None]):
    """A source's text, in place; o opens it in the browser (web sources)."""

    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", id="preview.close"),
        Binding("o", "open", "Open in browser", id="preview.open"),
    ]

    def __init__(self, title: str, uri: str, text: str) -> None:
        super().__init__()
        self.title_text, self.uri, self.text = title, uri, text

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(
                Text.assemble(literal(self.title_text, "bold"), "\n", literal(self.uri, "dim"))
            )
            with VerticalScroll():
                yield Markdown(plain(self.text), open_links=False)
            yield Label("o: open in browser  •  escape: close", classes="hint")

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        open_web_link(self.app, event.href)

    def action_open(self) -> None:
        if self.uri.startswith(("http://", "https://")):
            self.app.open_url(self.uri)
        else:
            self.app.notify(f"{self.uri} is a local file; its text is shown here.")


def open_web_link(app, href: str) -> None:
    """Open a link from a page or an answer, if it is a web address: text from outside never
    gets to open a file or run another program by its scheme."""
    if href.startswith(("http://", "https://")):
        app.open_url(href)
    else:
        app.notify(f"Not opened: {href} is not a web address.", severity="warning")
