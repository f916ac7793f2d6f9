"""The reader: what shape a short answer may take, the check it must pass, the answer built
around it, and the real model's decoding held to the evidence."""

from __future__ import annotations

import pytest

from sleuth.agent.models.llm import Sampling
from sleuth.agent.research import passages
from sleuth.agent.research.reader import (
    AnswerForm,
    alternatives,
    answer_form,
    check,
    cited_passage,
    compose,
    not_found,
    reader_messages,
    support_sentences,
)

# Made-up passages of the shape a two-step question needs: the first names the bridge.
EVIDENCE = [
    {
        "uri": "/notes/harbour.md",
        "title": "The Glass Harbour",
        "text": "The Glass Harbour is a 1961 novel by Mirela Vantosh. It is set in a port town.",
    },
    {
        "uri": "/notes/vantosh.md",
        "title": "Mirela Vantosh",
        "text": "Mirela Vantosh was a Lithuanian writer. She was born in Kaunas in 1927.",
    },
    {
        "uri": "/notes/kaunas.md",
        "title": "Kaunas",
        "text": "Kaunas is the second-largest city in Lithuania.",
    },
]
QUESTION = "In which city was the author of The Glass Harbour born?"


def test_a_span_form_lets_through_only_words_of_the_evidence_from_a_word_start():
    form = answer_form(QUESTION, EVIDENCE)
    assert form.kind == "span"
    assert form.permits(" Kau") and form.permits("Kaunas in") and form.permits("Mirela Vantosh")
    # a city is asked: a place, so no lower-case word but a joining one, and no digit
    assert form.expects == "place"
    assert not form.permits("Mirela Vantosh was") and not form.permits("Kaunas in 1927")
    assert not form.permits("aunas")  # inside a word
    assert not form.permits("Vilnius") and not form.permits("Kaunas, Lithuania")
    assert form.complete("Kaunas") and not form.complete("")
    assert form.finish("kaun") == "Kaunas"  # run on to the end of its word, as written
    assert form.finish("mirela vantosh") == "Mirela Vantosh"
    assert form.finish("Vilnius") == ""
    assert all(c.startswith("as ") for c in form.continuations("Kaun"))  # "Kaun|as in 1927"


def test_yes_or_no_and_the_alternatives_a_question_offers():
    polar = answer_form("Were Kaunas and Vilnius both capitals of Lithuania?", EVIDENCE)
    assert polar.kind == "polar" and polar.options == ("yes", "no")
    assert polar.permits("Ye") and polar.complete("yes") and not polar.permits("maybe")
    assert polar.finish("Yes") == "yes"
    choice = answer_form("Who was born first, Mirela Vantosh or Ona Kadis?", EVIDENCE)
    assert choice.kind == "choice" and choice.options == ("Mirela Vantosh", "Ona Kadis")
    assert choice.permits("ona") and not choice.complete("Ona") and choice.complete("ona kadis")
    assert alternatives("Which river is longer: the Vilnia or the Neris?") == ["Vilnia", "Neris"]
    assert alternatives("Who wrote The Glass Harbour?") == []
    # without the comma: the names on each side of "or"
    assert alternatives("Is Kaunas Castle or the Vilnius Gate further west?") == [
        "Kaunas Castle",
        "Vilnius Gate",
    ]
    assert alternatives("Who is older Mirela Vantosh or Ona Kadis?") == [
        "Mirela Vantosh",
        "Ona Kadis",
    ]
    assert alternatives("Did the band Tern Song or the band The Low Moors form first?") == [
        "Tern Song",
        "The Low Moors",
    ]
    assert alternatives("Was Vantosh 2 or Bay of Kestrel released first?") == [
        "Vantosh 2",
        "Bay of Kestrel",
    ]
    assert alternatives("Who managed and/or advised the boxer from Kaunas?") == []
    assert alternatives("What did Vantosh write or say about Kaunas?") == []  # not two names
    offered = answer_form("Who is older Mirela Vantosh or Ona Kadis?", EVIDENCE)
    assert offered.kind == "choice" and offered.options == ("Mirela Vantosh", "Ona Kadis")


def test_the_check_rejects_a_made_up_name_and_passes_a_span_of_the_cited_passage():
    form = answer_form(QUESTION, EVIDENCE)
    assert check("Kaunas", form, 2, EVIDENCE) == []
    assert check("Kaunas", form, 1, EVIDENCE)  # not in the passage it cites
    made_up = check("Vilnius", form, 2, EVIDENCE)
    assert made_up == ["the short answer 'Vilnius' is not in passage [2], which it cites"]
    assert check("", form, 2, EVIDENCE) == ["the short answer is empty"]
    polar = AnswerForm("polar", options=("yes", "no"))
    assert check("no", polar, None, EVIDENCE) == []
    assert check("Kaunas", polar, None, EVIDENCE)


def test_the_answer_starts_with_the_short_answer_and_quotes_what_supports_it():
    cited = cited_passage("Kaunas", QUESTION, EVIDENCE)
    assert cited == 2  # the sentence with "born", not the one that merely names the city
    quotes = support_sentences("Kaunas", QUESTION, EVIDENCE, cited)
    assert quotes[0] == (2, "She was born in Kaunas in 1927.")
    assert quotes[1][0] == 1  # the bridge: the novel's author
    text = compose("Kaunas", [cited], quotes, EVIDENCE)
    first, _, rest = text.partition("\n\n")
    assert first == "Kaunas [2]."
    assert rest.splitlines()[0] == "> She was born in Kaunas in 1927. — Mirela Vantosh [2]"
    assert not_found("Who founded Kaunas?") == "The sources found do not say who founded Kaunas."


def test_the_reader_prompt_asks_for_the_form_the_question_takes():
    messages = reader_messages("Was Kaunas a capital?", EVIDENCE)
    assert messages[-1]["content"].endswith("Answer yes or no.")
    assert "[2] Mirela Vantosh" in messages[-1]["content"]
    messages = reader_messages(QUESTION, EVIDENCE)
    assert messages[-1]["content"].endswith("Answer with the words of the evidence, nothing else.")


@pytest.mark.slow
def test_the_real_models_short_answer_is_a_span_of_the_evidence(real_llm):
    form = answer_form(QUESTION, EVIDENCE)
    messages = reader_messages(QUESTION, EVIDENCE)
    free = real_llm.chat(messages, Sampling(temperature=0.0, max_tokens=24))
    held = real_llm.chat(messages, Sampling(temperature=0.0, max_tokens=24), form=form)
    assert held.text.strip() and form.permits(held.text.rstrip()), (free.text, held.text)
    assert form.finish(held.text)
    for seed in range(3):  # sampled too
        sampled = real_llm.chat(
            messages, Sampling(temperature=0.9, max_tokens=24, seed=seed), form=form
        )
        assert form.permits(sampled.text.rstrip()), sampled.text


@pytest.mark.slow
def test_the_real_model_answers_a_polar_question_yes_or_no(real_llm):
    question = "Was Mirela Vantosh born in Kaunas?"
    form = answer_form(question, EVIDENCE)
    for seed in range(3):
        completion = real_llm.chat(
            reader_messages(question, EVIDENCE),
            Sampling(temperature=0.0 if not seed else 0.9, max_tokens=24, seed=seed),
            form=form,
        )
        assert form.finish(completion.text) in ("yes", "no"), completion.text


def test_a_question_that_asks_when_or_who_is_answered_with_a_date_or_a_name():
    when = answer_form("When was Mirela Vantosh born?", EVIDENCE)
    assert when.expects == "date"
    assert not when.complete("Kaunas") and when.complete("in 1927") and when.complete("1927")
    assert not when.permits("Kaunas in")  # a date holds only a date's words
    who = answer_form("Who wrote the novel set in a port town?", EVIDENCE)
    assert who.expects == "person"
    assert not who.complete("the second-largest city") and who.complete("Mirela Vantosh")
    assert not who.permits("Mirela Vantosh was") and who.permits("Mirela Vantosh")
    assert answer_form("What is Kaunas?", EVIDENCE).expects is None


def test_the_reader_reads_the_passages_that_bear_on_the_question_and_those_they_lead_to(
    monkeypatch,
):
    question = "Which river runs past the town where the maker of the Tern kayak works?"
    evidence = [
        {"uri": "/a", "title": "Tern kayak", "text": "The Tern kayak is made by Orla Pensk."},
        {"uri": "/b", "title": "Orla Pensk", "text": "Orla Pensk builds boats in Vardholm."},
        {"uri": "/c", "title": "Ilsa Moor", "text": "Ilsa Moor is a river near Kestrel Bay."},
        {"uri": "/d", "title": "Vardholm", "text": "Vardholm is a town on the river Senna."},
    ]
    read = passages.focused(question, evidence)
    # the kayak's passage shares the question's rare words; it names its maker, who is kept;
    # the river passage that only shares "river" is dropped, with its wrong river
    assert [item["uri"] for item in read][:2] == ["/a", "/b"]
    assert "/c" not in [item["uri"] for item in read]
    form = answer_form(question, evidence)
    assert not form.permits("Ilsa Moor") and form.permits("Orla Pensk")
    shown = reader_messages(question, evidence)[-1]["content"]
    assert "Ilsa Moor" not in shown
    assert "[2] Orla Pensk" in shown and "[4] Vardholm" in shown  # numbered as the evidence is
    assert passages.focused("Who?", evidence) == evidence  # nothing shared: nothing dropped
    monkeypatch.setattr(passages, "FOCUS", None)  # off: every passage is read
    assert passages.focused(question, evidence) == evidence


def test_a_comparison_reads_both_sides_even_when_one_shares_little_with_the_question():
    question = "Which harbour town had the older lighthouse, Vardholm or Kestrel Bay?"
    evidence = [
        {
            "uri": "/v",
            "title": "Vardholm",
            "text": "Vardholm is a harbour town. Its lighthouse dates from 1822.",
        },
        {"uri": "/s", "title": "Senna", "text": "The Senna is a river that flows past Vardholm."},
        {"uri": "/k", "title": "Kestrel Bay", "text": "Kestrel Bay was settled in 1901."},
    ]
    kept = [item["uri"] for item in passages.focused(question, evidence)]
    assert "/k" in kept and "/v" in kept
    assert answer_form(question, evidence).options == ("Vardholm", "Kestrel Bay")
