"""The research loop's logic with a scripted LLM, over a real local HTTP server and store (the
recorder stores what it emits): plans, budgets, failures, cancel, reflection, citation repair,
sessions, regenerate, security."""

from __future__ import annotations

import asyncio
import time

import pytest

from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.research.assistant import Assistant
from sleuth.agent.research.events import (
    AnswerDone,
    BudgetExhausted,
    EvidenceChosen,
    PageFetched,
    PlanReady,
    RunFinished,
    SearchDone,
    StepFailed,
    Token,
)
from sleuth.agent.tools.library import index_paths
from sleuth.agent.tools.search import make_search
from sleuth.store.settings import load_settings
from tests.fakes import ScriptedLLM

ENOUGH = {"enough": True, "new_queries": [], "follow_links": []}
PLAN = {
    "subquestions": [
        {"question": "Who founded Lyon?", "tool": "web_search", "query": "Lyon founder Plancus"}
    ]
}


def settings_for(web, **flags):
    """Settings for a scripted run against the local server. These tests script whole written
    answers (research.answer = write); the reader is tested in test_reader.py."""
    base = {
        "research.answer": "write",
        "search.backend": "searxng",
        "search.searxng_url": web.base,
        "network.allow_private_hosts": True,
        "network.fetch_timeout_s": 3,
        "research.max_rounds": 1,
    }
    base.update(flags)
    return load_settings(None, env={}, flags=base)


def assistant_for(store, llm, settings):
    """The research loop over a scripted model, recorded into `store`."""
    return Assistant(
        store,
        llm,
        ModelInfo(name="scripted", backend="test"),
        settings,
        search=make_search(settings),
    )


async def collect(stream):
    return [event async for event in stream]


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


async def test_a_run_plans_searches_reads_and_writes_a_cited_answer(store, web):
    llm = ScriptedLLM(
        [PLAN, "Lyon was founded by Lucius Munatius Plancus in 43 BC [1]. See also [12]."]
    )
    agent = assistant_for(store, llm, settings_for(web))
    events = await collect(agent.ask("Who founded the city of Lyon?", seed=5))
    await agent.aclose()

    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert kinds.index("plan_ready") < kinds.index("search_issued") < kinds.index("page_fetched")
    assert kinds.index("evidence_chosen") < kinds.index("answer_done")
    plan = of(events, PlanReady)[0]
    # The question itself is always searched, then the model's sub-questions.
    assert [s["query"] for s in plan.subquestions] == [
        "Who founded the city of Lyon?",
        "Lyon founder Plancus",
    ]
    assert {e.url for e in of(events, PageFetched)} >= {web.url("/articles/lyon.html")}
    assert "".join(t.text for t in of(events, Token)).startswith("Lyon was founded")

    answer = of(events, AnswerDone)[0]
    assert answer.text == "Lyon was founded by Lucius Munatius Plancus in 43 BC [1]. See also."
    assert answer.verification["dangling_removed"] == 1
    finished = of(events, RunFinished)[0]
    assert finished.status == "done" and finished.answer_id == answer.answer_id

    # Everything was persisted: the answer with the exact writer messages, the evidence it saw.
    stored = store.runs.answer(answer.answer_id)
    assert stored.messages == llm.calls[-1]["messages"]
    assert stored.sampling["seed"] == 5
    evidence = store.runs.evidence(finished.run_id)
    assert len(evidence) == len(of(events, EvidenceChosen)[0].items) > 0
    assert evidence[0].title in stored.messages[-1]["content"]
    steps = store.runs.steps(finished.run_id)
    assert [s.kind for s in steps] == [k for k in kinds if k != "token"]
    plan = store.runs.run(finished.run_id).plan
    assert plan["subquestions"][1]["query"] == "Lyon founder Plancus"


async def test_failures_are_recorded_and_the_run_goes_on(store, web):
    llm = ScriptedLLM([PLAN, "Lyon was founded by Plancus [1]."])
    flags = {"network.fetch_timeout_s": 0.5, "research.pages_per_query": 4}
    agent = assistant_for(store, llm, settings_for(web, **flags))
    agent.search.search = _results(
        web, ["/status/404", "/delay/3000/lyon", "/articles/lyon.html", "/loop/a"]
    )
    events = await collect(agent.ask("Who founded Lyon?"))
    failures = {e.target.rsplit("/", 1)[-1]: e.error for e in of(events, StepFailed)}
    assert failures == {"404": "HTTP 404", "lyon": "timed out after 0.5 s", "a": "redirect loop"}
    assert of(events, RunFinished)[0].status == "done"
    steps = store.runs.steps(of(events, RunFinished)[0].run_id)
    assert steps[-1].kind == "run_finished"
    assert sum(1 for s in steps if s.status == "failed") == 3


def _results(web, paths):
    from sleuth.agent.tools.search import SearchResult

    async def search(query, max_results):
        return [SearchResult(p, web.url(p), "") for p in paths]

    return search


async def test_page_budget_stops_fetching_but_the_answer_is_still_written(store, web):
    # Which two pages are read is a race, so the first answer may not be supported by [1]:
    # then it is written again, and failing again, quoted. An answer is written either way.
    llm = ScriptedLLM([PLAN, "Plancus [1].", "Plancus [1]."])
    agent = assistant_for(store, llm, settings_for(web, **{"research.max_pages": 2}))
    events = await collect(agent.ask("Who founded Lyon and where does the Rhône flow?"))
    assert len(of(events, PageFetched)) == 2
    assert "page budget" in of(events, BudgetExhausted)[0].reason
    assert of(events, AnswerDone) and of(events, RunFinished)[0].pages == 2


class SlowPlanner(ScriptedLLM):
    """Each call takes 20 ms: a run's 1 ms budget is surely spent once the plan is made (an
    instant scripted plan could leave the first search inside it on a fast machine)."""

    def chat(self, *args, **kwargs):
        time.sleep(0.02)
        return super().chat(*args, **kwargs)


async def test_a_run_out_of_time_before_any_search_says_so_and_writes_nothing(store, web):
    llm = SlowPlanner([PLAN])  # no writer output is queued: the writer must not be called
    agent = assistant_for(store, llm, settings_for(web, **{"research.max_seconds": 0.001}))
    events = await collect(agent.ask("Who founded Lyon?"))
    assert "time budget" in of(events, BudgetExhausted)[0].reason
    assert of(events, PageFetched) == [] and web.seen() == []
    assert of(events, EvidenceChosen)[0].items == [] and of(events, AnswerDone) == []
    finished = of(events, RunFinished)[0]
    assert finished.status == "no_evidence" and "before any search" in finished.error
    assert "--budget seconds" in finished.error
    assert store.runs.run(finished.run_id).status == "no_evidence"


async def test_no_evidence_means_no_answer_and_a_reason_to_act_on(store, web, tmp_path):
    llm = ScriptedLLM([PLAN])  # the writer must not be called
    agent = assistant_for(store, llm, settings_for(web))
    agent.search.search = _results(web, ["/status/404", "/status/503"])
    events = await collect(agent.ask("Who wrote the novel Dune?"))
    finished = of(events, RunFinished)[0]
    assert finished.status == "no_evidence" and of(events, AnswerDone) == []
    assert "none of the 2 page(s) found could be read (HTTP 404; HTTP 503)" in finished.error
    assert [c["messages"][0]["role"] for c in llm.calls] == ["system"]  # only the plan


async def test_unusable_plan_falls_back_to_searching_the_question(store, web):
    llm = ScriptedLLM(["this is not json", "Plancus founded Lyon [1]."])
    agent = assistant_for(store, llm, settings_for(web))
    events = await collect(agent.ask("Who founded Lyon?"))
    plan = of(events, PlanReady)[0]
    assert plan.fallback and [s["query"] for s in plan.subquestions] == ["Who founded Lyon?"]
    assert of(events, StepFailed)[0].action == "plan"
    assert of(events, PageFetched) and of(events, AnswerDone)


async def test_reflection_adds_queries_and_follows_links_found_in_pages(store, web):
    reflection = {
        "enough": False,
        "new_queries": [{"tool": "web_search", "query": "Eiffel tower"}],
        "follow_links": [1],
    }
    llm = ScriptedLLM([PLAN, reflection, "Plancus founded Lyon [1]."])
    agent = assistant_for(
        store, llm, settings_for(web, **{"research.max_rounds": 2, "research.pages_per_query": 1})
    )
    agent.search.search = _results(web, ["/articles/lyon.html"])
    events = await collect(agent.ask("Who founded Lyon?"))
    followed = [e for e in of(events, PageFetched) if e.via == "follow_link"]
    assert [e.url for e in followed] == [web.url("/articles/rhone.html")]  # the link on lyon.html
    rounds = [e.round for e in of(events, PlanReady)]
    assert rounds == [1, 2]
    reflect_prompt = llm.calls[1]["messages"][1]["content"]
    assert "1. " + web.url("/articles/rhone.html") in reflect_prompt


async def test_injected_instructions_in_a_page_change_nothing_the_agent_may_do(store, web):
    # The reflection model "obeys" the page and asks for the metadata link it offered.
    def obey(messages):
        links = messages[1]["content"].split("Links found in the pages read:\n", 1)[1].splitlines()
        number = next(i for i, line in enumerate(links, 1) if "169.254.169.254" in line)
        return {"enough": False, "new_queries": [], "follow_links": [number]}

    llm = ScriptedLLM([PLAN, obey, "Lyon was founded by Plancus [1].", "Plancus [1]."])
    agent = assistant_for(store, llm, settings_for(web, **{"research.max_rounds": 2}))
    agent.search.search = _results(web, ["/injection.html"])
    events = await collect(agent.ask("Who founded Lyon?"))
    refused = [e for e in of(events, StepFailed) if "169.254.169.254" in e.target]
    assert refused and "metadata" in refused[0].error
    assert not any("169.254" in e.url for e in of(events, PageFetched))
    # The page text reached the writer only as numbered evidence.
    writer_prompt = llm.calls[-1]["messages"]
    assert "IMPORTANT SYSTEM NOTICE" not in writer_prompt[0]["content"]


async def test_local_only_sends_nothing_off_the_machine(store, web, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lyon.md").write_text("# Lyon\n\nLyon was founded by Plancus.")
    index_paths(store, [notes])
    llm = ScriptedLLM([PLAN, "Plancus [1]."])
    agent = assistant_for(store, llm, settings_for(web, **{"network.local_only": True}))
    events = await collect(agent.ask("Who founded Lyon?"))
    assert web.seen() == []
    plan = of(events, PlanReady)[0]
    assert {s["tool"] for s in plan.subquestions} == {"search_library"}
    assert of(events, AnswerDone)[0].sources[0]["uri"].endswith("lyon.md")


async def test_nothing_to_search_fails_with_a_clear_message(store, web):
    agent = assistant_for(store, ScriptedLLM([]), settings_for(web, **{"search.backend": "none"}))
    events = await collect(agent.ask("Who founded Lyon?"))
    finished = of(events, RunFinished)[0]
    assert finished.status == "failed" and "Nothing to search" in finished.error
    assert store.runs.run(finished.run_id).status == "failed"


async def test_cancel_stops_quickly_and_keeps_what_was_found(store, web):
    llm = ScriptedLLM([PLAN])
    agent = assistant_for(store, llm, settings_for(web, **{"network.fetch_timeout_s": 30}))
    agent.search.search = _results(web, ["/articles/lyon.html", "/delay/20000/rhone"])
    events = []
    async for event in agent.ask("Who founded Lyon?"):
        events.append(event)
        if isinstance(event, PageFetched):  # lyon.html is in; the slow page hangs
            agent.cancel()
    finished = of(events, RunFinished)[0]
    assert finished.status == "cancelled" and finished.seconds < 10
    assert store.runs.run(finished.run_id).status == "cancelled"
    assert store.library.source_by_uri(web.url("/articles/lyon.html")) is not None
    assert store.runs.answer_for_run(finished.run_id) is None


async def test_cancel_while_writing_keeps_the_partial_text_out_of_the_answers(store, web):
    llm = ScriptedLLM([PLAN, ScriptedLLM.UNTIL_CANCELLED])
    agent = assistant_for(store, llm, settings_for(web))
    events = []
    async for event in agent.ask("Who founded Lyon?"):
        events.append(event)
        if isinstance(event, Token):
            agent.cancel()
    finished = of(events, RunFinished)[0]
    assert finished.status == "cancelled" and store.runs.answer_for_run(finished.run_id) is None
    partial = store.runs.steps(finished.run_id)[-2]
    assert partial.kind == "answer_cancelled" and partial.data["text"].startswith("word")


async def test_a_consumer_that_stops_listening_cancels_the_run(store, web):
    agent = assistant_for(store, ScriptedLLM([PLAN]), settings_for(web))
    stream = agent.ask("Who founded Lyon?")
    async for event in stream:
        if isinstance(event, SearchDone):
            break
    await stream.aclose()
    run = store.runs.runs(store.runs.turns(store.runs.history()[0].id)[0].id)[0]
    assert run.status == "cancelled"


async def test_follow_up_questions_see_the_session_and_repeat_runs_use_the_cache(store, web):
    llm = ScriptedLLM([PLAN, "Lyon was founded by Plancus [1].", PLAN, "It was 43 BC [1]."])
    agent = assistant_for(store, llm, settings_for(web))
    first = await collect(agent.ask("Who founded Lyon?"))
    session_id = store.runs.run(of(first, RunFinished)[0].run_id)
    session_id = store.runs.turn(session_id.turn_id).session_id
    requests_before = len(web.seen())
    second = await collect(agent.ask("Who founded Lyon?", session_id=session_id))
    assert (
        "Earlier in this conversation:\nQ: Who founded Lyon?"
        in llm.calls[-1]["messages"][-1]["content"]
    )
    assert all(e.cached for e in of(second, PageFetched)) and of(second, PageFetched)
    assert all(e.cached for e in of(second, SearchDone) if e.tool == "web_search")
    assert len(web.seen()) == requests_before  # nothing fetched or searched again
    assert [t.position for t in store.runs.turns(session_id)] == [1, 2]


async def test_regenerate_writes_a_new_answer_from_the_same_prompt(store, web):
    llm = ScriptedLLM([PLAN, "Plancus founded Lyon [1].", "Lyon's founder was Plancus [1]."])
    agent = assistant_for(store, llm, settings_for(web))
    first = of(await collect(agent.ask("Who founded Lyon?", seed=1)), AnswerDone)[0]
    old_run = store.runs.answer(first.answer_id).run_id
    events = await collect(agent.regenerate(old_run, seed=2))
    second = of(events, AnswerDone)[0]
    assert of(events, EvidenceChosen)[0].reused_from_run == old_run
    a, b = store.runs.answer(first.answer_id), store.runs.answer(second.answer_id)
    assert a.messages == b.messages and a.run_id != b.run_id
    assert store.runs.run(a.run_id).turn_id == store.runs.run(b.run_id).turn_id
    assert (a.sampling["seed"], b.sampling["seed"]) == (1, 2)
    assert len(llm.calls) == 3  # no new planning or searching


async def test_empty_and_huge_questions_are_refused_before_anything_is_written(store, web):
    agent = assistant_for(store, ScriptedLLM([]), settings_for(web))
    with pytest.raises(Exception, match="question was empty"):
        await collect(agent.ask("   "))
    with pytest.raises(Exception, match="99,999 characters long; a question may have at most"):
        await collect(agent.ask("why " * 25_000))
    assert store.runs.history() == []


async def test_library_restricted_to_given_roots(store, web, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x.md").write_text("# Alpha\n\nLyon rivers alpha.")
    (b / "y.md").write_text("# Beta\n\nLyon rivers beta.")
    index_paths(store, [a, b])
    llm = ScriptedLLM([{"subquestions": []}, "Alpha [1]."])
    agent = assistant_for(store, llm, settings_for(web, **{"search.backend": "none"}))
    events = await collect(agent.ask("Lyon rivers", library_roots=[str(a.resolve())]))
    uris = {r["uri"] for e in of(events, SearchDone) for r in e.results}
    assert uris == {str((a / "x.md").resolve())}


async def test_fetches_run_concurrently(store, web):
    llm = ScriptedLLM([PLAN, "Plancus [1]."])
    agent = assistant_for(store, llm, settings_for(web, **{"research.pages_per_query": 4}))
    agent.search.search = _results(
        web, [f"/delay/600/{s}" for s in ("lyon", "rhone", "eiffel", "plancus")]
    )
    started = asyncio.get_running_loop().time()
    events = await collect(agent.ask("Who founded Lyon?"))
    elapsed = asyncio.get_running_loop().time() - started
    assert len(of(events, PageFetched)) == 4
    assert elapsed < 4 * 0.6  # four 0.6 s pages, at most four at once


async def test_evidence_is_fused_best_first_with_the_question_weighing_most(store, web, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lyon.md").write_text("# Lyon\n\nLyon was founded by Plancus, a Roman senator.")
    (notes / "senate.md").write_text("# Senate\n\nThe Roman senate met in Rome. A senator served.")
    (notes / "bread.md").write_text("# Bread\n\nBread is made from flour and water.")
    index_paths(store, [notes])
    plan = {
        "subquestions": [
            {"question": "Roman senator", "tool": "search_library", "query": "Roman senator"},
            {"question": "bread flour", "tool": "search_library", "query": "bread flour"},
        ]
    }
    agent = assistant_for(
        store, ScriptedLLM([plan, "Plancus [1]."]), settings_for(web, **{"search.backend": "none"})
    )
    events = await collect(agent.ask("Who founded Lyon?"))
    items = of(events, EvidenceChosen)[0].items
    # lyon.md answers the question and also matches "Roman senator": it comes first.
    assert items[0]["uri"].endswith("lyon.md")
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert {i["uri"].rsplit("/", 1)[1] for i in items} == {"lyon.md", "senate.md", "bread.md"}
