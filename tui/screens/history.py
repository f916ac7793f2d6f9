"""History: sessions with full-text search; read one with its sources and ratings, continue
it, or export it as a Markdown report."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Markdown

from sleuth.store import StoreError
from sleuth.store.paths import private_dir, write_private

from ..render import literal, session_markdown
from ..widgets.status_bar import StatusBar
from .dialogs import open_web_link


class HistoryScreen(Screen):
    BINDINGS = [
        Binding("ctrl+f", "focus_search", "Search", id="history.search"),
        Binding("c", "continue_session", "Continue", id="history.continue"),
        Binding("e", "export", "Export Markdown", id="history.export"),
    ]

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search questions and answers (enter)", id="history-search")
        with Horizontal():
            yield DataTable(id="sessions", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="session-view"):
                yield Markdown("Select a session.", id="session-markdown", open_links=False)
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("id", "updated", "questions", "answers", "title")
        self.refresh_sessions()

    def on_screen_resume(self) -> None:
        self.refresh_sessions()

    def refresh_sessions(self, query: str | None = None) -> None:
        table = self.query_one(DataTable)
        table.clear()
        try:
            sessions = self.app.store.runs.history(limit=200, query=query)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
            return
        for session in sessions:
            answers = sum(len(t.answer_ids) for t in session.turns)
            table.add_row(
                str(session.id),
                session.updated_at[:16].replace("T", " "),
                str(len(session.turns)),
                str(answers),
                literal(session.title[:80]),
                key=str(session.id),
            )
        if query and not sessions:
            self.notify("Nothing matches.")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.refresh_sessions(event.value.strip() or None)
        self.query_one(DataTable).focus()

    def _selected(self) -> int | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            self.notify("No session selected.", severity="warning")
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value)

    async def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        session_id = int(event.row_key.value)
        report = session_markdown(self.app.store, session_id)
        await self.query_one("#session-markdown", Markdown).update(report)

    async def action_continue_session(self) -> None:
        session_id = self._selected()
        if session_id is not None:
            await self.app.continue_session(session_id)

    def action_export(self) -> None:
        session_id = self._selected()
        if session_id is None:
            return
        folder = private_dir(self.app.dirs.data / "exports")
        path = folder / f"session-{session_id}.md"
        write_private(path, session_markdown(self.app.store, session_id))
        self.notify(f"Exported to {path}")

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        open_web_link(self.app, event.href)

    def action_focus_search(self) -> None:
        self.query_one("#history-search", Input).focus()
