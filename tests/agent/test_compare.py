"""Comparisons in time, decided from each side's date (agent/research/compare.py): the rule on
made-up passages, and the loop with a scripted model over a made-up library, directly and
through a hop (each film's director)."""

from __future__ import annotations

import pytest

from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.research.assistant import Assistant
from sleuth.agent.research.compare import Date, asked_order, compare, date_of, through
from sleuth.agent.research.events import AnswerDone, LLMCall, SearchIssued
from sleuth.agent.research.picker import RewardModel, probability
from sleuth.agent.tools.library import index_paths
from sleuth.store.settings import load_settings
from tests.fakes import ScriptedLLM
from tests.helpers import write_notes


@pytest.mark.parametrize(
    "question, order",
    [
        ("Who is older, Lena Voss or Tomas Arvid?", ("birth", "earlier")),
        ("Who was born later, Lena Voss or Tomas Arvid?", ("birth", "later")),
        ("Which writer died first, Lena Voss or Tomas Arvid?", ("death", "earlier")),
        ("Which was founded first, Kestrel Works or Tarn Mills?", ("event", "earlier")),
        ("Which film came out more recently, Salt and Ember or The Low Tide?", ("event", "later")),
        # the alternatives' own words are not the question's cue: "The Last Word"
        ("Which film came out first, The Last Word or Salt and Ember?", ("event", "earlier")),
        ("Which band has more members, Kestrel or Tarn?", None),  # how many, not when
        ("Who lived longer, Lena Voss or Tomas Arvid?", None),
        ("Which is a novelist, Lena Voss or Tomas Arvid?", None),
    ],
)
def test_what_a_comparison_in_time_asks(question, order):
    assert asked_order(question) == order


def test_each_sides_date_is_read_from_its_own_passage():
    person = {"text": "Lena Voss (4 March 1931 – 2 May 1990) was a painter. She was born in Tarn."}
    assert date_of(person, "birth", set())[0] == Date(1931, 3, 4)
    assert date_of(person, "death", set())[0] == Date(1990, 5, 2)
    # an abbreviation cuts no lead short: the brackets are read from the passage's opening
    cut = {"text": "Tomas R. Arvid (c. 1667 – 11 May 1702) was a printer in Vardholm."}
    born, quoted = date_of(cut, "birth", set())
    assert born == Date(1667) and quoted.startswith("1667 – 11 May 1702)")  # its year quoted
    assert date_of(cut, "death", set())[0] == Date(1702, 5, 11)
    living = {
        "text": "Ansel Brandt (born June 22, 1957) is a film director. He won a prize in 1999."
    }
    assert date_of(living, "birth", set())[0] == Date(1957, 6, 22)
    assert date_of(living, "death", set()) is None  # no death read: no decision
    works = {
        "text": "Kestrel Works is a mill museum since 1988. It was founded in 1851 by a weaver."
    }
    assert date_of(works, "event", {"found"}) == (Date(1851), "It was founded in 1851 by a weaver.")
    assert date_of(works, "event", set())[0] == Date(1988)  # no verb asked: the lead's year


def _evidence(**texts: str) -> list[dict]:
    return [{"title": title.replace("_", " "), "text": text} for title, text in texts.items()]


def test_the_side_whose_date_comes_first_or_last_is_picked():
    evidence = _evidence(
        Lena_Voss="Lena Voss (born 4 March 1931) is a painter from Tarn.",
        Tomas_Arvid="Tomas Arvid (12 January 1931 – 1990) was a printer.",
        Kestrel_Bay="Kestrel Bay is a port town where many painters were born in 1931.",
    )
    older = compare("Who is older, Lena Voss or Tomas Arvid?", evidence)
    assert older.picked == "Tomas Arvid"  # the same year: January before March
    assert [s.number for s in older.sides] == [1, 2]
    assert compare("Who was born later, Lena Voss or Tomas Arvid?", evidence).picked == "Lena Voss"
    # a tie the dates cannot break, a side with no passage, or no date: no decision
    tied = _evidence(A_Lind="A Lind (born 1931) is a poet.", B_Holm="B Holm (born 1931) is a poet.")
    assert compare("Who is older, A Lind or B Holm?", tied) is None
    assert compare("Who is older, Lena Voss or Ines Marr?", evidence) is None
    assert compare("Who died first, Lena Voss or Tomas Arvid?", evidence) is None
    assert compare("Which is a painter, Lena Voss or Tomas Arvid?", evidence) is None


def test_a_comparison_through_a_hop_compares_what_each_side_leads_to():
    question = "Which film has the director who was born first, The Low Tide or Salt and Ember?"
    assert through(question) == "director"
    assert through("Who is older, Lena Voss or Tomas Arvid?") is None
    evidence = _evidence(
        The_Low_Tide="The Low Tide is a 1958 film directed by Ansel Brandt.",
        Salt_and_Ember="Salt and Ember is a 1949 film directed by Lena Voss.",
        Ansel_Brandt="Ansel Brandt (1901 – 1980) was a film director.",
        Lena_Voss="Lena Voss (born 1912) is a film director.",
    )
    # without the directors read, the films' own years decide nothing
    assert compare(question, evidence) is None
    leads = {"Low Tide": "Ansel Brandt", "Salt and Ember": "Lena Voss"}  # as offered
    decided = compare(question, evidence, leads)
    assert decided.picked == "Low Tide" and [s.number for s in decided.sides] == [3, 4]


def test_whether_two_sides_are_from_the_same_country_is_read_from_their_first_sentences():
    evidence = _evidence(
        Lena_Voss="Lena Voss (born 1931) was a Vardish painter. She lived in Tarn.",
        Tomas_Arvid="Tomas Arvid was a Vardish printer and publisher.",
        Ines_Marr="Ines Marr is a Kestrelian poet who lives in Vardland.",
        Holm="Holm is a village in Tarn County, in the north of Vardland.",
        Ostby="Ostby is a small town on the coast of Kestrelia.",
    )
    same = compare("Were Lena Voss and Tomas Arvid of the same nationality?", evidence)
    assert same.picked == "yes" and [s.value for s in same.sides] == ["vardish", "vardish"]
    other = compare("Is Lena Voss of the same nationality as Ines Marr?", evidence)
    assert other.picked == "no" and other.sides[1].sentence.startswith("Ines Marr is a Kestrelian")
    # a place: the last name of its first sentence, where it lies
    places = compare("Are Holm and Ostby located in the same country?", evidence)
    assert places.picked == "no" and [s.value for s in places.sides] == ["vardland", "kestrelia"]
    # not asked of a country, a side with no passage, or a side named by what it leads to
    assert compare("Are Lena Voss and Tomas Arvid both painters?", evidence) is None
    assert compare("Are Lena Voss and Ada Holt from the same country?", evidence) is None
    assert (
        compare("Are the director of film Holm and Ostby from the same country?", evidence) is None
    )


def test_the_side_the_question_describes_is_the_one_whose_passage_says_it():
    evidence = _evidence(
        Salt_and_Ember="Salt and Ember is a documentary about the river towns of Vardland and "
        "their ferrymen.",
        The_Low_Tide="The Low Tide is a drama film set in a mountain village.",
        Kestrel="Kestrel is a band of five members. It formed in Tarn.",
        Tarn_Mills="Tarn Mills is a band of four members.",
    )
    question = (
        "Which documentary is about river towns and ferrymen, Salt and Ember or The Low Tide?"
    )
    decided = compare(question, evidence)
    assert decided.picked == "Salt and Ember" and decided.sides[0].value > decided.sides[1].value
    # how much or how many is not said by words; nor is a side with no passage of its own
    assert compare("Which band has more members, Kestrel or Tarn Mills?", evidence) is None
    assert compare("Which film is about ferrymen, Salt and Ember or Ada Holt?", evidence) is None
    # both passages say as much of it: no decision
    close = "Which is a band, Kestrel or Tarn Mills?"
    assert compare(close, evidence) is None


# A made-up library: two films, each directed by someone with a passage of their own.
LIBRARY = {
    "The Low Tide": "The Low Tide is a 1958 drama film directed by Ansel Brandt.",
    "Salt and Ember": "Salt and Ember is a 1949 drama film directed by Lena Voss.",
    "Ansel Brandt": "Ansel Brandt (4 March 1901 – 1980) was a Vardish painter and stage designer.",
    "Lena Voss": "Lena Voss (born 12 May 1912) is a Kestrelian stage designer from Vardholm.",
}


@pytest.fixture
def assistant(store, tmp_path):
    index_paths(store, [write_notes(tmp_path / "notes", LIBRARY)])

    def make(llm):
        settings = load_settings(
            None, env={}, flags={"search.backend": "none", "research.planner": "none"}
        )
        return Assistant(store, llm, ModelInfo(name="scripted", backend="test"), settings)

    return make


async def _done(assistant, question) -> tuple[AnswerDone, list]:
    events = [event async for event in assistant.ask(question, use_web=False, seed=1)]
    await assistant.aclose()
    return next(e for e in events if isinstance(e, AnswerDone)), events


async def test_the_reader_shows_the_side_the_dates_decide_with_both_dates_quoted(assistant):
    llm = ScriptedLLM(["Lena Voss"])  # the model's own reading: the wrong side
    done, _ = await _done(assistant(llm), "Who was born first, Lena Voss or Ansel Brandt?")
    brandt = [s["title"] for s in done.sources].index("Ansel Brandt") + 1
    assert done.short_answer == "Ansel Brandt" and done.text.startswith(f"Ansel Brandt [{brandt}].")
    assert "(born 12 May 1912)" in done.text and "(4 March 1901 – 1980)" in done.text
    verification = done.verification
    assert verification["picked_by"] == "comparison"
    assert verification["compared"]["picked"] == "Ansel Brandt"
    assert verification["candidates"][verification["shown"]]["text"] == "Ansel Brandt"
    assert verification["candidates"][0]["text"] == "Lena Voss"  # the model's own, kept


async def test_a_comparison_through_a_hop_reads_each_sides_director_first(assistant):
    question = "Which film has the director who was born first, Salt and Ember or The Low Tide?"
    llm = ScriptedLLM(["Lena Voss", "Ansel Brandt", "Salt and Ember"])
    done, events = await _done(assistant(llm), question)
    assert [c.purpose for c in events if isinstance(c, LLMCall)] == ["hop", "hop", "read"]
    asked = [call["messages"][-1]["content"] for call in llm.calls]
    assert "Question: Who is the director of Salt and Ember?" in asked[0]
    assert "Question: Who is the director of Low Tide?" in asked[1]  # as offered
    # the elder director's passage shares no word with the question: searched for by name
    searched = [e.query for e in events if isinstance(e, SearchIssued) and e.source == "bridge"]
    assert searched == ["Ansel Brandt born"]
    assert done.short_answer == "Low Tide"  # as offered: its director, born 1901, is older
    assert done.verification["picked_by"] == "comparison"
    assert [h["answer"] for h in done.verification["hops"]] == ["Lena Voss", "Ansel Brandt"]
    assert "directed by Ansel Brandt" in done.text and "(4 March 1901 – 1980)" in done.text
    titles = [s["title"] for s in done.sources]
    film, director = titles.index("The Low Tide") + 1, titles.index("Ansel Brandt") + 1
    assert done.text.startswith(f"Low Tide [{film}][{director}].")  # the film, then its date


async def test_a_regenerate_or_an_undecided_comparison_keeps_the_models_reading(assistant):
    llm = ScriptedLLM(["Lena Voss"])  # no death date for her: the dates decide nothing
    done, _ = await _done(assistant(llm), "Who died first, Lena Voss or Ansel Brandt?")
    assert done.short_answer == "Lena Voss" and done.verification["picked_by"] == "reader"
    assert "compared" not in done.verification


async def test_an_active_reward_model_says_how_sure_it_is_of_a_decided_comparison(store, tmp_path):
    index_paths(store, [write_notes(tmp_path / "notes", LIBRARY)])
    # it would rank the model's own reading first; the dates still decide, and it says how
    # sure it is of the side they decided
    picker = RewardModel(weights={"greedy": 5.0}, bias=-1.0, threshold=0.5, ranks=True)
    picker.save(tmp_path / "reward.json")
    info = ModelInfo(name="scripted", backend="test", reward_path=str(tmp_path / "reward.json"))
    settings = load_settings(
        None, env={}, flags={"search.backend": "none", "research.planner": "none"}
    )
    assistant = Assistant(store, ScriptedLLM(["Lena Voss"]), info, settings)
    done, _ = await _done(assistant, "Who was born first, Lena Voss or Ansel Brandt?")
    v = done.verification
    assert done.short_answer == "Ansel Brandt" and v["picked_by"] == "comparison"
    assert v["confidence"] == pytest.approx(probability(-1.0), abs=1e-3)
    assert v["not_sure"] is True


async def test_a_yes_or_no_the_first_sentences_decide_is_shown_with_both(assistant):
    llm = ScriptedLLM(["yes"])  # the model's own reading; the two are from different places
    done, _ = await _done(assistant(llm), "Were Lena Voss and Ansel Brandt from the same country?")
    assert done.short_answer == "no" and done.verification["picked_by"] == "comparison"
    assert "Kestrelian stage designer" in done.text and "was a Vardish painter" in done.text
