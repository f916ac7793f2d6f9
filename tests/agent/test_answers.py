"""Answers worth showing: the checks, the loop detector, the second attempt and the quoted
evidence that stands in when both attempts fail."""

from __future__ import annotations

import pytest

from sleuth.agent.research.checks import (
    RepetitionGuard,
    cut_recitation,
    extractive_answer,
    problems,
)
from sleuth.agent.research.events import AnswerDone, AnswerRejected, RunFinished, Token
from sleuth.agent.research.verify import attribute, verify
from sleuth.agent.research.writer import judge
from tests.agent.test_research import PLAN, assistant_for, collect, of, settings_for
from tests.fakes import ScriptedLLM

LOOP = " ".join(f"[{n}] Sleuth" for n in range(1, 200))  # what the 135M model once streamed
EVIDENCE = [
    {"uri": "/a.md", "title": "Lyon", "text": "Lyon was founded by Lucius Munatius Plancus."},
    {"uri": "/b.md", "title": "Rhône", "text": "The Rhône flows through Lyon to the sea."},
]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "it is empty"),
        ("[1] Sleuth [2] Sleuth [1] Sleuth [2] Sleuth", "it is mostly citation markers"),
        ("Lyon is a city. " * 4, "it repeats itself"),
        ("Question: Who founded Lyon?\nAnswer: Plancus [1].", "it echoes the prompt"),
        ("[1] Lyon\nLyon was founded by Plancus.\n[2] Rhône", "it recites the evidence list"),
        ("Napoleon founded the city.", "it cites no evidence"),
        ("Napoleon built the city in 1800 [1].", "no sentence is supported by the evidence"),
    ],
)
def test_each_way_an_answer_fails(text, problem):
    checked = verify(text, EVIDENCE)
    assert any(p.startswith(problem) for p in problems(checked.text, checked.citations))


def test_good_answers_and_honest_refusals_pass():
    for text in [
        "Lucius Munatius Plancus founded Lyon [1]. The Rhône flows through it [2].",
        "The evidence does not say who designed the bridges.",
    ]:
        checked = verify(text, EVIDENCE)
        assert problems(checked.text, checked.citations) == [], text


def test_a_list_of_passage_titles_on_one_line_is_a_recited_evidence_list():
    # What Qwen2.5 0.5B once wrote for a dev-25 question, over passages with these titles.
    titles = ["Tomas Reyes", "Luis Ortega", "Iván Salas", "1987 Coastal Grand Prix"]
    evidence = [
        {"uri": f"/{i}.md", "title": t, "text": f"{t} is a thing."} for i, t in enumerate(titles)
    ]
    listed = "[1]. Tomas Reyes [2]. Luis Ortega [3]. Iván Salas [4]. 1987 Coastal Grand Prix"
    checked = verify(listed, evidence)
    assert "it recites the evidence list" in problems(checked.text, checked.citations, evidence)
    # An answer that names one or two of its passages in prose is fine.
    named = "Tomas Reyes [1]. He was a racing driver, like Luis Ortega [2]."
    assert problems(named, evidence=evidence) == []


def test_the_guard_trips_within_a_few_words_of_a_loop_and_not_on_prose():
    guard = RepetitionGuard()
    words = LOOP.split(" ")
    tripped_at = next(i for i, word in enumerate(words) if guard.feed(word + " "))
    assert tripped_at < 12
    prose = (
        "Lyon was founded in 43 BC [1]. It stands where the Rhône meets the Saône [2]. "
        "The Rhône rises in the Alps [2], and the Saône in the Vosges [3]."
    )
    assert not RepetitionGuard.loops(prose)


def test_quoted_evidence_is_cited_labelled_and_on_the_question():
    text = extractive_answer("Who founded Lyon?", EVIDENCE)
    assert text.startswith("Quoted from the sources")
    assert "> Lyon was founded by Lucius Munatius Plancus. [1]" in text
    checked = verify(text, EVIDENCE)
    assert checked.verification["dangling_removed"] == 0 and checked.citations


def test_the_second_quote_follows_the_first_to_the_bridge_passage():
    question = "In which city was the director of the film Salt and Ember born?"
    evidence = [
        {
            "uri": "/kiss.md",
            "title": "Salt and Ember (1947 film)",
            "text": "Salt and Ember is a 1947 American comedy film directed by Arne Lindqvist.",
        },
        {
            "uri": "/festivals.md",
            "title": "Film festivals",
            "text": "A film festival is held in a city each year, with prizes and parties.",
        },
        {
            "uri": "/wallace.md",
            "title": "Arne Lindqvist (director)",
            "text": "Arne Lindqvist was born in Tromsø, Norway. He made silent films.",
        },
    ]
    text = extractive_answer(question, evidence)
    # The festival passage shares more of the question's words ("film", "city"); the
    # director's passage is where the first quote leads, and it holds the answer.
    quotes = text.split("\n\n")[1:]
    assert quotes[:2] == [
        "> Salt and Ember is a 1947 American comedy film directed by Arne Lindqvist. [1]",
        "> Arne Lindqvist was born in Tromsø, Norway. [3]",
    ]


def test_a_pronoun_sentence_is_read_with_its_passage_title():
    evidence = [
        {"uri": "/a.md", "title": "Bleak House", "text": "It was written by Charles Dickens."},
        {"uri": "/b.md", "title": "Novels", "text": "A novel was written by many a hand."},
    ]
    text = extractive_answer("Who wrote Bleak House?", evidence)
    # The quote names what "it" is, and is still what [1] says: its title is part of it.
    assert text.splitlines()[2] == "> It was written by Charles Dickens. — Bleak House [1]"
    assert all(c["supported"] for c in verify(text, evidence).citations)


def test_a_comparison_gets_a_quote_on_each_thing_it_compares():
    # Once a quote names Ada Finch, her name weighs half: the next quote is about Bruno Hale,
    # and the one after brings her birth date, not a second gallery of hers.
    evidence = [
        {"uri": "/1", "title": "Ada Finch", "text": "Ada Finch (born 3 May 1970) is a painter."},
        {"uri": "/2", "title": "Finch Gallery", "text": "The gallery shows works by Ada Finch."},
        {
            "uri": "/3",
            "title": "Bruno Hale",
            "text": "Bruno Hale (born 12 June 1961) is a Welsh sculptor who works in bronze.",
        },
        {"uri": "/4", "title": "Painters", "text": "A painter paints pictures in oil or in water."},
    ]
    text = extractive_answer("Who is older, Ada Finch or Bruno Hale?", evidence)
    assert "(born 12 June 1961)" in text and "(born 3 May 1970)" in text
    assert "[4]" not in text


def test_quotes_skip_markdown_headings_and_say_so_when_nothing_bears_on_the_question():
    quote = "> Tides are caused mainly by the Moon. [1]"
    notes = [
        {
            "uri": "/t.md",
            "title": "Tides",
            "text": "# Tides\n\nTides are caused mainly by the Moon.",
        }
    ]
    assert quote in extractive_answer("What causes tides?", notes)
    one_line = [{**notes[0], "text": "## Tides are caused mainly by the Moon."}]
    assert quote in extractive_answer("What causes tides?", one_line)
    nothing = extractive_answer("Who painted the Mona Lisa?", notes)
    assert nothing.startswith("No answer") and "[1]" not in nothing


def test_an_evidence_list_copied_out_after_the_answer_is_cut():
    text = "Plancus founded Lyon [1].\n[1] Lyon Lyon was founded by Lucius Munatius Plancus."
    assert cut_recitation(text, EVIDENCE) == ("Plancus founded Lyon [1].", True)
    only = "[1] Lyon\nLyon was founded by Plancus.\n[2] Rhône"  # nothing stands above it
    assert cut_recitation(only, EVIDENCE) == (only, False)
    listed = "Two facts:\n[1] is about the founder.\n[2] Rhône is a river."  # [1] isn't a title
    assert cut_recitation(listed, EVIDENCE) == (listed[: listed.index("\n[2]")], True)


def test_uncited_sentences_a_passage_states_are_credited_to_it_and_others_are_not():
    text = "Lucius Munatius Plancus founded Lyon. Napoleon crowned himself there in 1804."
    attributed, added = attribute(text, EVIDENCE)
    assert added == 1
    assert attributed == (
        "Lucius Munatius Plancus founded Lyon [1]. Napoleon crowned himself there in 1804."
    )
    assert attribute("Plancus founded Lyon [2].", EVIDENCE) == ("Plancus founded Lyon [2].", 0)
    checked, found = judge(text + "\n[2] Rhône The Rhône flows through Lyon.", EVIDENCE)
    assert found == [] and checked.verification["attributed"] == 1
    assert checked.verification["recitation_cut"] and "Rhône" not in checked.text
    _, found = judge("Napoleon founded the city.", EVIDENCE)  # nothing to credit: still rejected
    assert found == ["it cites no evidence"]


async def test_a_looping_answer_is_stopped_early_written_again_and_the_second_shown(store, web):
    good = "Lyon was founded by Lucius Munatius Plancus [1]."
    agent = assistant_for(store, ScriptedLLM([PLAN, LOOP, good]), settings_for(web))
    events = await collect(agent.ask("Who founded Lyon?"))
    streamed = [e.text for e in of(events, Token)]
    assert len(streamed) < 20 + len(good.split())  # the loop was cut off after a few words
    (rejected,) = of(events, AnswerRejected)
    assert "it repeats itself" in rejected.problems and rejected.retrying
    answer = of(events, AnswerDone)[0]
    assert answer.text == good and answer.verification["kind"] == "model"
    assert answer.verification["rejected"][0]["problems"] == rejected.problems
    assert answer.sampling["seed"] != answer.verification["rejected"][0]["sampling"]["seed"]


async def test_two_failed_answers_give_quoted_evidence_labelled_as_such(store, web):
    bad = ["Sleuth [1] [2] [3] [4] [1] [2]", "Question: who?\nEvidence: [1] Lyon"]
    agent = assistant_for(store, ScriptedLLM([PLAN, *bad]), settings_for(web))
    events = await collect(agent.ask("Who founded Lyon?"))
    assert [e.retrying for e in of(events, AnswerRejected)] == [True, False]
    answer = of(events, AnswerDone)[0]
    assert answer.verification["kind"] == "extractive"
    assert answer.text.startswith("Quoted from the sources") and "Lugdunum" in answer.text
    assert answer.citations and answer.verification["dangling_removed"] == 0
    first, second = (r["text"] for r in answer.verification["rejected"])
    assert first.startswith("Sleuth [1] [2]") and second.startswith("Question: who?")
    run_id = of(events, RunFinished)[0].run_id
    kinds = [s.kind for s in store.runs.steps(run_id)]
    assert kinds.count("answer_rejected") == 2  # what was rejected, and why, is kept
    stored = store.runs.answer(answer.answer_id)
    assert stored.verification["kind"] == "extractive"
