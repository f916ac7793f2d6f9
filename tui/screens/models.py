"""Models: the registry for the current base model. Activate an adapter or roll back; the
running model switches without restarting the app."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from sleuth.agent.models.registry import ModelRegistry
from sleuth.train.verdict import Evaluation, details, summary

from ..cli.models import reward_summary
from ..render import literal
from ..widgets.status_bar import StatusBar


class ModelsScreen(Screen):
    BINDINGS = [
        Binding("a,enter", "activate", "Activate", id="models.activate"),
        Binding("r", "rollback", "Roll back", id="models.rollback"),
        Binding("R", "rollback_reward", "Roll back reward model", id="models.rollback_reward"),
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
        if info is None or info.base_path is None or info.base_fingerprint is None:
            self.query_one("#model-evaluation", Static).update(
                "The model is not loaded (or runs on a server): nothing to manage here yet."
            )
            return
        store = self.app.store
        registry = ModelRegistry(store)
        current = registry.current(Path(info.base_path), info.base_fingerprint)
        reward = registry.active_reward(info.base_fingerprint)
        for row in store.registry.models(info.base_fingerprint):
            table.add_row(
                "●" if row.id in (current.id, reward.id if reward else None) else "",
                str(row.id),
                literal(row.name + (" (reward model)" if row.kind == "reward" else "")),
                str(row.parent_id or ("" if row.kind == "reward" else "base")),
                str(row.training_run_id or ""),
                reward_summary(row.evaluation).strip()
                if row.kind == "reward"
                else summary(Evaluation.from_dict(row.evaluation)),
                key=str(row.id),
            )

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        row = self.app.store.registry.model(int(event.row_key.value))
        evaluation = Evaluation.from_dict(row.evaluation)
        text = Text.assemble(
            literal(row.name, "bold"), "  ", literal(row.adapter_path or row.base_path)
        )
        for line in details(evaluation):
            text.append("\n" + line)
        if evaluation is not None and evaluation.n:
            better = evaluation.improved
            text.append(
                "\n" + ("better" if better else "not better") + " than its parent",
                style="green" if better else "yellow",
            )
        self.query_one("#model-evaluation", Static).update(text)

    def action_activate(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count == 0:
            return
        model_id = int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        self.app.activate_model(model_id)
        self.refresh_models()

    def action_rollback(self) -> None:
        self.app.rollback_model()
        self.refresh_models()

    def action_rollback_reward(self) -> None:
        self.app.rollback_model("reward")
        self.refresh_models()
