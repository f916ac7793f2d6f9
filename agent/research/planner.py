"""The planner: sub-questions with a tool and a query each, and reflection after a round.

Output is JSON-schema constrained, so even a 135M-parameter model keeps the protocol; what it
writes inside the protocol is then cleaned (empty, duplicate or over-long queries dropped).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from sleuth.agent.citations import repair, strip_citations
from sleuth.agent.errors import ModelError
from sleuth.agent.models.llm import LLM, Completion, Sampling, chat_json
from sleuth.agent.prompts import render
from sleuth.agent.tools.toolbox import PLANNER_TOOLS, describe, parameters_schema

from .bridges import rephrases

QUERY_MAX = 120
QUESTION_MAX = 200


@dataclass
class SubQuestion:
    question: str
    tool: str
    query: str
    # Who proposed it: "question" (the question itself, searched first), "model" (the plan or
    # a reflection), "bridge" (a name the passages found, bridges.py), "user" (edited in the
    # plan review). Training credits the model only for what the model proposed.
    source: str = "model"

    def as_dict(self) -> dict[str, str]:
        return {
            "question": self.question,
            "tool": self.tool,
            "query": self.query,
            "source": self.source,
        }


@dataclass
class Reflection:
    enough: bool
    new_queries: list[SubQuestion] = field(default_factory=list)
    follow_links: list[str] = field(default_factory=list)


def _query_schema(tools: list[str]) -> dict:
    """The query argument as the tools declare it, bounded so a tiny model cannot ramble."""
    spec = dict(parameters_schema(PLANNER_TOOLS[tools[0]])["properties"]["query"])
    spec.pop("description", None)
    return {**spec, "minLength": 2, "maxLength": QUERY_MAX}


def plan_schema(tools: list[str], max_subquestions: int) -> dict:
    return {
        "type": "object",
        "properties": {
            "subquestions": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_subquestions,
                "items": {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string", "minLength": 3, "maxLength": QUESTION_MAX},
                        "tool": {"type": "string", "enum": tools},
                        "query": _query_schema(tools),
                    },
                    "required": ["question", "tool", "query"],
                },
            }
        },
        "required": ["subquestions"],
    }


def reflection_schema(tools: list[str], max_queries: int, n_links: int, max_links: int) -> dict:
    link_items: dict = {"type": "integer", "enum": list(range(1, n_links + 1))} if n_links else {}
    return {
        "type": "object",
        "properties": {
            "enough": {"type": "boolean"},
            "new_queries": {
                "type": "array",
                "maxItems": max_queries,
                "items": {
                    "type": "object",
                    "properties": {
                        "tool": {"type": "string", "enum": tools},
                        "query": _query_schema(tools),
                    },
                    "required": ["tool", "query"],
                },
            },
            "follow_links": {
                "type": "array",
                "maxItems": max_links if n_links else 0,
                "items": link_items or {"type": "integer"},
            },
        },
        "required": ["enough", "new_queries", "follow_links"],
    }


def history_text(history: list[tuple[str, str]]) -> str:
    """Earlier turns of the session, briefly, so follow-up questions make sense."""
    if not history:
        return ""
    lines = ["Earlier in this conversation:"]
    for question, answer in history[-3:]:
        short = " ".join(answer.split())
        lines.append(f"Q: {question}\nA: {short[:400]}{'…' if len(short) > 400 else ''}")
    return "\n".join(lines) + "\n\n"


def question_searches(question: str, tools: list[str]) -> list[SubQuestion]:
    """The question itself, searched with each tool: every plan starts from these."""
    return [SubQuestion(question, tool, _clean(question, QUERY_MAX), "question") for tool in tools]


def plan_messages(
    question: str,
    tools: list[str],
    max_subquestions: int,
    history: list[tuple[str, str]] | None = None,
) -> list[dict[str, str]]:
    """What the planner's model call sees (bench/grammar_decoding.py times the same call)."""
    return [
        {
            "role": "system",
            "content": render(
                "plan_system",
                max_subquestions=max_subquestions,
                tools="\n".join(describe(t) for t in tools),
            ),
        },
        {
            "role": "user",
            "content": render("plan_user", question=question, history=history_text(history or [])),
        },
    ]


def plan_sampling(max_subquestions: int, seed: int | None = None) -> Sampling:
    """The planner's sampling: a little temperature, room for each sub-question."""
    return Sampling(temperature=0.2, max_tokens=120 + 90 * max_subquestions, seed=seed)


def make_plan(
    llm: LLM,
    question: str,
    tools: list[str],
    *,
    max_subquestions: int,
    history: list[tuple[str, str]] | None = None,
    seed: int | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[SubQuestion], Completion | None, str | None]:
    """Sub-questions for `question`. The question itself is always searched first with each
    tool (a strong baseline the model's plan adds to). Returns (plan, completion, error):
    error says why the model's own plan was unusable, when it was."""
    baseline = question_searches(question, tools)
    try:
        value, completion = chat_json(
            llm,
            plan_messages(question, tools, max_subquestions, history),
            plan_schema(tools, max_subquestions),
            plan_sampling(max_subquestions, seed),
            cancel=cancel,
        )
    except ModelError as exc:  # a failed call costs nothing recorded; an unusable one does
        return baseline, getattr(exc, "completion", None), str(exc)
    planned = []
    for item in value.get("subquestions", []):
        sub = SubQuestion(
            _clean(item.get("question", ""), QUESTION_MAX),
            item.get("tool", tools[0]),
            _query(item.get("query", "")),
        )
        # A sub-question that only rephrases the question adds nothing its own search finds.
        if sub.tool in tools and sub.question and not rephrases(sub.query, question, []):
            planned.append(sub)
    return _dedupe(baseline + planned)[: max(max_subquestions, len(tools))], completion, None


def reflect(
    llm: LLM,
    question: str,
    tools: list[str],
    *,
    queries_run: list[str],
    evidence: list[dict],
    links: list[str],
    max_queries: int = 3,
    max_links: int = 3,
    seed: int | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Reflection, Completion | None]:
    """Enough, or new queries and links to follow. Links are offered by number only, so the
    model can pick among links found in pages but never invent a URL."""
    evidence_text = (
        "\n".join(
            f"- {item.get('title') or item.get('uri')}: {' '.join(item['text'].split())[:200]}"
            for item in evidence[:8]
        )
        or "(nothing yet)"
    )
    link_text = "\n".join(f"{n}. {url}" for n, url in enumerate(links, start=1)) or "(none)"
    messages = [
        {
            "role": "system",
            "content": render(
                "reflect_system",
                max_queries=max_queries,
                max_links=max_links,
                tools="\n".join(describe(t) for t in tools),
            ),
        },
        {
            "role": "user",
            "content": render(
                "reflect_user",
                question=question,
                queries="\n".join(f"- {q}" for q in queries_run) or "(none)",
                evidence=evidence_text,
                links=link_text,
            ),
        },
    ]
    try:
        value, completion = chat_json(
            llm,
            messages,
            reflection_schema(tools, max_queries, len(links), max_links),
            Sampling(temperature=0.2, max_tokens=80 + 60 * max_queries, seed=seed),
            cancel=cancel,
        )
    except ModelError as exc:
        return Reflection(enough=True), getattr(exc, "completion", None)
    new = []
    for item in value.get("new_queries", []):
        query = _query(item.get("query", ""))
        if (
            item.get("tool") in tools
            and len(query) >= 2
            and query not in queries_run
            and query.lower() not in PLANNER_TOOLS  # a tiny model sometimes names the tool
        ):
            new.append(SubQuestion(query, item["tool"], query))
    chosen = []
    for number in value.get("follow_links", []):
        if (
            isinstance(number, int)
            and 1 <= number <= len(links)
            and links[number - 1] not in chosen
        ):
            chosen.append(links[number - 1])
    return Reflection(bool(value.get("enough")), _dedupe(new), chosen[:max_links]), completion


def _clean(text: str, limit: int) -> str:
    return " ".join(str(text).split())[:limit].strip()


def _query(text: str) -> str:
    """A search query the model wrote, without citation markers: "[1]" is the numbering of
    Sleuth's own evidence, which means nothing to a search engine and tells it what was read."""
    return _clean(strip_citations(repair(str(text))[0]), QUERY_MAX)


def _dedupe(items: list[SubQuestion]) -> list[SubQuestion]:
    seen, out = set(), []
    for item in items:
        key = (item.tool, item.query.lower())
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out
