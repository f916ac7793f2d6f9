"""The model registry service: the one place that decides which model runs.

Base model files and the LoRA adapters trained over them are rows in the store
(`store.registry`); this service holds the rules the command line, the app and the trainer
share: an adapter runs only over the base it was trained on (same fingerprint), its file must
be present and a readable adapter GGUF, activating is one row, and rolling back makes the
active adapter's parent active again. Loading a model never writes here.
"""

from __future__ import annotations

from pathlib import Path

from sleuth.agent.errors import AgentError, ModelError
from sleuth.store import Store
from sleuth.store.rows import Model

from .files import check_adapter, check_complete, fingerprint


class RegistryError(AgentError):
    """An adapter that cannot be activated (another base, a missing or corrupt file)."""


class ModelRegistry:
    def __init__(self, store: Store):
        self.store = store

    def ensure_base(self, base_path: Path, base_fingerprint: str | None = None) -> Model:
        """The row of a base model file, registered the first time it is needed (answers are
        attributed to it; adapters name it as their parent)."""
        fp = base_fingerprint or fingerprint(base_path)
        row = self.store.registry.base(fp)
        if row is not None:
            return row
        check_complete(base_path)  # a truncated file never becomes a registry row
        model_id = self.store.registry.register(
            name=base_path.stem, base_path=str(base_path), base_fingerprint=fp
        )
        return self.store.registry.model(model_id)

    def active(self, base_fingerprint: str) -> Model | None:
        """The activated row for a base file (None: nothing activated, the bare base runs)."""
        return self.store.registry.active(base_fingerprint)

    def active_reward(self, base_fingerprint: str) -> Model | None:
        """The activated reward model over a base file (None: the plain reader picks)."""
        return self.store.registry.active(base_fingerprint, "reward")

    def current(self, base_path: Path, base_fingerprint: str | None = None) -> Model:
        """What runs over this base now: the active row, else the base itself."""
        fp = base_fingerprint or fingerprint(base_path)
        return self.active(fp) or self.ensure_base(base_path, fp)

    def check(self, row: Model, base_fingerprint: str) -> None:
        """Raise RegistryError unless `row` can run over the base with this fingerprint."""
        if row.base_fingerprint != base_fingerprint:
            raise RegistryError(
                f"Model {row.id} ({row.name}) was trained on {row.base_path}, not the configured "
                "base model: switch model.path back to it, or train a new adapter."
            )
        if row.kind == "reward":
            from sleuth.agent.research.picker import RewardModel, RewardModelError

            try:
                RewardModel.load(row.reward_path or "")
            except RewardModelError as exc:
                raise RegistryError(f"Model {row.id} cannot be used: {exc}") from exc
        elif row.adapter_path:
            path = Path(row.adapter_path)
            if not path.exists():
                raise RegistryError(
                    f"The adapter file {path} of model {row.id} is missing; it cannot be used."
                )
            try:
                check_adapter(path)
            except ModelError as exc:
                raise RegistryError(f"Model {row.id} cannot be used: {exc}") from exc

    def activate(self, model_id: int, base_path: Path) -> Model:
        """Make a row active over this base, after checking it fits and its file is sound."""
        fp = fingerprint(base_path)
        row = self.store.registry.model(model_id)
        self.check(row, fp)
        return self.store.registry.activate(row.id)

    def rollback(self, base_path: Path, kind: str = "model") -> Model | None:
        """Make the active adapter's parent active again (its base when it has none); returns
        the row now active, or None when the base was already active. For kind "reward": the
        active reward model's parent, or none (the plain reader: then the base's row is
        returned), None when no reward model was active."""
        fp = fingerprint(base_path)
        if kind == "reward":
            active = self.active_reward(fp)
            if active is None:
                return None
            if active.parent_id is None:
                self.store.registry.deactivate(fp, "reward")
                return self.ensure_base(base_path, fp)
            parent = self.store.registry.model(active.parent_id)
            self.check(parent, fp)
            return self.store.registry.activate(parent.id)
        active = self.active(fp)
        if active is None or (not active.adapter_path and active.parent_id is None):
            return None
        parent_id = active.parent_id or self.ensure_base(base_path, fp).id
        parent = self.store.registry.model(parent_id)
        self.check(parent, fp)
        return self.store.registry.activate(parent.id)

    def register_adapter(
        self,
        *,
        name: str,
        base_path: Path,
        adapter_path: Path,
        parent_id: int,
        training_run_id: int,
        evaluation: dict | None = None,
    ) -> Model:
        """Record a newly trained adapter (inactive until the user activates it)."""
        model_id = self.store.registry.register(
            name=name,
            base_path=str(base_path),
            base_fingerprint=fingerprint(base_path),
            adapter_path=str(adapter_path),
            parent_id=parent_id,
            training_run_id=training_run_id,
            evaluation=evaluation,
        )
        return self.store.registry.model(model_id)

    def register_reward(
        self,
        *,
        name: str,
        base_path: Path,
        reward_path: Path,
        parent_id: int | None,
        evaluation: dict | None = None,
    ) -> Model:
        """Record a newly fitted reward model (inactive until the user activates it);
        `parent_id`: the reward model active when it was fitted, which rolling it back
        makes active again (None: rolling back leaves the reader to pick alone)."""
        model_id = self.store.registry.register(
            name=name,
            base_path=str(base_path),
            base_fingerprint=fingerprint(base_path),
            reward_path=str(reward_path),
            parent_id=parent_id,
            evaluation=evaluation,
        )
        return self.store.registry.model(model_id)
