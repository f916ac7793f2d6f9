"""Chunking, sentences and the overlap scores used for evidence and verification."""

from __future__ import annotations

import pytest

from sleuth.agent.text import (
    chunk_text,
    content_words,
    is_polar,
    near_duplicate,
    sentences,
    support,
)


def test_chunks_cover_the_text_with_overlap_and_true_offsets():
    text = " ".join(f"Sentence number {i} talks about rivers and towns." for i in range(200))
    chunks = chunk_text(text, size=400, overlap=80)
    assert len(chunks) > 10
    for chunk in chunks:
        assert text[chunk.start : chunk.end].strip() == chunk.text
        assert len(chunk.text) <= 400
    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert current.start < previous.end  # they overlap
        assert previous.end - current.start <= 120
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    assert all(c.text.endswith(".") for c in chunks[:-1])  # cut at sentence ends


def test_short_text_is_one_chunk_and_empty_text_none():
    assert [c.text for c in chunk_text("  Just this.  ")] == ["Just this."]
    assert chunk_text("   ") == []
    with pytest.raises(ValueError):
        chunk_text("x", size=10, overlap=10)


def test_sentences_keep_their_citations():
    text = (
        "Lyon was founded in 43 BC [1]. Its founder was Plancus [2][3]. Rivers meet there."
        "\n\n- A list item"
    )
    assert sentences(text) == [
        "Lyon was founded in 43 BC [1].",
        "Its founder was Plancus [2][3].",
        "Rivers meet there.",
        "- A list item",
    ]


def test_support_is_the_share_of_claim_words_in_the_evidence():
    evidence = "Lyon was founded by Lucius Munatius Plancus in 43 BC."
    assert support("Plancus founded Lyon [1].", evidence) == 1.0
    assert support("Plancus built Lyon [1].", evidence) == pytest.approx(2 / 3)
    assert support("Lucius Munatius Plancus founded Lyon in 43 BC [1].", evidence) > 0.8
    assert support("The Eiffel Tower is in Paris [1].", evidence) == 0.0
    assert support("[1].", evidence) == 1.0


def test_content_words_drop_stopwords_and_fold_plurals():
    assert content_words("The rivers of the cities") == {"river", "citie"}


def test_near_duplicates():
    a = "The Rhône rises in the Swiss Alps and flows through Lake Geneva to Lyon."
    assert near_duplicate(a, a + " ")
    assert near_duplicate(
        a, "The Rhône rises in the Swiss Alps, flows through Lake Geneva to Lyon!"
    )
    assert not near_duplicate(a, "The Eiffel Tower was completed in 1889.")


def test_a_question_that_asks_yes_or_no_is_told_from_one_that_asks_which():
    assert is_polar("Were Tomas Arvid and Lena Voss of the same nationality?")
    assert is_polar("are both bands from the United States ?")
    assert is_polar("Is Lyon older than Paris or not?")
    assert not is_polar("Is Lyon or Paris older?")  # asks which
    assert not is_polar("Who is older, Ada Finch or Bruno Hale?")
    assert not is_polar("What river flows through Lyon?")
    assert not is_polar("Island of Lyon?")  # "is" must be the whole first word
    assert not is_polar("Can you find out who founded Lyon?")  # a request, put as a question
    assert not is_polar("Does anyone know when Lyon was founded?")
    assert is_polar("Can Lyon be reached by river?")
    assert not is_polar("")
