"""Bridge queries: names the found passages give and the question does not."""

from __future__ import annotations

from sleuth.agent.bridges import bridge_queries, entities, rephrases
from sleuth.agent.events import PlanReady, Reflected, SearchIssued
from tests.agent.test_research import assistant_for, collect, of, settings_for
from tests.fakes import ScriptedLLM

QUESTION = (
    "What government position was held by the woman who portrayed Corliss Archer in the film "
    "Kiss and Tell?"
)
PASSAGE = (
    "Kiss and Tell is a 1945 American comedy film starring then 17-year-old Shirley Temple as "
    "Corliss Archer. In the film, two teenage girls cause their respective parents much concern."
)


def test_names_and_titles():
    found = entities(PASSAGE)
    assert found[:5] == ["Kiss and Tell", "Kiss", "Tell", "American", "Shirley Temple"]
    assert "Corliss Archer" in found
    assert entities('He wrote "The Long Goodbye" in 1953.') == ["Long Goodbye", "The Long Goodbye"]


def test_a_bridge_joins_a_new_name_to_what_the_question_still_asks():
    (first, *_) = bridge_queries(QUESTION, [PASSAGE], [], limit=2)
    assert first.startswith("American") or "Shirley Temple" in first
    queries = bridge_queries(QUESTION, [PASSAGE], [], limit=3)
    shirley = next(q for q in queries if q.startswith("Shirley Temple"))
    assert shirley == "Shirley Temple government position held woman"
    assert "Corliss" not in " ".join(queries) and "Kiss" not in " ".join(queries)
    assert bridge_queries(QUESTION, [PASSAGE], [shirley], limit=3).count(shirley) == 0


def test_the_bridge_is_the_name_where_a_passage_meets_the_question():
    # "American" and "Vermont" come first in the passage and other passages name them too;
    # the arena is named in the sentence that matches the question's words ("home games").
    question = "How many people can the arena where the Riverton Owls play their home games seat?"
    passages = [
        "# Riverton Owls\n\nThe Riverton Owls are an American ice hockey team from Riverton, "
        "Vermont. The team plays its home games at the Halvard Centre.",
        "# Vermont\n\nVermont is an American state in New England.",
        "# Owls\n\nOwls are birds of prey. Many American owls hunt at night.",
    ]
    queries = bridge_queries(question, passages, [], limit=3)
    # What the question still asks: its words that the arena's passage does not answer.
    assert queries[0] == "Halvard Centre many people arena seat"
    assert queries[-1].startswith("American")
    # A heading and the line below it are two names, not one.
    assert "Riverton Owls The Riverton Owls" not in entities(passages[0])


def test_rephrasings_are_recognised():
    assert rephrases("Corliss Archer film Kiss and Tell", QUESTION, [])
    assert not rephrases("Shirley Temple", QUESTION, [])
    assert rephrases("Shirley Temple", QUESTION, ["Shirley Temple career"])


async def test_bridge_queries_are_searched_in_round_two(store, web, tmp_path):
    from sleuth.agent.library import index_paths

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "kiss.md").write_text(f"# Kiss and Tell\n\n{PASSAGE}")
    (notes / "temple.md").write_text(
        "# Shirley Temple\n\nShirley Temple Black was an American actress and diplomat. She "
        "served as Chief of Protocol of the United States."
    )
    index_paths(store, [notes])
    plan = {"subquestions": [{"question": QUESTION, "tool": "search_library", "query": "x"}]}
    reflection = {"enough": True, "new_queries": [], "follow_links": []}  # it says enough
    flags = {"search.backend": "none", "research.max_rounds": 2}
    llm = ScriptedLLM([plan, reflection, "Shirley Temple was Chief of Protocol [2]."])
    agent = assistant_for(store, llm, settings_for(web, **flags))
    events = await collect(agent.ask(QUESTION))
    (reflected,) = of(events, Reflected)
    assert reflected.bridges > 0 and not reflected.enough
    assert [e.round for e in of(events, PlanReady)] == [1, 2]
    searched = [e.query for e in of(events, SearchIssued)]
    assert any(q.startswith("Shirley Temple") for q in searched)


async def test_nothing_found_is_never_enough_while_the_budget_lasts(store, web, tmp_path):
    from sleuth.agent.library import index_paths

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "derrickson.md").write_text("# Scott Derrickson\n\nScott Derrickson is American.")
    index_paths(store, [notes])
    question = "Were Scott Derrickson and Ed Wood of the same nationality?"
    plan = {"subquestions": [{"question": question, "tool": "search_library", "query": "zzz"}]}
    reflection = {"enough": True, "new_queries": [], "follow_links": []}
    flags = {"search.backend": "none", "research.max_rounds": 2}
    llm = ScriptedLLM([plan, reflection, "Scott Derrickson is American [1]."])
    agent = assistant_for(store, llm, settings_for(web, **flags))
    agent.researcher.library.search_chunks = _nothing_for_questions(agent.researcher.library)
    events = await collect(agent.ask(question))
    (reflected,) = of(events, Reflected)
    assert not reflected.enough  # zero evidence: "enough" is not taken
    searched = [e.query for e in of(events, SearchIssued)]
    assert "Scott Derrickson" in searched and "Ed Wood" in searched  # each name on its own


def _nothing_for_questions(library):
    """The library finds nothing for whole questions (as for a badly worded one), only for
    names: so the first round comes back empty."""
    real = library.search_chunks

    def search(words, **kwargs):
        return [] if len(words) > 3 else real(words, **kwargs)

    return search
