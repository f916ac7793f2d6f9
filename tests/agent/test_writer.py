"""Verification of answers: citation repair, dangling citations, support scores."""

from __future__ import annotations

from sleuth.agent.research.evidence import evidence_block
from sleuth.agent.research.verify import verify
from sleuth.agent.research.writer import writer_messages

EVIDENCE = [
    {
        "uri": "https://a/lyon",
        "title": "Lyon",
        "text": "Lyon was founded by Lucius Munatius Plancus in 43 BC.",
    },
    {
        "uri": "https://a/rhone",
        "title": "Rhône",
        "text": "The Rhône flows through Lyon to the Mediterranean.",
    },
]


def test_dangling_citations_are_removed_and_counted():
    checked = verify(
        "Plancus founded Lyon in 43 BC [1][7]. The Rhône reaches the sea [2, 9].", EVIDENCE
    )
    assert checked.text == "Plancus founded Lyon in 43 BC [1]. The Rhône reaches the sea [2]."
    assert checked.verification["dangling_removed"] == 2
    assert checked.verification["citations"] == 2


def test_a_year_in_brackets_is_not_a_citation():
    checked = verify("The tower opened in [1889] and still stands [1].", EVIDENCE)
    assert checked.text == "The tower opened in [1889] and still stands [1]."
    assert checked.verification["dangling_removed"] == 0


def test_odd_citation_shapes_are_repaired():
    checked = verify("Plancus founded Lyon [Source 1]. It lies on the Rhône 【2】.", EVIDENCE)
    assert checked.text == "Plancus founded Lyon [1]. It lies on the Rhône [2]."
    assert checked.verification["repaired"] == 2


def test_each_cited_sentence_gets_a_support_score_and_weak_ones_are_flagged():
    checked = verify(
        "Lucius Munatius Plancus founded Lyon in 43 BC [1]. Lyon hosts the Olympic Games [2]. "
        "It is a lovely place.",
        EVIDENCE,
    )
    first, second = checked.citations
    assert first["numbers"] == [1] and first["supported"] and first["support"] > 0.8
    assert second["numbers"] == [2] and not second["supported"]
    assert checked.verification["unsupported"] == [1]
    assert checked.verification["uncited_sentences"] == 1
    assert checked.verification["sentences"] == 3


def test_a_citation_only_counts_the_evidence_it_names():
    checked = verify("The Rhône flows through Lyon to the Mediterranean [1].", EVIDENCE)
    assert not checked.citations[0]["supported"]  # true, but not what [1] says
    assert verify("The Rhône flows through Lyon to the Mediterranean [1, 2].", EVIDENCE).citations[
        0
    ]["supported"]


def test_writer_messages_number_the_evidence():
    messages = writer_messages("Who founded Lyon?", EVIDENCE)
    assert messages[0]["role"] == "system" and "[2]" in messages[0]["content"]
    assert "Question: Who founded Lyon?" in messages[-1]["content"]
    assert "[1] Lyon\nLyon was founded" in messages[-1]["content"]
    assert "[2] Rhône\n" in messages[-1]["content"]
    assert evidence_block([]) == "(no evidence was found)"


def test_a_yes_or_no_question_is_told_to_say_yes_or_no_first():
    asked = writer_messages("Did Plancus found Lyon?", EVIDENCE)[-1]["content"]
    assert "first word of your answer is Yes or No" in asked
    assert asked.index("Question:") < asked.index("Yes or No") < asked.index("Answer first")
    which = writer_messages("Who founded Lyon?", EVIDENCE)[-1]["content"]
    assert "Yes or No" not in which and "\n\nAnswer first" in which


def test_a_worked_example_comes_before_the_question_and_can_be_left_out(sleuth_home):
    messages = writer_messages("Who founded Lyon?", EVIDENCE)
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[2]["content"].startswith("The Rhône [2].")  # the answer comes first
    # A prompt of the user's own replaces the shipped one: here, an empty example.
    (sleuth_home / "config" / "prompts").mkdir(parents=True)
    (sleuth_home / "config" / "prompts" / "write_example.txt").write_text("")
    assert [m["role"] for m in writer_messages("Who?", EVIDENCE)] == ["system", "user"]
