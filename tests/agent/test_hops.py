"""Two-step questions read in order (hops.py) and the kind of answer a question asks for
(kinds.py): the shapes found, and the loop with a scripted model over a real library."""

from __future__ import annotations

import pytest

from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.research.assistant import Assistant
from sleuth.agent.research.events import AnswerDone, LLMCall, SearchIssued
from sleuth.agent.research.hops import find_hop
from sleuth.agent.research.kinds import asked_kind, asks_whole_date, may_become, of_kind
from sleuth.agent.research.reader import read_answer
from sleuth.agent.tools.library import index_paths
from sleuth.store.settings import load_settings
from tests.fakes import ScriptedLLM
from tests.helpers import write_notes


@pytest.mark.parametrize(
    ("question", "inner", "outer"),
    [
        (
            "Where was the director of film The Low Tide born?",
            "Who is the director of film The Low Tide?",
            "Where was {} born?",
        ),
        (
            "What is the date of death of the composer of song Amber Rain (Song)?",
            "Who is the composer of song Amber Rain (Song)?",
            "What is the date of death of {}?",
        ),
        ("When did Tomas Arvid's wife die?", "Who is Tomas Arvid's wife?", "When did {} die?"),
        (
            "When is Lena Voss Of Tarn's father's birthday?",
            "Who is Lena Voss Of Tarn's father?",
            "When is {}'s birthday?",
        ),
        (  # a chain: the innermost description first
            "Who is the mother of the director of film The Low Tide?",
            "Who is the director of film The Low Tide?",
            "Who is the mother of {}?",
        ),
        (
            "What position was held by the actress who played Nell Farrow in Salt and Ember?",
            "Who played Nell Farrow in Salt and Ember?",
            "What position was held by {}?",
        ),
        (  # a word after the clause's last name is the outer's
            "What city is the band that recorded Salt and Ember from?",
            "Which band recorded Salt and Ember?",
            "What city is {} from?",
        ),
        (  # kin two steps away: two steps
            "Who is Lena Voss's paternal grandmother?",
            "Who is the father of Lena Voss?",
            "Who is the mother of {}?",
        ),
        (
            "In what county is the town where Lena Voss was born?",
            "Which town is it where Lena Voss was born?",
            "In what county is {}?",
        ),
        (
            "Which region is Lena Voss's city of birth in?",
            "Who is Lena Voss's city of birth?",
            "Which region is {} in?",
        ),
        (
            "The founder of Kestrel Works was born in what city?",
            "Who is The founder of Kestrel Works?",
            "{} was born in what city?",
        ),
    ],
)
def test_a_two_step_question_is_split_into_the_bridge_and_the_rest(question, inner, outer):
    hop = find_hop(question)
    assert hop is not None and (hop.inner, hop.outer) == (inner, outer)
    assert hop.then("Ansel Brandt") == outer.replace("{}", "Ansel Brandt")


@pytest.mark.parametrize(
    "question",
    [
        "Who is the father of Tomas Arvid?",  # the description is all it asks
        "Who was the director of film The Low Tide?",
        "What is the name of the river that flows past Vardholm?",
        "Where was Ansel Brandt born?",  # one step
        "Which film has the director born first, The Low Tide or Salt and Ember?",
        "Are the directors of The Low Tide and Salt and Ember from the same country?",
        "What is the date of birth of Lena Voss?",
        "Who wrote The Boy Who Sailed the Kestrel?",  # "Who" in a title starts no clause
        "Who worked on the origins of Kestrel Works?",  # a bridge is one thing
        "Who founded the city of Vardholm?",  # the city of Vardholm is Vardholm
        "What party was the man who painted Salt and Ember a member of?",  # clause took "of"
        "Lena Voss is the aunt of the singer who joined which band after Kestrel?",
        "Who did the actor who played Nell Farrow in Salt and Ember play in Copper Bridge?",
        "Who sang during the recording of Salt and Ember?",  # an event is no one to find
        "What group was formed after Kestrel Works's suspension?",
        "What nationality is Lena Voss, star of 1958's drama The Low Tide?",  # a year owns none
    ],
)
def test_a_one_step_question_or_a_comparison_has_no_hop(question):
    assert find_hop(question) is None


def test_the_kind_asked_and_the_rule_an_answer_of_that_kind_keeps():
    assert [
        asked_kind(q)
        for q in (
            "When was Ansel Brandt born?",
            "What is the date of death of Lena Voss?",
            "How many islands are there?",
            "Where did Lena Voss study?",
            "What is the place of birth of Lena Voss?",
            "Who directed The Low Tide?",
            "What nationality is Tomas Arvid?",
            "What is the cause of death of Lena Voss?",
        )
    ] == ["date", "date", "number", "place", "place", "person", "nationality", None]
    assert of_kind("13 March 1931", "date") and of_kind("May", "date")
    assert not of_kind("Vardholm", "date") and of_kind("twelve", "number")
    assert of_kind("Bay of Kestrel", "place") and of_kind("the Hague", "place")
    assert not of_kind("a port town", "place") and not of_kind("Route 66", "place")
    assert of_kind("(Kestrel) & Sons", "name")
    # while decoding: a name may not take a lower-case word but a joining one, nor a digit
    assert may_become("Bay o", "place") and may_become("Bay of ", "place")
    assert not may_become("Bay was ", "place") and not may_become("Bay 6", "place")
    assert not may_become("the ", "place")  # a name starts with its own word
    assert may_become("in ", "date")  # a date may still gain its digits
    assert asks_whole_date("When was Ansel Brandt born?")
    assert not asks_whole_date("In what year was Ansel Brandt born?")


# A made-up library of a two-step question's shape: the film's passage names its director;
# the director's passage shares no word with the question, so only a search for the director
# finds it.
LIBRARY = {
    "The Low Tide": "The Low Tide is a 1958 drama film directed by Ansel Brandt. It was shot "
    "on the northern coast in one winter.",
    "Ansel Brandt": "Ansel Brandt was a painter and stage designer. His home town, Vardholm, "
    "lies on the eastern coast; he lived there until 1990.",
    "High Tide Festival": "The High Tide Festival shows drama films every summer in Kestrel "
    "Bay, where many directors were born.",
}
QUESTION = "Where was the director of film The Low Tide born?"


@pytest.fixture
def library_assistant(store, tmp_path):
    index_paths(store, [write_notes(tmp_path / "notes", LIBRARY)])

    def make(llm):
        settings = load_settings(
            None,
            env={},
            flags={"search.backend": "none", "research.planner": "none"},
        )
        return Assistant(store, llm, ModelInfo(name="scripted", backend="test"), settings)

    return make


async def _ask(assistant, question):
    events = [event async for event in assistant.ask(question, use_web=False, seed=1)]
    await assistant.aclose()
    return events


async def test_the_bridge_is_read_first_then_searched_for_then_the_answer(library_assistant):
    llm = ScriptedLLM(["Ansel Brandt", "Vardholm"])
    events = await _ask(library_assistant(llm), QUESTION)
    done = next(e for e in events if isinstance(e, AnswerDone))
    assert done.short_answer == "Vardholm"
    assert [c.purpose for c in events if isinstance(c, LLMCall)] == ["hop", "read"]
    first, second = (call["messages"][-1]["content"] for call in llm.calls)
    assert "Question: Who is the director of film The Low Tide?" in first
    assert "Question: Where was Ansel Brandt born?" in second
    # the director's passage was not found by the question: the loop searched for him
    bridge = [e for e in events if isinstance(e, SearchIssued) and e.source == "bridge"]
    assert bridge and bridge[0].query.startswith("Ansel Brandt")
    titles = [s["title"] for s in done.sources]
    film, person = titles.index("The Low Tide") + 1, titles.index("Ansel Brandt") + 1
    # both steps are quoted, in order: the film's director, then where he comes from
    assert done.text.startswith(f"Vardholm [{person}].")
    assert done.text.index(f"directed by Ansel Brandt. [{film}]") < done.text.index(
        f"Vardholm, lies on the eastern coast; he lived there until 1990. — Ansel Brandt [{person}]"
    )
    assert done.verification["hops"] == [
        {
            "question": "Who is the director of film The Low Tide?",
            "answer": "Ansel Brandt",
            "cited": film,
        }
    ]


async def test_a_bridge_the_question_already_names_falls_back_to_the_plain_question(
    library_assistant,
):
    llm = ScriptedLLM(["The Low Tide", "Kestrel Bay"])
    events = await _ask(library_assistant(llm), QUESTION)
    done = next(e for e in events if isinstance(e, AnswerDone))
    assert [c.purpose for c in events if isinstance(c, LLMCall)] == ["hop", "read"]
    assert f"Question: {QUESTION}" in llm.calls[1]["messages"][-1]["content"]
    assert "hops" not in done.verification and done.short_answer == "Kestrel Bay"


async def test_an_answer_of_the_wrong_kind_is_refused_and_read_again(
    library_assistant,
):
    # a backend that cannot hold decoding to the kind: "a painter" is not a place
    llm = ScriptedLLM(["Ansel Brandt", "a painter", "Vardholm"])
    events = await _ask(library_assistant(llm), QUESTION)
    done = next(e for e in events if isinstance(e, AnswerDone))
    assert done.short_answer == "Vardholm"
    assert "is not a place" in done.verification["rejected"][0]["problems"][0]
    assert "Question: Where was Ansel Brandt born?" in llm.calls[2]["messages"][-1]["content"]
    assert llm.calls[2]["sampling"].temperature > 0  # a second look, sampled


def test_a_date_asked_is_the_whole_date_of_the_passage_the_answer_is_read_from():
    evidence = [
        {"uri": "/b", "title": "Mara Lind", "text": "Mara Lind was born 9 July 1931 in Tarn."},
        {
            "uri": "/a",
            "title": "Ansel Brandt",
            "text": "Ansel Brandt (born March 4, 1931) is a director. He moved in 1980.",
        },
    ]
    read = read_answer("1931", "When was Ansel Brandt born?", evidence)
    assert (read.short, read.cited) == ("March 4, 1931", [2])
    assert read_answer("1931", "In what year was Ansel Brandt born?", evidence).short == "1931"
    assert read_answer("1980", "When did Ansel Brandt move?", evidence).short == "1980"


async def test_a_regenerate_reads_the_steps_again_over_the_same_evidence(library_assistant, store):
    llm = ScriptedLLM(["Ansel Brandt", "Vardholm", "Ansel Brandt", "Vardholm"])
    assistant = library_assistant(llm)
    first = next(e for e in await _ask(assistant, QUESTION) if isinstance(e, AnswerDone))
    old_run = store.runs.answer(first.answer_id).run_id
    events = [e async for e in assistant.regenerate(old_run, seed=2)]
    second = next(e for e in events if isinstance(e, AnswerDone))
    assert not [e for e in events if isinstance(e, SearchIssued)]  # the same evidence
    assert [c.purpose for c in events if isinstance(c, LLMCall)] == ["hop", "read"]
    assert second.short_answer == "Vardholm" and second.verification["hops"]
    a, b = store.runs.answer(first.answer_id), store.runs.answer(second.answer_id)
    assert a.messages == b.messages  # the last step's prompt, both times
    assert "Question: Where was Ansel Brandt born?" in b.messages[-1]["content"]
