"""Library: indexed folders and their counts; add, re-index (with progress) or remove one."""

from __future__ import annotations

import threading
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, ProgressBar, RichLog

from sleuth.agent.tools.library import LibraryError, index_paths
from sleuth.store import StoreError

from ..render import index_summary, literal
from ..widgets.status_bar import StatusBar
from .dialogs import AskText, Confirm


class LibraryScreen(Screen):
    BINDINGS = [
        Binding("a", "add", "Add folder", id="library.add"),
        Binding("r", "reindex", "Re-index", id="library.reindex"),
        Binding("d", "remove", "Remove", id="library.remove"),
        Binding("escape", "stop", "Stop indexing", id="library.stop"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.cancel = threading.Event()
        self.indexing = False

    def compose(self) -> ComposeResult:
        yield DataTable(id="roots", cursor_type="row", zebra_stripes=True)
        yield Label("", id="library-progress-label")
        yield ProgressBar(id="library-progress", show_eta=False)
        yield RichLog(id="library-log", wrap=True, markup=True)
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(ProgressBar).display = False  # shown while indexing
        self.query_one("#library-log", RichLog).border_title = "Indexing"
        self.query_one(DataTable).add_columns(
            "folder", "indexed", "failed", "chunks", "MB", "last indexed"
        )
        self.refresh_roots()

    def on_screen_resume(self) -> None:
        self.refresh_roots()

    def refresh_roots(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for root in self.app.store.library.summary():
            table.add_row(
                literal(root.root),
                str(root.indexed),
                str(root.failed),
                str(root.chunks),
                f"{root.bytes / 1e6:.1f}",
                root.indexed_at[:16].replace("T", " "),
                key=root.root,
            )
        if table.row_count == 0:
            self.query_one("#library-progress-label", Label).update(
                "The library is empty: press a to add a folder of notes, papers or docs."
            )

    def _selected(self) -> str | None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            self.notify("No folder selected.", severity="warning")
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    @work(group="dialog")
    async def action_add(self) -> None:
        path = await self.app.push_screen_wait(
            AskText("Folder or file to index", placeholder="~/notes")
        )
        if path:
            self.index([Path(path).expanduser()])

    def action_reindex(self) -> None:
        root = self._selected()
        if root is not None:
            self.index([Path(root)])

    @work(group="dialog")
    async def action_remove(self) -> None:
        root = self._selected()
        if root is None:
            return
        if await self.app.push_screen_wait(
            Confirm(
                f"Forget everything indexed under {root}? (Your files are not touched; "
                "re-adding the folder brings it back.)"
            )
        ):
            count = self.app.store.library.remove_root(root)
            self.notify(f"Forgot {count} file(s) under {root}.")
            self.refresh_roots()

    def action_stop(self) -> None:
        if self.indexing:
            self.cancel.set()

    @work(thread=True, exclusive=True, group="index")
    def index(self, paths: list[Path]) -> None:
        self.indexing = True
        self.cancel.clear()
        log = self.query_one("#library-log", RichLog)

        def progress(done: int, total: int, result) -> None:
            def update() -> None:
                bar = self.query_one(ProgressBar)
                bar.display = True
                bar.update(total=total, progress=done)
                self.query_one("#library-progress-label", Label).update(
                    literal(f"{done}/{total}  {result.status}  {Path(result.path).name}")
                )
                if result.error:
                    log.write(
                        Text.assemble(("failed ", "red"), literal(f"{result.path}: {result.error}"))
                    )

            self.app.call_from_thread(update)

        try:
            report = index_paths(self.app.store, paths, on_progress=progress, cancel=self.cancel)
        except (LibraryError, StoreError) as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        finally:
            self.indexing = False
        for path, why in report.skipped_files:
            self.app.call_from_thread(log.write, literal(f"skipped {path}: {why}", "yellow"))
        self.app.call_from_thread(log.write, index_summary(report))
        self.app.call_from_thread(self.notify, index_summary(report))
        self.app.call_from_thread(self.refresh_roots)
