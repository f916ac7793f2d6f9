"""Bridge queries: what a multi-hop question needs after its first round of searches.

"What position did the woman who played Corliss Archer in Kiss and Tell hold?" cannot be
answered by searching its own words: the first round finds that Shirley Temple played the
part, and the answer is in Shirley Temple's article, whose name the question never says. A
bridge query joins an entity the found passages name and the question does not (a name, a
title) to what the question still asks: "Shirley Temple position held". The research loop
adds these after the first round, never repeating a query already run.
"""

from __future__ import annotations

import re

from .text import STOPWORDS, content_words, search_terms

# A name or title: capitalised words, with a few lower-case joiners inside ("Kiss and Tell",
# "Leonardo da Vinci", "Prince of Wales"), or a phrase in quotation marks.
_WORD = r"(?:(?:[A-Z]\.)+|[A-Z][\w'’-]*)"  # "Rhône", "O'Brien", "J.R.R."
_NAME = re.compile(
    rf"\b{_WORD}(?:\s+(?:(?:of|and|the|de|da|von|van|del|la|le|du|y)\s+)?(?:{_WORD}|\d+\b))*"
)
_QUOTED = re.compile(r"[\"“]([^\"”]{3,60})[\"”]")
QUESTION_WORDS = 4  # of the question's own words, joined to a bridge entity


def entities(text: str) -> list[str]:
    """Names and titles in `text`, in order of first appearance, once each. Two names joined
    by "and" ("Scott Derrickson and Ed Wood") count together and each on its own."""
    found = []
    for match in _NAME.finditer(text):
        words = match.group(0).split()
        while words and words[0].lower() in STOPWORDS:  # "Were", "The" opening a sentence
            words = words[1:]
        name = " ".join(words)
        found.append(name)
        if " and " in name:
            found += [part for part in name.split(" and ") if part[:1].isupper()]
    found += [m.group(1).strip() for m in _QUOTED.finditer(text)]
    out = []
    for entity in found:
        if len(entity) < 3 or entity.lower() in STOPWORDS:
            continue
        if entity not in out:
            out.append(entity)
    return out


def bridge_queries(question: str, passages: list[str], already: list[str], limit: int) -> list[str]:
    """Up to `limit` queries, each an entity the passages name (best-ranked passages first,
    names several passages share before others) and the question does not, with what the
    question asks besides the names it already gives."""
    asked = content_words(question)
    in_question = entities(question)
    scores: dict[str, float] = {}
    for rank, passage in enumerate(passages):
        for entity in entities(passage):
            words = content_words(entity)
            if not words or words <= asked:
                continue  # the question names it already: no bridge
            scores[entity] = scores.get(entity, 0.0) + 1.0 / (rank + 1)
    named = content_words(" ".join(in_question))
    rest = [w for w in search_terms(question) if w.lower() not in named][:QUESTION_WORDS]
    done = {_key(q) for q in already}
    queries = []
    for entity in sorted(scores, key=lambda e: -scores[e]):
        query = " ".join([entity, *rest])
        if _key(query) not in done:
            done.add(_key(query))
            queries.append(query)
        if len(queries) >= limit:
            break
    return queries


def rephrases(query: str, question: str, already: list[str]) -> bool:
    """Whether a proposed query adds no content word to the question or to a query run."""
    words = content_words(query)
    if not words or words <= content_words(question):
        return True
    return any(words <= content_words(q) for q in already)


def _key(query: str) -> frozenset[str]:
    return frozenset(content_words(query))
