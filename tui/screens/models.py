"""Models: the registry for the current base model. Activate an adapter or roll back; the
running model switches without restarting the app."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from sleuth.store import StoreError

from ..widgets.status_bar import StatusBar


class ModelsScreen(Screen):
    BINDINGS = [
        Binding("a,enter", "activate", "Activate", id="models.activate"),
        Binding("r", "rollback", "Roll back", id="models.rollback"),
    ]

    def compose(self) -> ComposeResult:
        yield DataTable(id="models", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="model-detail"):
            yield Static("", id="model-evaluation")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            "", "id", "name", "parent", "training run", "evaluation"
        )
        self.refresh_models()

    def on_screen_resume(self) -> None:
        self.refresh_models()

    def refresh_models(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        info = self.app.model_info
        if info is None or info.base_fingerprint is None:
            self.query_one("#model-evaluation", Static).update(
                "The model is not loaded (or runs on a server): nothing to manage here yet."
            )
            return
        store = self.app.store
        active = store.active_model(info.base_fingerprint)
        for row in store.models(info.base_fingerprint):
            is_active = (active and row["id"] == active["id"]) or (
                not active and not row["adapter_path"]
            )
            evaluation = row.get("evaluation") or {}
            verdict = ""
            if evaluation.get("n"):
                parent, new = evaluation["parent"]["reward"], evaluation["new"]["reward"]
                better = ", better" if evaluation["improved"] else ""
                verdict = f"reward {parent:.3f}→{new:.3f}, win {evaluation['win_rate']:.2f}{better}"
            table.add_row(
                "●" if is_active else "",
                str(row["id"]),
                row["name"],
                str(row["parent_id"] or "base"),
                str(row["training_run_id"] or ""),
                verdict,
                key=str(row["id"]),
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = self.app.store.model(int(event.row_key.value))
        evaluation = row.get("evaluation") or {}
        lines = [f"[b]{row['name']}[/b]  {row['adapter_path'] or row['base_path']}"]
        if evaluation.get("n"):
            p, n = evaluation["parent"], evaluation["new"]
            lines.append(f"held-out prompts: {evaluation['n']}")
            lines.append(
                f"reward {p['reward']:.3f} → {n['reward']:.3f}; pass rate "
                f"{p['pass_rate']:.2f} → {n['pass_rate']:.2f}; "
                f"win rate {evaluation['win_rate']:.2f}"
            )
            for name, rate in n["check_rates"].items():
                lines.append(f"  {name:<9} {p['check_rates'][name]:.2f} → {rate:.2f}")
            lines.append(
                "[green]better than its parent[/green]"
                if evaluation["improved"]
                else "[yellow]not better than its parent[/yellow]"
            )
        elif evaluation.get("note"):
            lines.append(evaluation["note"])
        self.query_one("#model-evaluation", Static).update("\n".join(lines))

    def action_activate(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        model_id = int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        try:
            self.app.activate_model(model_id)
        except StoreError as exc:
            self.notify(str(exc), severity="error")
        self.refresh_models()

    def action_rollback(self) -> None:
        info = self.app.model_info
        if info is None or info.base_fingerprint is None:
            return
        active = self.app.store.active_model(info.base_fingerprint)
        if active is None or not active["adapter_path"]:
            self.notify("The base model is already active.")
            return
        self.app.activate_model(active["parent_id"])
        self.refresh_models()
