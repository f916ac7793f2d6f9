"""Export shapes: what TRL's trainers read, full trajectories, and the Markdown report."""

from __future__ import annotations

from sleuth.store.export import (
    dpo_records,
    kto_records,
    preference_pairs,
    run_records,
    session_markdown,
    sft_records,
)
from tests.helpers import EVIDENCE, add_run_with_answer, ask, writer_messages


def test_sft_takes_only_answers_rated_well(store):
    _, _, (good, bad, starred, middling) = ask(
        store, "Capital?", "Paris [1].", "Lyon.", "P [1].", "?"
    )
    store.rate(good, thumb=1)
    store.rate(bad, thumb=-1)
    store.rate(starred, stars=5)
    store.rate(middling, stars=3)
    records = list(sft_records(store))
    assert len(records) == 2
    for record in records:
        assert set(record) == {"prompt", "completion"}
        assert record["prompt"] == writer_messages("Capital?")
        assert record["completion"][0]["role"] == "assistant"
    assert [r["completion"][0]["content"] for r in records] == ["Paris [1].", "P [1]."]


def test_dpo_pairs_come_from_comparisons_and_rating_gaps_on_one_prompt(store):
    _, turn_id, (a, b, c) = ask(store, "Capital?", "Paris [1].", "Lyon.", "Marseille.")
    store.compare(a, b)
    store.rate(a, stars=5)
    store.rate(c, stars=1)
    store.rate(b, stars=2)
    # An answer to the same turn written from different evidence cannot pair with these.
    other = add_run_with_answer(store, turn_id, "Nice.", question="Capital?", evidence=EVIDENCE[:1])
    store.rate(other, stars=1)
    records = list(dpo_records(store))
    pairs = {(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in records}
    # comparison a>b, then rating gaps a>c and b>c; a>b is not repeated from the ratings.
    assert pairs == {("Paris [1].", "Lyon."), ("Paris [1].", "Marseille."), ("Lyon.", "Marseille.")}
    for record in records:
        assert set(record) == {"prompt", "chosen", "rejected"}
        assert record["prompt"] == writer_messages("Capital?")
    origins = sorted(p.origin for p in preference_pairs(store)[0])
    assert origins == ["comparison", "rating", "rating"]


def test_comparison_across_different_prompts_is_counted_not_paired(store):
    _, turn_id, (a,) = ask(store, "Capital?", "Paris [1].")
    b = add_run_with_answer(store, turn_id, "Nice.", question="Capital?", evidence=EVIDENCE[:1])
    store.compare(a, b)
    pairs, skipped = preference_pairs(store)
    assert pairs == [] and skipped == 1


def test_ties_are_not_preferences(store):
    _, _, (a, b) = ask(store, "Capital?", "Paris [1].", "Paris.")
    store.compare(a, b, tie=True)
    assert list(dpo_records(store)) == []


def test_kto_labels_thumbs_and_clear_star_ratings(store):
    _, _, (a, b, c, d) = ask(store, "Capital?", "up", "down", "five", "three")
    store.rate(a, thumb=1)
    store.rate(b, thumb=-1)
    store.rate(c, stars=5)
    store.rate(d, stars=3)
    records = list(kto_records(store))
    assert [(r["completion"][0]["content"], r["label"]) for r in records] == [
        ("up", True),
        ("down", False),
        ("five", True),
    ]
    assert all(set(r) == {"prompt", "completion", "label"} for r in records)


def test_runs_export_is_the_full_trajectory(store):
    _, _, (a, b) = ask(store, "Capital?", "Paris [1].", "Lyon.")
    store.rate(a, thumb=1, comment="right")
    store.compare(a, b)
    records = list(run_records(store))
    assert len(records) == 2
    first = records[0]
    assert first["run"]["question"] == "Capital?"
    assert first["steps"][0]["kind"] == "plan_ready"
    assert [e["number"] for e in first["evidence"]] == [1, 2]
    assert first["answer"]["text"] == "Paris [1]."
    assert first["rating"]["comment"] == "right"
    assert first["comparisons"][0]["winner_id"] == a


def test_markdown_report_has_questions_answers_ratings_and_sources(store):
    session_id, _, (a,) = ask(store, "Capital?", "Paris [1].")
    store.rate(a, thumb=1, stars=5)
    report = session_markdown(store, session_id)
    assert "## Capital?" in report
    assert "Paris [1]." in report
    assert "rated thumbs up, 5/5 stars" in report
    assert "1. [Paris](https://example.org/paris)" in report
    assert "2. [Rivers](/notes/rivers.md)" in report
