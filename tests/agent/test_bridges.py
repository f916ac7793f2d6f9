"""Bridge queries: names the found passages give and the question does not."""

from __future__ import annotations

from sleuth.agent.research.bridges import bridge_queries, entities, rephrases
from sleuth.agent.research.events import PlanReady, Reflected, SearchIssued
from tests.agent.test_research import assistant_for, collect, of, settings_for
from tests.fakes import ScriptedLLM

QUESTION = (
    "What government position was held by the woman who portrayed Nell Farrow in the film "
    "Salt and Ember?"
)
PASSAGE = (
    "Salt and Ember is a 1947 American comedy film starring then 16-year-old Maren Holt as "
    "Nell Farrow. In the film, two teenage girls cause their respective parents much concern."
)


def test_names_and_titles():
    found = entities(PASSAGE)
    assert found[:5] == ["Salt and Ember", "Salt", "Ember", "American", "Maren Holt"]
    assert "Nell Farrow" in found
    assert entities('He wrote "The Long Goodbye" in 1953.') == ["Long Goodbye", "The Long Goodbye"]


def test_a_date_is_not_a_name_to_search():
    # "October 16" searched with the question's words finds the passage that gave it.
    said = "Born on October 16, 1990 in Riverton, she signed with Kestrel Records in July 1977."
    assert entities(said) == ["Born", "Riverton", "Kestrel Records"]
    assert entities("The May Queen was sung in May.") == ["May Queen"]
    passage = "Tessa Lind was born on October 16, 1990. She sang with the Halvard Choir."
    queries = bridge_queries("Which choir did the singer born in Riverton join?", [passage], [], 3)
    assert not any(q.startswith("October") for q in queries)
    assert any(q.startswith("Halvard Choir") for q in queries)


def test_a_bridge_joins_a_new_name_to_what_the_question_still_asks():
    (first, *_) = bridge_queries(QUESTION, [PASSAGE], [], limit=2)
    assert first.startswith("American") or "Maren Holt" in first
    queries = bridge_queries(QUESTION, [PASSAGE], [], limit=3)
    holt_query = next(q for q in queries if q.startswith("Maren Holt"))
    assert holt_query == "Maren Holt government position held woman"
    assert "Nell" not in " ".join(queries) and "Salt" not in " ".join(queries)
    assert bridge_queries(QUESTION, [PASSAGE], [holt_query], limit=3).count(holt_query) == 0


def test_the_bridge_is_the_name_where_a_passage_meets_the_question():
    # "American" and "Vermont" come first in the passage and other passages name them too;
    # the arena is named in the sentence that matches the question's words ("home games").
    question = "How many people can the arena where the Riverton Owls play their home games seat?"
    passages = [
        "# Riverton Owls\n\nThe Riverton Owls are an American ice hockey team from Riverton, "
        "Vermont. The team plays its home games at the Halvard Centre.",
        "# Vermont\n\nVermont is an American state in the Northeast.",
        "# Owls\n\nOwls are birds of prey. Many American owls hunt at night.",
    ]
    queries = bridge_queries(question, passages, [], limit=3)
    # What the question still asks: its words that the arena's passage does not answer.
    assert queries[0] == "Halvard Centre many people arena seat"
    assert queries[-1].startswith("American")
    # A heading and the line below it are two names, not one.
    assert "Riverton Owls The Riverton Owls" not in entities(passages[0])


def test_a_name_made_of_question_words_is_still_a_bridge():
    # The question says "county" and "Kestrel", never "Kestrel County": that county's
    # passage is what it needs, and only the name found here leads there.
    question = "How many people live in the county served by the Kestrel Area Transit system?"
    passage = (
        "# Kestrel Area Transit\n\nKestrel Area Transit is the public bus service of Kestrel "
        "County, Oregon. Regular routes run daily."
    )
    queries = bridge_queries(question, [passage], [], limit=3)
    assert "Kestrel County many people live served" in queries
    assert not any(q.startswith("Kestrel Area Transit") for q in queries)


def test_rephrasings_are_recognised():
    assert rephrases("Nell Farrow film Salt and Ember", QUESTION, [])
    assert not rephrases("Maren Holt", QUESTION, [])
    assert rephrases("Maren Holt", QUESTION, ["Maren Holt career"])


async def test_bridge_queries_are_searched_in_round_two(store, web, tmp_path):
    from sleuth.agent.tools.library import index_paths

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "salt.md").write_text(f"# Salt and Ember\n\n{PASSAGE}")
    (notes / "holt.md").write_text(
        "# Maren Holt\n\nMaren Holt Vance was an American actress and diplomat. She "
        "served as Surveyor General of the Northern Isles."
    )
    index_paths(store, [notes])
    plan = {"subquestions": [{"question": QUESTION, "tool": "search_library", "query": "x"}]}
    reflection = {"enough": True, "new_queries": [], "follow_links": []}  # it says enough
    flags = {"search.backend": "none", "research.max_rounds": 2}
    llm = ScriptedLLM([plan, reflection, "Maren Holt was Surveyor General [2]."])
    agent = assistant_for(store, llm, settings_for(web, **flags))
    events = await collect(agent.ask(QUESTION))
    (reflected,) = of(events, Reflected)
    assert reflected.bridges > 0 and not reflected.enough
    assert [e.round for e in of(events, PlanReady)] == [1, 2]
    searched = [e.query for e in of(events, SearchIssued)]
    assert any(q.startswith("Maren Holt") for q in searched)


async def test_the_model_is_not_asked_to_reflect_when_the_bridges_fill_the_round(
    store, web, tmp_path
):
    from sleuth.agent.tools.library import index_paths

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "salt.md").write_text(
        "# Salt and Ember\n\nSalt and Ember is a 1947 American comedy film directed by Osk "
        "Renner, starring then 16-year-old Maren Holt as Nell Farrow, with Ida Quell."
    )
    index_paths(store, [notes])
    plan = {"subquestions": [{"question": QUESTION, "tool": "search_library", "query": "x"}]}
    flags = {"search.backend": "none", "research.max_rounds": 2}
    llm = ScriptedLLM([plan, "Maren Holt starred in Salt and Ember [1]."])
    agent = assistant_for(store, llm, settings_for(web, **flags))
    events = await collect(agent.ask(QUESTION))
    # three names found, three bridge queries, no link to follow: nothing for the model to add
    (reflected,) = of(events, Reflected)
    assert reflected.bridges == 3 and len(reflected.new_queries) == 3 and not reflected.enough
    assert [c["schema"] is not None for c in llm.calls] == [True, False]  # plan, answer
    assert [e.round for e in of(events, PlanReady)] == [1, 2]
    assert "Osk Renner government position held woman" in [
        e.query for e in of(events, SearchIssued)
    ]


async def test_nothing_found_is_searched_again_by_name_without_asking_the_model(
    store, web, tmp_path
):
    from sleuth.agent.tools.library import index_paths

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "arvid.md").write_text("# Tomas Arvid\n\nTomas Arvid is a Swedish painter.")
    index_paths(store, [notes])
    question = "Were Tomas Arvid and Lena Voss of the same nationality?"
    plan = {"subquestions": [{"question": question, "tool": "search_library", "query": "zzz"}]}
    flags = {"search.backend": "none", "research.max_rounds": 2}
    llm = ScriptedLLM([plan, "Tomas Arvid is a Swedish painter [1]."])
    agent = assistant_for(store, llm, settings_for(web, **flags))
    store.library.search_chunks = _nothing_for_questions(store.library)
    events = await collect(agent.ask(question))
    (reflected,) = of(events, Reflected)
    assert not reflected.enough  # zero evidence is never enough
    assert [c["schema"] is not None for c in llm.calls] == [True, False]  # plan, write: no
    # reflection on nothing
    searched = [e.query for e in of(events, SearchIssued)]
    assert "Tomas Arvid" in searched and "Lena Voss" in searched  # each name on its own


def _nothing_for_questions(library):
    """The library finds nothing for whole questions (as for a badly worded one), only for
    names: so the first round comes back empty."""
    real = library.search_chunks

    def search(words, **kwargs):
        return [] if len(words) > 3 else real(words, **kwargs)

    return search
