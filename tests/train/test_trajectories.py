"""Whole runs as training data: the credit rule on hand-made runs, outcomes, and the
`trajectories` export of a run the research loop recorded."""

from __future__ import annotations

import json

import pytest

from sleuth.agent.research.events import (
    AnswerDone,
    AnswerRejected,
    EvidenceChosen,
    LLMCall,
    PlanReady,
    RunFinished,
    RunStarted,
    SearchDone,
    SearchIssued,
)
from sleuth.agent.research.recorder import Recorder
from sleuth.train.credit import (
    PROCESS_WEIGHT,
    Proposal,
    Search,
    judge_proposals,
    label,
    step_credit,
)
from sleuth.train.trajectories import load_references, outcome, trajectories, trajectory
from tests.agent.test_bridges import PASSAGE, QUESTION
from tests.agent.test_research import assistant_for, collect, settings_for
from tests.fakes import ScriptedLLM

SALT, HOLT, OTHER = "/notes/salt.md", "/notes/holt.md", "/notes/other.md"


# -- the rule, as a pure function --------------------------------------------------------------


def test_a_query_that_brought_in_cited_evidence_earns_and_a_repeated_one_costs():
    searches = [
        Search(QUESTION, frozenset({SALT})),
        Search("Maren Holt", frozenset({HOLT, SALT})),
        Search("Maren Holt career", frozenset({HOLT})),
    ]
    cited = [SALT, HOLT]
    proposals = judge_proposals(
        ["Maren Holt", "Nell Farrow Salt and Ember", "Maren Holt career"],
        QUESTION,
        [QUESTION],
        searches,
        cited,
    )
    assert proposals == [
        Proposal("Maren Holt", useful=True, repeated=False),  # first to find HOLT
        Proposal("Nell Farrow Salt and Ember", useful=False, repeated=True),  # the question
        # Adds "career", but found nothing cited that an earlier search had not found.
        Proposal("Maren Holt career", useful=False, repeated=False),
    ]
    assert step_credit(0.5, proposals) == pytest.approx(0.5 + PROCESS_WEIGHT * (1 - 1) / 3)
    assert step_credit(0.5, proposals[:1]) == pytest.approx(0.5 + PROCESS_WEIGHT)
    assert step_credit(0.5, proposals[1:2]) == pytest.approx(0.5 - PROCESS_WEIGHT)


def test_the_process_term_orders_steps_but_never_overturns_the_outcome():
    useful = [Proposal("a", useful=True, repeated=False)]
    wasted = [Proposal("b", useful=False, repeated=True)]
    assert step_credit(0.0, useful) == PROCESS_WEIGHT and label(step_credit(0.0, useful)) is False
    assert step_credit(1.0, wasted) == 1 - PROCESS_WEIGHT
    assert label(step_credit(1.0, wasted)) is True
    assert step_credit(1.0, useful) == 1.0 and step_credit(0.0, wasted) == 0.0  # clamped
    assert step_credit(0.6, []) == 0.6  # a step that proposed nothing shares the outcome
    assert label(0.5) is None


def test_a_query_run_before_the_call_is_repeated_even_when_new_to_the_question():
    (proposal,) = judge_proposals(["Maren Holt"], QUESTION, ["Maren Holt Vance"], [], [])
    assert proposal.repeated and not proposal.useful


# -- outcomes ----------------------------------------------------------------------------------

EVIDENCE = [
    {"number": 1, "uri": SALT, "text": PASSAGE},
    {
        "number": 2,
        "uri": HOLT,
        "text": "Maren Holt Vance was an American actress and diplomat. She served as "
        "Surveyor General of the Northern Isles.",
    },
]
GOOD = "Maren Holt served as Surveyor General of the Northern Isles [2]."


async def hand_made_run(store, *, plan_output, reflect_output=None, answer=GOOD, rejected=0):
    """A recorded run with the given planner output: the question, then 'Maren Holt' and
    'Nell Farrow Salt and Ember' searched; the answer cites the Holt page."""

    async def events():
        yield RunStarted(question=QUESTION, model="scripted")
        plan_messages = [{"role": "user", "content": f"Question: {QUESTION}"}]
        yield LLMCall("plan", 50, 20, 0, 0.1, output=plan_output, messages=plan_messages)
        yield PlanReady(1, [])
        for query, found in [
            (QUESTION, [SALT]),
            ("Maren Holt", [HOLT]),
            ("Nell Farrow Salt and Ember", [SALT, OTHER]),
        ]:
            yield SearchIssued(query, "search_library", 0)
            yield SearchDone(query, "search_library", 0, [{"uri": uri} for uri in found])
        if reflect_output is not None:
            messages = [{"role": "user", "content": f"Question: {QUESTION}\nreflect"}]
            yield LLMCall("reflect", 60, 10, 0, 0.1, output=reflect_output, messages=messages)
        yield EvidenceChosen([{**e, "title": e["uri"]} for e in EVIDENCE])
        for _ in range(rejected):
            yield LLMCall("write", 300, 20, 0, 0.5, output="[1] [2] [1] [2]")
            yield AnswerRejected("[1] [2] [1] [2]", ["mostly citation markers"], retrying=True)
        yield LLMCall("write", 300, 20, 0, 0.5, output=answer)
        from sleuth.agent.research.verify import verify

        checked = verify(answer, EVIDENCE)
        yield AnswerDone(
            text=checked.text,
            citations=checked.citations,
            verification=checked.verification,
            messages=[{"role": "user", "content": f"evidence\nQuestion: {QUESTION}"}],
        )
        yield RunFinished("done", 1.0, 2, 100, 0, 10)

    recorded = [e async for e in Recorder(store).record(events(), cancel=lambda: None)]
    return recorded[-1].run_id, recorded[-1].answer_id


def plan_of(*queries: str) -> str:
    return json.dumps(
        {"subquestions": [{"question": q, "tool": "search_library", "query": q} for q in queries]}
    )


async def test_a_hand_made_run_is_credited_step_by_step(store):
    run_id, answer_id = await hand_made_run(
        store,
        plan_output=plan_of("Maren Holt", "Nell Farrow Salt and Ember"),
        reflect_output="{not json",
    )
    unrated = trajectory(store, run_id)
    assert unrated.outcome.judged_by == "checks" and unrated.outcome.score == 1.0
    assert unrated.cited == [HOLT]
    store.feedback.rate(answer_id, stars=4)
    run = trajectory(store, run_id)
    assert (run.outcome.score, run.outcome.judged_by) == (0.75, "user")
    plan, reflect, write = run.calls
    assert [p.query for p in plan.proposals if p.useful] == ["Maren Holt"]
    assert [p.query for p in plan.proposals if p.repeated] == ["Nell Farrow Salt and Ember"]
    assert plan.credit == pytest.approx(0.75)  # one useful, one repeated, of two
    assert plan.messages == [{"role": "user", "content": f"Question: {QUESTION}"}]
    assert (reflect.accepted, reflect.credit) == (False, 0.0)  # not the JSON it was asked for
    assert (write.purpose, write.credit, write.output) == ("write", 0.75, GOOD)
    assert write.messages[-1]["content"].endswith(QUESTION)


async def test_a_correction_judges_the_run_by_correctness(store):
    run_id, answer_id = await hand_made_run(store, plan_output=plan_of("Maren Holt"))
    store.feedback.rate(answer_id, thumb=1, correction="Surveyor General [2].")
    run = trajectory(store, run_id)
    assert run.outcome.judged_by == "correction"
    assert 0 < run.outcome.score < 1  # the first sentence says more than the three words
    assert run.outcome.correctness["contains"] == 1.0


async def test_a_reference_enters_after_the_hard_check_gate(store, tmp_path):
    right, _ = await hand_made_run(store, plan_output=plan_of("Maren Holt"))
    wrong, _ = await hand_made_run(
        store,
        plan_output=plan_of("Maren Holt"),
        answer="Maren Holt was an American actress [2].",
    )
    path = tmp_path / "questions.jsonl"
    path.write_text(json.dumps({"question": QUESTION, "answer": "Surveyor General"}) + "\n")
    references = load_references(path)
    scored = {t.run_id: t.outcome for t in trajectories(store, references)}
    assert scored[right].judged_by == scored[wrong].judged_by == "reference"
    assert scored[right].score > scored[wrong].score >= 0.5  # both pass the checks
    assert scored[wrong].correctness == {"em": 0.0, "f1": 0.0, "contains": 0.0}
    path.write_text("not json\n")
    with pytest.raises(ValueError, match="questions.jsonl:1 is not a JSON object"):
        load_references(path)


async def test_rejected_writes_earn_nothing_and_unfinished_runs_teach_nothing(store):
    run_id, _ = await hand_made_run(store, plan_output=plan_of("Maren Holt"), rejected=1)
    first, second = [c for c in trajectory(store, run_id).calls if c.purpose == "write"]
    assert (first.accepted, first.credit) == (False, 0.0)
    assert (second.accepted, second.credit) == (True, 1.0)
    assert outcome(None, "cancelled", []).score is None
    assert (outcome(None, "no_evidence", []).score, outcome(None, "failed", []).judged_by) == (
        0.0,
        "no answer",
    )


# -- the research loop records what a trajectory needs -----------------------------------------


async def test_the_research_loop_records_what_a_trajectory_needs(store, web, tmp_path):
    from sleuth.agent.tools.library import index_paths

    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "salt.md").write_text(f"# Salt and Ember\n\n{PASSAGE}")
    (notes / "holt.md").write_text(f"# Maren Holt\n\n{EVIDENCE[1]['text']}")
    index_paths(store, [notes])
    plan = {"subquestions": [{"question": "Who?", "tool": "search_library", "query": "Holt"}]}
    reflection = {"enough": False, "new_queries": [], "follow_links": []}
    flags = {"search.backend": "none", "research.max_rounds": 2}
    llm = ScriptedLLM([plan, reflection, GOOD])
    agent = assistant_for(store, llm, settings_for(web, **flags))
    await collect(agent.ask(QUESTION))
    (run,) = list(trajectories(store))
    assert [c.purpose for c in run.calls] == ["plan", "reflect", "write"]
    assert run.calls[0].messages == llm.calls[0]["messages"]  # exactly what the model saw
    assert json.loads(run.calls[0].output) == plan
    assert run.calls[1].messages == llm.calls[1]["messages"]
    assert run.calls[2].messages == llm.calls[2]["messages"]
    assert run.searches and run.outcome.score is not None
    assert all(c.credit is not None for c in run.calls)


def test_calls_recorded_before_outputs_were_kept_are_exported_but_not_credited(store):
    from tests.helpers import ask

    _, _, (answer_id,) = ask(store, "What is the capital of France?", "Paris [1].")
    run_id = store.runs.answer(answer_id).run_id
    store.runs.add_step(run_id, "llm_call", {"purpose": "plan", "prompt_tokens": 9})
    store.feedback.rate(answer_id, thumb=1)
    (plan,) = trajectory(store, run_id).calls
    assert (plan.purpose, plan.messages, plan.credit) == ("plan", None, None)
