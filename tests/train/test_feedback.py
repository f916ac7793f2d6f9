"""Training policy over feedback: which ratings are good or bad, how pairs are built, and the
records in the JSONL shapes TRL's trainers read."""

from __future__ import annotations

from sleuth.train.feedback import dpo_records, kto_records, preference_pairs, sft_records
from tests.helpers import EVIDENCE, add_run_with_answer, ask, writer_messages


def test_sft_takes_only_answers_rated_well(store):
    _, _, (good, bad, starred, middling) = ask(
        store, "Capital?", "Paris [1].", "Lyon.", "P [1].", "?"
    )
    store.feedback.rate(good, thumb=1)
    store.feedback.rate(bad, thumb=-1)
    store.feedback.rate(starred, stars=5)
    store.feedback.rate(middling, stars=3)
    records = list(sft_records(store))
    assert len(records) == 2
    for record in records:
        assert set(record) == {"prompt", "completion"}
        assert record["prompt"] == writer_messages("Capital?")
        assert record["completion"][0]["role"] == "assistant"
    assert [r["completion"][0]["content"] for r in records] == ["Paris [1].", "P [1]."]


def test_dpo_pairs_come_from_comparisons_and_rating_gaps_on_one_prompt(store):
    _, turn_id, (a, b, c) = ask(store, "Capital?", "Paris [1].", "Lyon.", "Marseille.")
    store.feedback.compare(a, b)
    store.feedback.rate(a, stars=5)
    store.feedback.rate(c, stars=1)
    store.feedback.rate(b, stars=2)
    # An answer to the same turn written from different evidence cannot pair with these.
    other = add_run_with_answer(store, turn_id, "Nice.", question="Capital?", evidence=EVIDENCE[:1])
    store.feedback.rate(other, stars=1)
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
    store.feedback.compare(a, b)
    pairs, skipped = preference_pairs(store)
    assert pairs == [] and skipped == 1


def test_ties_are_not_preferences(store):
    _, _, (a, b) = ask(store, "Capital?", "Paris [1].", "Paris.")
    store.feedback.compare(a, b, tie=True)
    assert list(dpo_records(store)) == []


def test_kto_labels_thumbs_and_clear_star_ratings(store):
    _, _, (a, b, c, d) = ask(store, "Capital?", "up", "down", "five", "three")
    store.feedback.rate(a, thumb=1)
    store.feedback.rate(b, thumb=-1)
    store.feedback.rate(c, stars=5)
    store.feedback.rate(d, stars=3)
    records = list(kto_records(store))
    assert [(r["completion"][0]["content"], r["label"]) for r in records] == [
        ("up", True),
        ("down", False),
        ("five", True),
    ]
    assert all(set(r) == {"prompt", "completion", "label"} for r in records)
