"""Training policy over feedback: which ratings are good or bad, how pairs are built, and the
records in the JSONL shapes TRL's trainers read."""

from __future__ import annotations

from sleuth.store.rows import RatedAnswer
from sleuth.train.feedback import (
    dpo_records,
    is_corrected,
    kto_records,
    preference_pairs,
    sft_records,
    wanted,
)
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


def test_a_correction_becomes_an_sft_example_and_a_dpo_pair_over_the_original(store):
    _, _, (wrong,) = ask(store, "Capital?", "Lyon is the capital [1].")
    store.feedback.rate(wrong, correction="Paris is the capital of France [1].")
    (sft,) = list(sft_records(store))
    assert sft["prompt"] == writer_messages("Capital?")
    assert sft["completion"] == [
        {"role": "assistant", "content": "Paris is the capital of France [1]."}
    ]
    (dpo,) = list(dpo_records(store))
    assert dpo["prompt"] == writer_messages("Capital?")
    assert dpo["chosen"][0]["content"] == "Paris is the capital of France [1]."
    assert dpo["rejected"][0]["content"] == "Lyon is the capital [1]."
    (pair,), _ = preference_pairs(store)
    assert pair.origin == "correction"
    kto = [(r["completion"][0]["content"], r["label"]) for r in kto_records(store)]
    assert kto == [
        ("Lyon is the capital [1].", False),  # corrected and not rated: undesirable
        ("Paris is the capital of France [1].", True),
    ]
    # A "correction" that repeats the answer says nothing: no example, no pair.
    _, _, (same,) = ask(store, "River?", "The Seine [2].")
    store.feedback.rate(same, thumb=1, correction="The Seine [2]. ")
    assert len(list(dpo_records(store))) == 1 and len(list(sft_records(store))) == 2


async def test_planner_calls_of_one_prompt_pair_up_by_credit(store):
    from sleuth.train.feedback import call_examples, call_pairs
    from sleuth.train.trajectories import trajectories
    from tests.train.test_trajectories import hand_made_run, plan_of

    _, good = await hand_made_run(store, plan_output=plan_of("Maren Holt"))
    _, bad = await hand_made_run(store, plan_output=plan_of("Nell Farrow Salt and Ember"))
    _, unjudged = await hand_made_run(store, plan_output=plan_of("Salt and Ember film"))
    store.feedback.rate(good, thumb=1)
    store.feedback.rate(bad, thumb=-1)
    runs = list(trajectories(store))
    (pair,) = call_pairs(runs)
    assert (pair[0].text, pair[1].text) == (
        plan_of("Maren Holt"),
        plan_of("Nell Farrow Salt and Ember"),
    )
    assert (pair[0].credit, pair[1].credit) == (1.0, 0.0)
    labels = {(e.purpose, e.text): e.label for e in call_examples(runs)}
    assert labels == {
        ("plan", plan_of("Maren Holt")): True,
        ("plan", plan_of("Nell Farrow Salt and Ember")): False,
    }  # the unrated run is judged by the hard checks alone: not a plan's verdict
    planner_dpo = [r for r in dpo_records(store) if r["prompt"] == pair[0].messages]
    assert len(planner_dpo) == 1


def _read(store, short: str, passages: str) -> int:
    """A reader's answer: its prompt holds `passages`, and the model wrote `short`."""
    question = "Which town is the mill in?"
    turn_id = store.runs.add_turn(store.runs.new_session(question), question)
    run_id = store.runs.start_run(turn_id, {})
    store.runs.add_evidence(run_id, EVIDENCE)
    messages = [
        {"role": "system", "content": "Reply with the short answer only."},
        {"role": "user", "content": f"Evidence:\n{passages}\n\nQuestion: {question}"},
    ]
    answer_id = store.runs.add_answer(
        run_id,
        text=f"{short} [1].\n\n> a quoted sentence [1]",
        short_answer=short,
        messages=messages,
        sampling={"temperature": 0.0, "max_tokens": 24, "seed": 0},
        citations=[],
        verification={"answer": "read"},
    )
    store.runs.finish_run(run_id, "done")
    return answer_id


def test_a_correction_teaches_the_reader_only_what_it_could_have_read(store):
    passages = "[1] Old Mill\nThe Old Mill stands by the river in Harwick, near Dunmore."
    readable = _read(store, "Dunmore", passages)
    store.feedback.rate(readable, thumb=-1, correction="Harwick [1].")
    missed = _read(store, "Dunmore", passages)
    store.feedback.rate(missed, thumb=-1, correction="Kelbridge")  # in no passage it read
    (sft,) = list(sft_records(store))
    # The reader's target is the answer it could have written, not the user's sentence.
    assert sft["completion"][0]["content"] == "Harwick"
    ((chosen, rejected),) = [(p.chosen.text, p.rejected.text) for p in preference_pairs(store)[0]]
    assert (chosen, rejected) == ("Harwick", "Dunmore")
    kto = [(r["completion"][0]["content"], r["label"]) for r in kto_records(store)]
    assert ("Kelbridge", True) not in kto and ("Harwick", True) in kto


def test_a_readers_correction_is_a_span_of_what_it_read_taken_whole():
    """The reader can only copy words that stand together in its passages: a correction that
    is such a span is its target whole (a date with "O.S." in it is not cut there as if it
    were a sentence); one whose words are all there but not together it could never write."""
    passages = "[1] Anna Vell\nAnna Vell (born [O.S. 3 May] 1801) was a painter from Harwick."

    def answer(correction: str, question: str = "When was she born?") -> RatedAnswer:
        messages = [{"role": "user", "content": f"Evidence:\n{passages}\n\nQuestion: {question}"}]
        return RatedAnswer(1, 1, 1, messages, "1850", thumb=-1, correction=correction, reads=True)

    assert wanted(answer("[O.S. 3 May] 1801")) == "[O.S. 3 May] 1801"
    assert is_corrected(answer("[O.S. 3 May] 1801"))
    assert wanted(answer("It was 1801 [1].")) == "It was 1801"
    assert not is_corrected(answer("It was 1801 [1]."))  # not a span the reader could write
    assert not is_corrected(answer("Harwick painter"))  # its words, not together
    # ... and of the kind the question asks: a year has a digit in it.
    assert not is_corrected(answer("a painter from Harwick."))
    assert is_corrected(answer("a painter from Harwick.", "What was she?"))
    assert wanted(answer("a painter from Harwick.", "What was she?")) == "a painter from Harwick"
    # The question is no passage: a name only it holds the reader cannot copy.
    assert not is_corrected(answer("Bram Toller", "What did Bram Toller paint?"))
    # A comparison is answered with one of the two names it offers, and nothing else.
    either = "Who was born first, Anna Vell or Bram Toller?"
    assert is_corrected(answer("Anna Vell", either))
    assert not is_corrected(answer("a painter from Harwick", either))
