"""Training runs (which algorithm, settings, process, checkpoint, result) and their metrics."""

from __future__ import annotations

from typing import Any

from .database import Database, process_alive
from .rows import TrainingMetric, TrainingRun


class Training:
    def __init__(self, db: Database):
        self.db = db

    def start(
        self, algo: str, config: dict[str, Any], parent_model_id: int | None, pid: int | None = None
    ) -> int:
        """Record the start of a training run; returns its id."""
        with self.db.write():
            return self.db.insert(
                "training_runs",
                {
                    "algo": algo,
                    "config": config,
                    "status": "running",
                    "parent_model_id": parent_model_id,
                    "started_at": self.db.clock(),
                    "pid": pid,
                },
            )

    def resume(self, training_run_id: int, pid: int) -> None:
        """Mark a stopped training run as running again in process `pid`."""
        with self.db.write():
            self.db.utils["training_runs"].update(
                training_run_id, {"status": "running", "pid": pid, "error": None, "ended_at": None}
            )

    def record_checkpoint(self, training_run_id: int, step: int, path: str) -> None:
        """Remember a training run's latest checkpoint (what --resume starts from)."""
        with self.db.write():
            self.db.utils["training_runs"].update(
                training_run_id, {"checkpoint": path, "step": step}
            )

    def log_metrics(self, training_run_id: int, step: int, metrics: dict) -> None:
        """Store one step's metrics (loss, reward, ...); a repeated step replaces the old row."""
        with self.db.write():
            self.db.utils["training_metrics"].upsert(
                {
                    "training_run_id": training_run_id,
                    "step": step,
                    "metrics": metrics,
                    "created_at": self.db.clock(),
                },
                pk=("training_run_id", "step"),
            )

    def finish(
        self,
        training_run_id: int,
        status: str,
        *,
        error: str | None = None,
        evaluation: dict[str, Any] | None = None,
        summary: dict[str, Any] | None = None,
        output_model_id: int | None = None,
    ) -> None:
        """Close a training run as done, failed or cancelled, with its results."""
        with self.db.write():
            self.db.utils["training_runs"].update(
                training_run_id,
                {
                    "status": status,
                    "error": error,
                    "evaluation": evaluation,
                    "summary": summary,
                    "output_model_id": output_model_id,
                    "ended_at": self.db.clock(),
                },
            )

    def close_abandoned(self) -> int:
        """Training runs still 'running' whose process is gone were killed: they become
        'failed', with how to resume them; returns how many."""
        abandoned = [
            run
            for run in self.runs()
            if run.status == "running" and run.pid and not process_alive(run.pid)
        ]
        for run in abandoned:
            self.finish(
                run.id,
                "failed",
                error="the training process stopped unexpectedly (killed?); "
                f"resume with `sleuth train --resume {run.id}`",
            )
        return len(abandoned)

    def run(self, training_run_id: int) -> TrainingRun:
        return self.db.get(TrainingRun, "training_runs", training_run_id, "training run")

    def runs(self) -> list[TrainingRun]:
        """Every training run, newest first."""
        return self.db.query(TrainingRun, "SELECT * FROM training_runs ORDER BY id DESC")

    def metrics(self, training_run_id: int) -> list[TrainingMetric]:
        """A training run's per-step metrics in step order."""
        return self.db.query(
            TrainingMetric,
            "SELECT * FROM training_metrics WHERE training_run_id = ? ORDER BY step",
            [training_run_id],
        )
