"""The recorder stores a run from its event stream alone; a reader that leaves mid-run, or a
process killed mid-run, loses nothing already recorded."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap

from sleuth.agent.research.events import (
    AnswerDone,
    EvidenceChosen,
    LLMCall,
    PageFetched,
    PlanReady,
    RunFinished,
    RunStarted,
    SearchDone,
    SearchIssued,
    Token,
)
from sleuth.agent.research.recorder import Recorder
from sleuth.store import Store
from tests.agent.test_research import PLAN, assistant_for, settings_for
from tests.fakes import ScriptedLLM

ITEM = {
    "number": 1,
    "uri": "/notes/lyon.md",
    "title": "Lyon",
    "text": "Lyon was founded by Plancus.",
    "snippet": "Lyon was founded by Plancus.",
    "subquestion": "Who founded Lyon?",
    "score": 0.2,
}


async def hand_made_run():
    """What a research loop emits, written by hand: no loop, no model, no web."""
    yield RunStarted(question="Who founded Lyon?", model="scripted", settings={"x": 1})
    yield PlanReady(1, [{"question": "Who founded Lyon?", "tool": "search_library", "query": "q"}])
    yield SearchIssued("q", "search_library", 0)
    yield SearchDone("q", "search_library", 0, [{"title": "Lyon", "uri": ITEM["uri"]}])
    yield EvidenceChosen([ITEM], tokens=12)
    yield LLMCall("write", 100, 7, 0, 0.5)
    for word in ["Plancus ", "[1]."]:
        yield Token(word)
    yield AnswerDone(
        text="Plancus [1].",
        citations=[{"numbers": [1], "supported": True}],
        verification={"citations": 1},
        sources=[{"number": 1, "title": "Lyon", "uri": ITEM["uri"]}],
        messages=[{"role": "user", "content": "Question: Who founded Lyon?"}],
        sampling={"seed": 3},
        model_name="scripted",
        completion_tokens=7,
    )
    yield RunFinished("done", 1.0, 1, 107, 0, 9)


async def test_every_step_of_a_run_is_stored_from_the_events_alone(store):
    received = [e async for e in Recorder(store).record(hand_made_run(), cancel=lambda: None)]
    started, finished = received[0], received[-1]
    assert started.run_id and started.session_id and started.turn_id
    run = store.runs.run(started.run_id)
    assert run.status == "done" and run.settings == {"x": 1}
    assert run.plan["subquestions"][0]["query"] == "q"
    steps = store.runs.steps(run.id)
    assert [s.kind for s in steps] == [e.kind for e in received if not isinstance(e, Token)]
    assert steps[5].tokens_in == 100 and steps[5].tokens_out == 7  # the model call's costs
    (evidence,) = store.runs.evidence(run.id)
    assert (evidence.number, evidence.text, evidence.score) == (1, ITEM["text"], 0.2)
    answer = store.runs.answer(finished.answer_id)
    assert answer.run_id == run.id and answer.text == "Plancus [1]."
    assert answer.messages[0]["content"].startswith("Question:") and answer.sampling["seed"] == 3
    assert store.runs.turn(started.turn_id).question == "Who founded Lyon?"
    # What consumers got carries the ids the database gave.
    done = next(e for e in received if isinstance(e, AnswerDone))
    assert done.answer_id == finished.answer_id and done.run_id == finished.run_id == run.id


async def test_a_reader_that_leaves_mid_run_cancels_it_and_the_steps_so_far_are_kept(store, web):
    llm = ScriptedLLM([PLAN, ScriptedLLM.UNTIL_CANCELLED])  # a writer that never ends
    assistant = assistant_for(store, llm, settings_for(web))
    stream = assistant.ask("Who founded Lyon?")
    kinds = []
    async for event in stream:
        kinds.append(event.kind)
        if isinstance(event, PageFetched):
            break  # the reader goes away (a closed window, a broken pipe)
    await stream.aclose()
    (session,) = store.runs.history()
    run = store.runs.runs(session.turns[0].id)[0]
    steps = [s.kind for s in store.runs.steps(run.id)]
    assert steps[: len(kinds)] == kinds  # everything the reader saw was stored first
    assert steps[-1] == "run_finished" and run.status == "cancelled"
    await assistant.aclose()


async def test_a_reader_cancelled_mid_run_leaves_a_cancelled_run(store, web):
    web.delays["/articles/rhone.html"] = 20
    assistant = assistant_for(store, ScriptedLLM([PLAN]), settings_for(web))
    seen = asyncio.Event()

    async def reader():
        async for event in assistant.ask("Where does the Rhône flow?"):
            if isinstance(event, SearchDone):
                seen.set()

    task = asyncio.create_task(reader())
    await asyncio.wait_for(seen.wait(), 20)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    run = store.runs.runs(store.runs.history()[0].turns[0].id)[0]
    assert run.status == "cancelled"
    assert {"run_started", "plan_ready", "search_done", "run_finished"} <= {
        s.kind for s in store.runs.steps(run.id)
    }
    await assistant.aclose()


KILLED_RUN = textwrap.dedent(
    """
    import asyncio, sys
    from sleuth.store import Store
    from tests.agent.test_research import PLAN, assistant_for, settings_for
    from tests.fakes import ScriptedLLM

    class Web:  # the test's server, by address
        base = sys.argv[2]

    async def main():
        store = Store.open(sys.argv[1])
        llm = ScriptedLLM([PLAN, ScriptedLLM.UNTIL_CANCELLED])  # a writer that never ends
        assistant = assistant_for(store, llm, settings_for(Web))
        async for event in assistant.ask("Who founded Lyon?"):
            if event.kind == "token":
                print("writing", flush=True)

    asyncio.run(main())
    """
)


def test_a_process_killed_mid_run_keeps_every_step_it_recorded(tmp_path, web):
    path = tmp_path / "killed.db"
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, str(path), web.base],
        stdout=subprocess.PIPE,
        text=True,
        cwd=os.getcwd(),
    )
    assert process.stdout.readline().strip() == "writing"  # mid-answer
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    store = Store.open(path)
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    run = store.runs.runs(store.runs.history()[0].turns[0].id)[0]
    kinds = [s.kind for s in store.runs.steps(run.id)]
    assert kinds[0] == "run_started" and "page_fetched" in kinds
    assert kinds[-1] == "evidence_chosen"  # every step up to the answer in flight
    assert len(store.runs.evidence(run.id)) > 0
    store.close()
