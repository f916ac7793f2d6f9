"""Choosing the evidence the writer sees: a pure function of ranked lists.

Each query (the user's question, then each sub-question) ranks passages by BM25. The question's
own best passages come first (`reserve` of them: what one search of the question would have
shown the writer is never crowded out by passages the sub-questions agree on), then each
sub-question's find (`each_best`, `sought`: what a bridge query was run to find, the passage
it names, not the one that named the bridge and ranks first), then the lists are fused by
weighted reciprocal rank (a passage several queries find rises; the question weighs most).
Near-duplicates are dropped, and passages are taken in that order until `k` of them or the
token budget is reached (a passage that does not fit is skipped for a smaller one below it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sleuth.agent.text import content_words, near_duplicate

RRF_K = 10  # reciprocal-rank fusion: small, so the top few ranks of each query dominate
QUESTION_WEIGHT = 2.0  # the user's own question outweighs any one sub-question
SNIPPET_CHARS = 200
EVIDENCE_CHARS = 1200  # longest passage shown to the writer or the reader


class Passage(Protocol):
    """A ranked passage (the store's ChunkHit has these)."""

    id: int
    text: str
    uri: str
    title: str | None
    source_id: int
    kind: str  # "file" (the user's library) or "web"


@dataclass
class Ranking:
    """One query's passages, best first, and how much the query counts."""

    query: str
    passages: Sequence[Passage]
    weight: float = 1.0


@dataclass
class Selection:
    items: list[dict[str, Any]] = field(default_factory=list)  # numbered from 1, best first
    dropped_duplicates: int = 0
    tokens: int = 0


def select_evidence(
    rankings: Sequence[Ranking],
    *,
    k: int,
    token_budget: int,
    cost: Callable[[dict[str, Any]], int],
    rrf_k: int = RRF_K,
    reserve: int = 0,
    each_best: bool = False,
) -> Selection:
    """Fuse the rankings and choose at most `k` passages costing at most `token_budget` tokens
    in all (`cost` prices one item as the writer will see it); the first `reserve` passages of
    the first ranking (the user's question) are taken before the fused order, and with
    `each_best`, after them what each other ranking was run to find (`sought`: a bridge
    query's find, the passage the question's words never reach, is not outvoted by the
    question's weaker ones)."""
    fused: dict[int, float] = {}
    passages: dict[int, Passage] = {}
    found_by: dict[int, str] = {}
    for ranking in rankings:
        for rank, passage in enumerate(ranking.passages):
            fused[passage.id] = fused.get(passage.id, 0.0) + ranking.weight / (rrf_k + rank + 1)
            passages.setdefault(passage.id, passage)
            found_by.setdefault(passage.id, ranking.query)
    reserved = [p.id for p in rankings[0].passages[:reserve]] if rankings else []
    if each_best:
        for ranking in rankings[1:]:
            reserved += [best] if (best := sought(ranking, reserved)) is not None else []
    order = list(dict.fromkeys(reserved + sorted(fused, key=lambda c: -fused[c])))
    selection = Selection()
    for chunk_id in order:
        if len(selection.items) >= k:
            break
        passage = passages[chunk_id]
        if any(near_duplicate(passage.text, chosen["text"]) for chosen in selection.items):
            selection.dropped_duplicates += 1
            continue
        item = {
            "number": len(selection.items) + 1,
            "uri": passage.uri,
            "title": passage.title,
            "text": passage.text,
            "snippet": snippet(passage.text),
            "source_id": passage.source_id,
            "kind": passage.kind,
            "chunk_id": chunk_id,
            "subquestion": found_by[chunk_id],
            "score": round(fused[chunk_id], 5),
        }
        price = cost(item)
        if selection.tokens + price > token_budget:
            continue
        selection.tokens += price
        selection.items.append(item)
    return selection


def sought(ranking: Ranking, taken: Sequence[int]) -> int | None:
    """The passage a query was run to find: the first not yet taken whose title it names
    ("Kestrel Bay founded" finds "Kestrel Bay (town)" or "Kestrel Bay, Maine", though the
    passage that named Kestrel Bay ranks above it), else its best."""
    asked = content_words(ranking.query)
    for passage in ranking.passages:
        title = content_words(re.split(r"[(,]", passage.title or "")[0])
        if title and title <= asked and passage.id not in taken:
            return passage.id
    return ranking.passages[0].id if ranking.passages else None


def snippet(text: str) -> str:
    """The start of a passage as one line, without Markdown heading marks."""
    return " ".join(text.replace("#", " ").split())[:SNIPPET_CHARS]


def evidence_block(evidence: list[dict]) -> str:
    """Numbered evidence as the writer sees it (an item's own "number", else its place)."""
    blocks = []
    for place, item in enumerate(evidence, start=1):
        number = item.get("number", place)
        text = " ".join(item["text"].split())
        if len(text) > EVIDENCE_CHARS:
            text = text[:EVIDENCE_CHARS].rsplit(" ", 1)[0] + " …"
        title = item.get("title") or item["uri"]
        blocks.append(f"[{number}] {title}\n{text}")
    return "\n\n".join(blocks) if blocks else "(no evidence was found)"
