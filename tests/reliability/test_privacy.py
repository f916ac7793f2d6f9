"""Private stays private: words from the user's files never reach a web search engine unless
the user says so (research.library_to_web). Checked at a local SearXNG-compatible server that
records every request it gets, with a real `sleuth ask` and with a scripted model that tries to
send a private code itself."""

from __future__ import annotations

import json
import os
import sqlite3
from urllib.parse import parse_qs, urlsplit

import pytest

from sleuth.agent.research.events import QueryWithheld, SearchIssued
from sleuth.agent.tools.library import index_paths
from tests.agent.test_research import assistant_for, collect, of, settings_for
from tests.fakes import ScriptedLLM
from tests.reliability.conftest import run

SECRET = "The launch code for project giraffe is TANGO-7731-ZULU."
PRIVATE_WORDS = {"tango", "7731", "zulu", "launch"}
QUESTION = "What is the giraffe project about?"


def searched(server) -> list[str]:
    """The queries the search server received, in order."""
    out = []
    for path in server.seen():
        parts = urlsplit(path)
        if parts.path.endswith("/search"):
            out += parse_qs(parts.query).get("q", [])
    return out


def leaked(queries: list[str]) -> set[str]:
    return {word for q in queries for word in q.lower().replace("-", " ").split()} & PRIVATE_WORDS


def library_of(folder, title: str, text: str):
    """A library folder holding one Markdown note."""
    folder.mkdir()
    (folder / "note.md").write_text(f"# {title}\n\n{text}\n")
    return folder


@pytest.fixture
def secret_library(tmp_path):
    return library_of(tmp_path / "lib", "Giraffe", SECRET)


@pytest.mark.slow
def test_a_real_ask_over_private_files_and_the_web_sends_no_private_word(
    web, secret_library, sleuth_home
):
    env = {
        **os.environ,
        "SLEUTH_HOME": str(sleuth_home),
        "SLEUTH_SEARCH_BACKEND": "searxng",
        "SLEUTH_SEARCH_SEARXNG_URL": web.base,
        "SLEUTH_NETWORK_ALLOWED_HOSTS": web.base.split("//")[1],
    }
    done = run("ask", "--library", str(secret_library), "--seed", "3", QUESTION, env=env)
    assert done.returncode in (0, 1), done.stderr
    queries = searched(web)
    assert queries, "the web was never searched: the test proves nothing"
    assert not leaked(queries), queries
    # The record says where each web query's words came from, and none came from the files.
    db = sqlite3.connect(sleuth_home / "data" / "sleuth.db")
    rows = db.execute("SELECT data FROM steps WHERE kind = 'search_issued'").fetchall()
    steps = [json.loads(data) for (data,) in rows]
    db.close()
    web_steps = [s for s in steps if s["tool"] == "web_search"]
    assert web_steps and all("library" not in s["words_from"] for s in web_steps)
    assert any("question" in s["words_from"] for s in web_steps)


def scripted(reflect_query: str) -> ScriptedLLM:
    """A model whose plan is harmless and whose reflection asks the web for `reflect_query`."""
    return ScriptedLLM(
        [
            {"subquestions": [{"question": QUESTION, "tool": "web_search", "query": "giraffe"}]},
            {
                "enough": False,
                "new_queries": [{"tool": "web_search", "query": reflect_query}],
                "follow_links": [],
            },
            "Project giraffe has a launch code, TANGO-7731-ZULU [1].",
        ]
    )


async def test_a_web_query_holding_a_word_from_the_files_is_withheld(store, web, secret_library):
    index_paths(store, [secret_library])
    llm = scripted("TANGO-7731-ZULU meaning")
    agent = assistant_for(store, llm, settings_for(web, **{"research.max_rounds": 2}))
    events = await collect(agent.ask(QUESTION, seed=1))
    await agent.aclose()
    assert not leaked(searched(web)) and searched(web)
    withheld = of(events, QueryWithheld)
    assert [w.query for w in withheld] == ["TANGO-7731-ZULU meaning"]
    assert withheld[0].words == 3  # tango, 7731, zulu: "meaning" is the model's own
    library_searches = [e for e in of(events, SearchIssued) if e.tool == "search_library"]
    assert any("tango" in e.query.lower() for e in library_searches)  # the files may be searched
    kinds = [row.kind for row in store.runs.steps(events[0].run_id)]
    assert "query_withheld" in kinds


async def test_library_to_web_lets_the_same_query_go_out(store, web, secret_library):
    index_paths(store, [secret_library])
    llm = scripted("TANGO-7731-ZULU meaning")
    settings = settings_for(web, **{"research.max_rounds": 2, "research.library_to_web": True})
    agent = assistant_for(store, llm, settings)
    events = await collect(agent.ask(QUESTION, seed=1))
    await agent.aclose()
    assert not of(events, QueryWithheld)
    assert "TANGO-7731-ZULU meaning" in searched(web)
    sent = [e for e in of(events, SearchIssued) if e.query == "TANGO-7731-ZULU meaning"]
    assert sent[0].words_from == {"library": ["tango", "7731", "zulu"], "model": ["meaning"]}


# -- follow-ups and spellings ---------------------------------------------------------------

LEAD_NOTE = "The project lead is Thaddeus Quimbleworth. The launch code is ZEBRA-4471-OPAL."


@pytest.fixture
def lead_library(tmp_path):
    return library_of(tmp_path / "lead", "Project notes", LEAD_NOTE)


async def test_library_words_stay_private_in_a_follow_up_question(store, web, lead_library):
    index_paths(store, [lead_library])
    first = ScriptedLLM(
        [
            {"subquestions": [{"question": "lead", "tool": "search_library", "query": "lead"}]},
            "The project lead is Thaddeus Quimbleworth [1].",
        ]
    )
    agent = assistant_for(store, first, settings_for(web))
    events = await collect(agent.ask("Who is the project lead?", seed=1))
    await agent.aclose()
    session_id = store.runs.history()[0].id
    assert "Quimbleworth" in store.runs.answers_for_turn(store.runs.turns(session_id)[0].id)[0].text

    # The follow-up's plan asks the web for the name the first answer quoted, marker and all.
    follow = ScriptedLLM(
        [
            {
                "subquestions": [
                    {"question": "who", "tool": "web_search", "query": "Thaddeus Quimbleworth [1]"},
                    {"question": "more", "tool": "web_search", "query": "giraffe history"},
                ]
            },
            "Nothing more was found [1].",
        ]
    )
    agent = assistant_for(store, follow, settings_for(web))
    events = await collect(
        agent.ask("Search the web for more about that person", session_id=session_id, seed=2)
    )
    await agent.aclose()
    sent = searched(web)
    assert sent and not any("quimbleworth" in q.lower() or "thaddeus" in q.lower() for q in sent)
    assert not any("[1]" in q for q in sent)  # no citation marker ever goes out
    withheld = of(events, QueryWithheld)
    assert [w.query for w in withheld] == ["Thaddeus Quimbleworth"]
    assert "giraffe history" in sent  # a query of public words still goes out


@pytest.mark.parametrize(
    "query",
    [
        "Zebra4471Opal",
        "ZEBRA4471",
        "\uff3a\uff25\uff22\uff32\uff21\uff0d\uff14\uff14\uff17\uff11",  # full-width ZEBRA-4471
        "Quimbleworths",
        "9,381,204",
        "9.381.204 budget",
        "ZEBRA-4471-OPAL",
        "9381204",
    ],
)
def test_a_spelling_of_a_private_word_is_still_private(query):
    from sleuth.agent.research.privacy import Boundary

    boundary = Boundary("What does the team do?")
    boundary.saw_library(LEAD_NOTE + " The budget is 9381204 crowns.")
    boundary.saw_web("A budget is a plan for spending.")
    assert boundary.withheld(query), query
    assert "library" in boundary.origins(query)


def test_public_and_asked_words_stay_sendable_in_their_spellings():
    from sleuth.agent.research.privacy import Boundary

    boundary = Boundary("Which cities does the Seine flow through?")
    boundary.saw_library("Our office is in Paris; the Seine flows past it. Code 1,204.")
    boundary.saw_web("Paris is a city on the Seine.")
    for query in ("Seine cities", "PARIS city", "does the Seine flow", "seine flows"):
        assert not boundary.withheld(query), query
    assert boundary.withheld("office 1204")
