"""End to end with the real default model: over the local HTTP server, over an indexed
library, and over a library of made-up paragraphs where each question needs two of them."""

from __future__ import annotations

import pytest

from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.research.assistant import Assistant
from sleuth.agent.research.events import (
    AnswerDone,
    EvidenceChosen,
    LLMCall,
    PageFetched,
    RunFinished,
    StepFailed,
)
from sleuth.agent.research.kinds import asked_kind, of_kind
from sleuth.agent.tools.library import index_paths
from sleuth.agent.tools.search import make_search
from sleuth.store.settings import load_settings

pytestmark = pytest.mark.slow


def agent_for(store, llm, **flags):
    settings = load_settings(None, env={}, flags=flags)
    info = ModelInfo(name=llm.name, backend="llama.cpp", base_path=str(llm.model_path))
    return Assistant(store, llm, info, settings, search=make_search(settings))


async def run(agent, question, **kwargs):
    events = [e async for e in agent.ask(question, seed=1, **kwargs)]
    await agent.aclose()
    return events


async def test_real_model_researches_the_web_server(store, web, real_llm):
    agent = agent_for(
        store,
        real_llm,
        **{
            "search.backend": "searxng",
            "search.searxng_url": web.base,
            "network.allow_private_hosts": True,
            "research.max_rounds": 2,
        },
    )
    events = await run(agent, "Who founded the city of Lyon?")
    finished = next(e for e in events if isinstance(e, RunFinished))
    assert finished.status == "done", finished.error
    fetched = {e.url for e in events if isinstance(e, PageFetched)}
    assert web.url("/articles/lyon.html") in fetched
    answer = next(e for e in events if isinstance(e, AnswerDone))
    assert answer.text.strip()
    stored = store.runs.answer(answer.answer_id)
    assert stored.completion_tokens > 0 and stored.model_name == real_llm.name
    assert "Lucius Munatius Plancus" in stored.messages[-1]["content"]  # evidence reached it
    # Every citation left in the text points at real evidence.
    numbers = {n for c in answer.citations for n in c["numbers"]}
    assert numbers <= set(range(1, len(answer.sources) + 1))
    assert finished.llm_calls >= 2 and not [
        e for e in events if isinstance(e, StepFailed) and e.action != "fetch"
    ]


async def test_real_model_researches_an_indexed_library(store, real_llm, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "tides.md").write_text(
        "# Tides\n\nTides are caused mainly by the gravity of the Moon."
    )
    (notes / "bread.md").write_text("# Bread\n\nBread is made from flour, water and yeast.")
    index_paths(store, [notes])
    agent = agent_for(store, real_llm, **{"search.backend": "none"})
    events = await run(agent, "What causes tides?")
    answer = next(e for e in events if isinstance(e, AnswerDone))
    assert answer.sources[0]["uri"].endswith("tides.md")
    assert next(e for e in events if isinstance(e, RunFinished)).status == "done"


# A small made-up world of the shape of a two-step question: the first paragraph names the
# bridge (a person, a place) the question never says, the second holds the answer; the rest
# share words with the questions without answering them.
PARAGRAPHS = {
    "Salt and Ember": "Salt and Ember is a 1947 drama film starring Maren Holt as the lighthouse "
    "keeper Nell Farrow. It was shot on the northern coast.",
    "Maren Holt": "Maren Holt was an actress and later a diplomat. She served as Surveyor "
    "General of the Northern Isles from 1970 to 1976.",
    "Copper Bridge": "Copper Bridge is a 1961 novel by the writer Ilse Maran. It is set in a "
    "river town during a long winter.",
    "Ilse Maran": "Ilse Maran was a novelist born in the port city of Varnholm in 1927.",
    "Varnholm": "Varnholm is a port city on the eastern coast, known for its shipyards.",
    "Northern Isles": "The Northern Isles are a group of islands with a population of 20,000.",
    "Lighthouse keepers": "Lighthouse keepers tended lamps on remote coasts before automation.",
    "Drama films of 1947": "Many drama films of 1947 were shot in studios rather than on coasts.",
    "River towns": "River towns grew along trade routes; many have a copper bridge.",
    "Winter novels": "Winter novels are set in a long winter, often in a small town.",
}
QUESTIONS = [
    (
        "What position was held by the actress who played Nell Farrow in Salt and Ember?",
        {"Salt and Ember", "Maren Holt"},
    ),
    (
        "In which city was the author of the novel Copper Bridge born?",
        {"Copper Bridge", "Ilse Maran"},
    ),
]


async def test_multi_hop_questions_find_both_supporting_paragraphs(store, real_llm, tmp_path):
    library = tmp_path / "world"
    library.mkdir()
    for number, (title, text) in enumerate(PARAGRAPHS.items()):
        (library / f"p{number}.md").write_text(f"# {title}\n\n{text}\n")
    assert index_paths(store, [library]).indexed == len(PARAGRAPHS)
    agent = agent_for(store, real_llm, **{"search.backend": "none"})
    found = needed = 0
    for question, supporting in QUESTIONS:
        events = [e async for e in agent.ask(question, seed=1)]
        evidence = next(e for e in events if isinstance(e, EvidenceChosen))
        titles = {item["title"] for item in evidence.items}
        hits = len(supporting & titles)
        assert hits >= 1, (question, titles)
        found, needed = found + hits, needed + len(supporting)
    await agent.aclose()
    assert found / needed >= 0.75  # both of each pair are among the passages the writer sees


# Each hop kind over the made-up library: "the R of NAME", "NAME's R", "the NOUN who ...".
HOPS = {
    "Ferrow Gate": "Ferrow Gate is a 1953 mystery film directed by Anika Sollberg. It was "
    "filmed in a harbour town.",
    "Anika Sollberg": "Anika Sollberg was a film director. She was born in Tarnwick in 1911 "
    "and died in Lisvale in 1980.",
    "Tomas Arvid": "Tomas Arvid was a sea captain. His wife was the painter Lena Voss.",
    "Lena Voss": "Lena Voss was a painter. She was born on 4 March 1931 in Orrin Bay.",
    "Tarnwick": "Tarnwick is a mill town on the river Senna.",
    "Harbour towns": "Harbour towns were born of fishing; many had a film house by 1953.",
}
HOP_QUESTIONS = [  # question, the bridge, the answer (None: any of the kind, or none)
    ("In which town was the director of film Ferrow Gate born?", "Anika Sollberg", None),
    ("When was Tomas Arvid's wife born?", "Lena Voss", "4 March 1931"),
    (
        "What position was held by the actress who played Nell Farrow in Salt and Ember?",
        "Maren Holt",
        None,
    ),
]


async def test_the_real_model_reads_each_kind_of_hop_in_order(store, real_llm, tmp_path):
    library = tmp_path / "hops"
    library.mkdir()
    for number, (title, text) in enumerate({**PARAGRAPHS, **HOPS}.items()):
        (library / f"h{number}.md").write_text(f"# {title}\n\n{text}\n")
    index_paths(store, [library])
    agent = agent_for(store, real_llm, **{"search.backend": "none"})
    for question, bridge, answer in HOP_QUESTIONS:
        events = [e async for e in agent.ask(question, seed=1)]
        hop = next(e for e in events if isinstance(e, LLMCall) and e.purpose == "hop")
        assert hop.output.strip() == bridge, question  # the first step, read on its own
        done = next(e for e in events if isinstance(e, AnswerDone))
        if answer is not None:
            assert done.short_answer == answer
        # never the bridge itself, never another kind than the question asks for
        assert done.short_answer != bridge
        assert of_kind(done.short_answer or "", asked_kind(question)) or not done.short_answer
        if done.short_answer:  # both steps quoted: the sentence naming the bridge first
            assert done.verification["hops"][0]["answer"] == bridge
            assert done.text.index(bridge) < done.text.index(done.short_answer, 1)
    await agent.aclose()


# Comparisons the sides' passages decide (compare.py), directly and through each film's
# director, over the same made-up library and two more passages.
COMPARED = {
    "Orrin Bay Lights": "Orrin Bay Lights is a 1941 drama film directed by Ilse Marten.",
    "Ilse Marten": "Ilse Marten (born 2 June 1920) was a Vardish film director and writer.",
}
COMPARISONS = [  # question, the answer, the bridges read (each side's director)
    ("Who was born later, Anika Sollberg or Lena Voss?", "Lena Voss", []),
    (
        "Which film has the director who was born first, Ferrow Gate or Orrin Bay Lights?",
        "Ferrow Gate",
        ["Anika Sollberg", "Ilse Marten"],
    ),
]


async def test_the_real_model_answers_comparisons_the_passages_decide(store, real_llm, tmp_path):
    library = tmp_path / "compared"
    library.mkdir()
    for number, (title, text) in enumerate({**PARAGRAPHS, **HOPS, **COMPARED}.items()):
        (library / f"c{number}.md").write_text(f"# {title}\n\n{text}\n")
    index_paths(store, [library])
    agent = agent_for(store, real_llm, **{"search.backend": "none"})
    for question, answer, bridges in COMPARISONS:
        events = [e async for e in agent.ask(question, seed=1)]
        done = next(e for e in events if isinstance(e, AnswerDone))
        assert done.short_answer == answer, question
        assert done.verification["picked_by"] == "comparison"
        hops = [e.output.strip() for e in events if isinstance(e, LLMCall) and e.purpose == "hop"]
        assert hops == bridges
        assert done.verification["citations"] >= 2  # each side's date, cited
    await agent.aclose()
