"""What each round of a run searches: the first round's plan, and after each round the model's
reflection and the bridge queries the found passages suggest.

Both go through the run (state.py): model calls are accounted and recorded, events emitted.
"""

from __future__ import annotations

from sleuth.agent.models.llm import LLM

from .bridges import bridge_queries, entities, rephrases
from .events import PlanReady, Reflected, StepFailed
from .planner import SubQuestion, make_plan, reflect
from .state import RunState


async def plan(run: RunState, llm: LLM) -> list[SubQuestion]:
    """The first round's searches: the question itself with each tool, then the model's plan
    (schema-constrained; an unusable plan is recorded and the question alone is searched)."""
    subquestions, _, error = await run.call(
        "plan",
        lambda: make_plan(
            llm,
            run.question,
            run.tools,
            max_subquestions=run.budget.limits.max_subquestions,
            history=list(run.history),
            seed=run.seed,
            cancel=run.deadline(),
        ),
    )
    if error:
        run.emit(StepFailed("plan", "model", error))
    run.emit(PlanReady(1, [s.as_dict() for s in subquestions], fallback=bool(error)))
    return subquestions


async def next_round(
    run: RunState, llm: LLM, evidence: list[dict], round_number: int
) -> tuple[list[SubQuestion], list[str]]:
    """What to search and read next: the model's new queries (none that only rephrase the
    question or a query run) and links, then bridge queries from the passages found
    (bridges.py). With nothing found there is nothing for the model to read: each name the
    question gives is searched alone, without a model call. The model's "enough" is taken
    only with evidence in hand. The model is not asked when it could add nothing: no link to
    follow and the bridge queries already fill the round (its reflection costs about as much
    as the reading; with Qwen2.5 0.5B on 150 library questions it proposed no search, and
    its "enough" never ended a round the bridges went on with). A web search backend found
    unreachable is not asked again."""
    tools = [t for t in run.tools if not (t == "web_search" and run.unreachable)]
    room = run.budget.limits.new_queries
    if not evidence:
        names = [e for e in entities(run.question) if e not in run.queries_run][:room]
        new = [SubQuestion(name, tool, name, "bridge") for name in names for tool in tools]
        run.emit(Reflected(round_number, False, [q.as_dict() for q in new], [], 0))
        return new, []
    found = bridges(run, evidence, tools, room, [])
    if not run.links and len(named := {q.query for q in found}) >= room:
        run.emit(Reflected(round_number, False, [q.as_dict() for q in found], [], len(named)))
        return found, []
    reflection, _ = await run.call(
        "reflect",
        lambda: reflect(
            llm,
            run.question,
            tools or run.tools,
            queries_run=run.queries_run,
            evidence=evidence,
            links=run.links[: run.budget.limits.max_links],
            max_queries=room,
            max_links=run.budget.limits.follow_links,
            seed=run.seed + round_number,
            cancel=run.deadline(),
        ),
    )
    new = [
        query
        for query in reflection.new_queries
        if query.tool in tools and not rephrases(query.query, run.question, run.queries_run)
    ]
    follow = reflection.follow_links
    if reflection.enough:
        new, follow = [], []
    if new:  # the model's queries come first: the bridges fill what room they leave
        found = bridges(run, evidence, tools, room - len(new), [q.query for q in new])
    run.emit(
        Reflected(
            round_number,
            reflection.enough and not found,
            [q.as_dict() for q in new + found],
            follow,
            bridges=len({q.query for q in found}),
        )
    )
    return new + found, follow


def bridges(
    run: RunState, evidence: list[dict], tools: list[str], room: int, planned: list[str]
) -> list[SubQuestion]:
    """Bridge queries for each tool: the library's from every passage found, the web's from web
    passages only (names in the user's files stay on this machine) unless
    research.library_to_web is on."""
    already = run.queries_run + planned
    everything = [item["text"] for item in evidence]
    public = [item["text"] for item in evidence if item.get("kind") != "file"]
    out = []
    for tool in tools:
        private_ok = tool != "web_search" or run.boundary.library_to_web
        passages = everything if private_ok else public
        for query in bridge_queries(run.question, passages, already, room) if passages else []:
            out.append(SubQuestion(query, tool, query, "bridge"))
    return out
