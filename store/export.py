"""The `runs` export: everything recorded about each research run, one object per run."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from typing import Any

from .settings import redact_settings
from .store import Store


def run_records(store: Store) -> Iterator[dict[str, Any]]:
    """Full trajectories: the run, its steps, evidence, answer and the feedback on it."""
    for run in store.runs.all_runs():
        answer = store.runs.answer_for_run(run.id)
        feedback: dict[str, Any] = {}
        if answer is not None:
            rating = store.feedback.rating(answer.id)
            feedback = {
                "rating": asdict(rating) if rating else None,
                "comparisons": [asdict(c) for c in store.feedback.comparisons_for(answer.id)],
            }
        yield {
            "run": {**asdict(run), "settings": redact_settings(run.settings)},
            "steps": [asdict(s) for s in store.runs.steps(run.id)],
            "evidence": [asdict(e) for e in store.runs.evidence(run.id)],
            "answer": asdict(answer) if answer else None,
            **feedback,
        }
