"""Registry rows: base model files and the LoRA adapters trained over them, one active per base.

These are the rows only; the rules (an adapter fits only the base it was trained on, its file
must be present and readable) live in the registry service, `sleuth.agent.models.registry`.
"""

from __future__ import annotations

from typing import Any

from .database import Database
from .rows import Model


class Registry:
    def __init__(self, db: Database):
        self.db = db

    def register(
        self,
        *,
        name: str,
        base_path: str,
        base_fingerprint: str,
        adapter_path: str | None = None,
        parent_id: int | None = None,
        training_run_id: int | None = None,
        evaluation: dict[str, Any] | None = None,
        reward_path: str | None = None,
    ) -> int:
        """Add a base model, an adapter or (with `reward_path`) a reward model to the
        registry (inactive); returns its id."""
        with self.db.write():
            return self.db.insert(
                "models",
                {
                    "name": name,
                    "base_path": base_path,
                    "base_fingerprint": base_fingerprint,
                    "adapter_path": adapter_path,
                    "parent_id": parent_id,
                    "training_run_id": training_run_id,
                    "active": 0,
                    "created_at": self.db.clock(),
                    "evaluation": evaluation,
                    "kind": "reward" if reward_path else "model",
                    "reward_path": reward_path,
                },
            )

    def base(self, base_fingerprint: str) -> Model | None:
        """The row of a base model file (no adapter), if it was registered."""
        return self.db.first(
            Model,
            "SELECT * FROM models WHERE base_fingerprint = ? AND adapter_path IS NULL "
            "AND kind = 'model' ORDER BY id LIMIT 1",
            [base_fingerprint],
        )

    def model(self, model_id: int) -> Model:
        return self.db.get(Model, "models", model_id, "model")

    def models(self, base_fingerprint: str | None = None) -> list[Model]:
        """Registry rows, oldest first (optionally only those over one base file)."""
        if base_fingerprint is None:
            return self.db.query(Model, "SELECT * FROM models ORDER BY id")
        return self.db.query(
            Model, "SELECT * FROM models WHERE base_fingerprint = ? ORDER BY id", [base_fingerprint]
        )

    def active(self, base_fingerprint: str, kind: str = "model") -> Model | None:
        """The active row of a kind ("model": base or adapter; "reward") for a base file, if
        one was activated."""
        return self.db.first(
            Model,
            "SELECT * FROM models WHERE base_fingerprint = ? AND kind = ? AND active = 1",
            [base_fingerprint, kind],
        )

    def activate(self, model_id: int) -> Model:
        """Make a row the active one of its kind for its base file (one row changes flag)."""
        row = self.model(model_id)
        with self.db.write():
            self.db.execute(
                "UPDATE models SET active = (id = ?) WHERE base_fingerprint = ? AND kind = ?",
                [model_id, row.base_fingerprint, row.kind],
            )
        return self.model(model_id)

    def deactivate(self, base_fingerprint: str, kind: str) -> None:
        """Make no row of a kind active for a base file (no reward model: the plain reader)."""
        with self.db.write():
            self.db.execute(
                "UPDATE models SET active = 0 WHERE base_fingerprint = ? AND kind = ?",
                [base_fingerprint, kind],
            )

    def set_evaluation(self, model_id: int, evaluation: dict[str, Any]) -> None:
        """Attach held-out evaluation results to a row."""
        with self.db.write():
            self.db.utils["models"].update(model_id, {"evaluation": evaluation})
