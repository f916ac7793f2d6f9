"""The runs export: everything recorded about each research run."""

from __future__ import annotations

from sleuth.store.export import run_records
from tests.helpers import ask


def test_runs_export_is_the_full_trajectory(store):
    _, _, (a, b) = ask(store, "Capital?", "Paris [1].", "Lyon.")
    store.feedback.rate(a, thumb=1, comment="right")
    store.feedback.compare(a, b)
    records = list(run_records(store))
    assert len(records) == 2
    first = records[0]
    assert first["run"]["question"] == "Capital?"
    assert first["steps"][0]["kind"] == "plan_ready"
    assert [e["number"] for e in first["evidence"]] == [1, 2]
    assert first["answer"]["text"] == "Paris [1]."
    assert first["rating"]["comment"] == "right"
    assert first["comparisons"][0]["winner_id"] == a
