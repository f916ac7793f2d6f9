"""Training data from the store: what each algorithm gets, the held-out split, tokenisation."""

from __future__ import annotations

import pytest
import torch

from sleuth.agent.models.chat_format import chat_formatter
from sleuth.train.datasets import collate, encode, is_heldout, length_groups, load_feedback
from tests.helpers import ask, writer_messages

QUESTIONS = [f"Question number {i} about rivers and cities?" for i in range(40)]


def test_the_split_is_stable_and_keeps_a_question_on_one_side():
    flags = [is_heldout(writer_messages(q)) for q in QUESTIONS]
    assert flags == [is_heldout(writer_messages(q)) for q in QUESTIONS]  # same every time
    assert 2 <= sum(flags) <= 16  # about 20% of 40
    # The split follows the question, not the evidence shown with it.
    q = QUESTIONS[0]
    assert is_heldout(writer_messages(q)) == is_heldout(writer_messages(q, evidence=[]))
    assert is_heldout(writer_messages(q)) == is_heldout(writer_messages("  " + q.upper()))


def test_feedback_goes_to_the_right_algorithm_and_split(store):
    for q in QUESTIONS[:20]:
        _, _, (good, bad) = ask(store, q, "Good [1].", "Bad.")
        store.feedback.rate(good, thumb=1)
        store.feedback.rate(bad, stars=1)
        store.feedback.compare(good, bad)
    feedback = load_feedback(store)
    held = sum(is_heldout(writer_messages(q)) for q in QUESTIONS[:20])
    assert len(feedback.sft) == 20 - held and feedback.heldout_counts["sft"] == held
    assert len(feedback.dpo) == 20 - held
    assert len(feedback.kto) == 2 * (20 - held)
    assert len(feedback.prompts) == 20 - held and len(feedback.heldout_prompts) == held
    assert all(len(p.answer_ids) == 2 and len(p.evidence) == 2 for p in feedback.prompts)
    assert feedback.shortfall("sft") is None


def test_a_prompt_takes_its_reference_from_a_correction_else_an_answer_rated_well(store):
    _, _, (right, other) = ask(store, QUESTIONS[0], "Paris is the capital [1].", "Lyon [2].")
    store.feedback.rate(right, thumb=1)
    _, _, (wrong,) = ask(store, QUESTIONS[1], "Nice [1].")
    store.feedback.rate(wrong, thumb=-1, correction="Paris [2].")
    _, _, (unrated,) = ask(store, QUESTIONS[2], "Lyon [1].")
    feedback = load_feedback(store, fraction=0.0)
    references = {p.answer_ids[0]: p.reference for p in feedback.prompts}
    assert references == {right: "Paris is the capital.", wrong: "Paris.", unrated: None}


def test_the_same_lesson_given_twice_is_one_example(store):
    # Asked, regenerated, asked again: the same answers rated alike and corrected alike.
    _, _, (first, again) = ask(store, QUESTIONS[3], "Paris [1].", "Paris [1].")
    _, _, wrong = ask(store, QUESTIONS[3], "Lyon [2].", "Lyon [2].", "Nice [1].")
    for good in (first, again):
        store.feedback.rate(good, thumb=1)
    for bad in wrong:
        store.feedback.rate(bad, thumb=-1, correction="Paris [1].")
    feedback = load_feedback(store, fraction=0.0)
    assert [a.text for a in feedback.sft] == ["Paris [1]."]
    assert sorted((chosen.text, rejected.text) for chosen, rejected in feedback.dpo) == [
        ("Paris [1].", "Lyon [2]."),
        ("Paris [1].", "Nice [1]."),
    ]
    assert sorted((a.text, a.thumb > 0) for a in feedback.kto) == [
        ("Lyon [2].", False),
        ("Nice [1].", False),
        ("Paris [1].", True),
    ]


def test_too_little_data_says_how_much_exists_and_is_needed(store):
    _, _, (a,) = ask(store, QUESTIONS[0], "Good [1].")
    store.feedback.rate(a, thumb=1)
    message = load_feedback(store).shortfall("dpo")
    assert message.startswith("DPO needs at least 4 preference pairs") and "there are 0" in message
    for q in QUESTIONS[1:6]:
        _, _, (good,) = ask(store, q, "Good [1].")
        store.feedback.rate(good, thumb=1)
    assert "both good and bad" in load_feedback(store).shortfall("kto")


def test_encoding_masks_exactly_the_answer_and_its_end_of_turn(tiny_hf):
    tokenizer = tiny_hf.tokenizer
    chat = chat_formatter(
        tiny_hf.chat_template, "llama", bos=tokenizer.bos_token, eos=tokenizer.eos_token
    )
    messages = writer_messages("Who founded Lyon?")
    encoded = encode(tokenizer, chat, messages, "Plancus [1].")
    completion = tokenizer.decode(encoded.ids[encoded.completion_start :])
    assert completion == "Plancus [1].<|im_end|>\n"
    assert tokenizer.decode(encoded.ids[: encoded.completion_start]).endswith(
        "<|im_start|>assistant\n"
    )
    short = encode(tokenizer, chat, messages, "No.")
    batch = collate([encoded, short], pad_id=0)
    assert batch["input_ids"].shape == (2, len(encoded))
    assert torch.equal(batch["targets"], batch["input_ids"][:, 1:])
    # mask[t] is 1 where position t predicts a completion token
    assert int(batch["mask"][0].sum()) == len(encoded) - encoded.completion_start
    assert int(batch["mask"][1].sum()) == len(short) - short.completion_start
    assert batch["mask"][1, len(short) - 1 :].sum() == 0  # padding is never a target


@pytest.mark.parametrize("answer", ["", "A longer answer with [2] in it."])
def test_completion_text_follows_the_prompt(tiny_hf, answer):
    tokenizer = tiny_hf.tokenizer
    chat = chat_formatter(
        tiny_hf.chat_template, "llama", bos=tokenizer.bos_token, eos=tokenizer.eos_token
    )
    assert chat.completion(writer_messages("Q?"), answer) == answer + "<|im_end|>\n"


def test_length_groups_keep_padding_within_the_slack():
    lengths = [1800, 300, 320, 1750, 310, 900]
    groups = length_groups(lengths)
    assert groups == [[1, 4, 2], [5], [3, 0]]
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    for group in groups:
        padded = max(lengths[i] for i in group) * len(group)
        assert padded <= 1.25 * sum(lengths[i] for i in group)
    assert length_groups([]) == []
    assert length_groups([5, 5, 5]) == [[0, 1, 2]]
    assert length_groups([10, 100], slack=100.0) == [[0, 1]]
