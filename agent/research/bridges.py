"""Bridge queries: what a multi-hop question needs after its first round of searches.

"What position did the woman who played Nell Farrow in Salt and Ember hold?" cannot be
answered by searching its own words: the first round finds that Maren Holt played the
part, and the answer is in Maren Holt's article, whose name the question never says. A
bridge query joins an entity the found passages name and the question does not (a name, a
title) to what the question still asks: "Maren Holt government position held". The
research loop adds these after the first round, never repeating a query already run, and the
best passage each one finds is shown to the writer (agent/research/evidence.py `each_best`).
"""

from __future__ import annotations

import re

from sleuth.agent.text import STOPWORDS, content_words, rarity, search_terms, sentences, words

from .kinds import MONTHS

# A name or title: capitalised words, with a few lower-case joiners inside ("Salt and Ember",
# "Leonardo da Vinci", "Prince of Wales"), or a phrase in quotation marks.
_WORD = r"(?:(?:[A-Z]\.)+|[A-Z][\w'’-]*)"  # "Rhône", "O'Brien", "J.R.R."
_NAME = re.compile(  # within a line: a heading and the sentence below it are two names
    rf"\b{_WORD}(?:[ \t]+(?:(?:of|and|the|de|da|von|van|del|la|le|du|y)[ \t]+)?(?:{_WORD}|\d+\b))*"
)
_QUOTED = re.compile(r"[\"“]([^\"”]{3,60})[\"”]")
QUESTION_WORDS = 4  # of the question's own words, joined to a bridge entity


def entities(text: str) -> list[str]:
    """Names and titles in `text`, in order of first appearance, once each, dates left out. Two
    names joined by "and" ("Tomas Arvid and Lena Voss") count together and each on its own."""
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
        if len(entity) < 3 or entity.lower() in STOPWORDS or _is_date(entity):
            continue
        if entity not in out:
            out.append(entity)
    return out


def _is_date(name: str) -> bool:
    """Whether a name is only a month and numbers ("October 16", "July 1977", "May"). A
    date is not a name a passage is about: searched with the question's words it finds the
    passage that gave it, not another."""
    said = name.lower().replace(",", " ").split()
    return any(w in MONTHS for w in said) and all(w in MONTHS or w.isdigit() for w in said)


def bridge_queries(question: str, passages: list[str], already: list[str], limit: int) -> list[str]:
    """Up to `limit` queries, each an entity the passages name and the question does not,
    with what the question still asks: its words that the passage naming the entity lacks.

    The bridge is named where a passage answers the question's words: "... starring Maren
    Holt as Nell Farrow", "... played its home games at the Kestrel Bay Arena".
    So an entity ranks by the best sentence it is named in: that sentence's share of the
    question's words (each by its rarity among the passages), over the passage's rank. Of
    names in one sentence, the one fewer passages name comes first ("Maren Holt" before
    "American")."""
    asked = content_words(question)
    said = " ".join(words(question))
    named = content_words(" ".join(entities(question)))
    documents = [content_words(p) for p in passages]
    weight = rarity(documents)
    best: dict[str, tuple[float, int, int]] = {}  # entity: (score, -passages naming it, passage)
    for rank, passage in enumerate(passages):
        for sentence in sentences(passage):
            match = sum(weight(w) for w in content_words(sentence) & asked) / (rank + 1)
            for entity in entities(sentence):
                entity_words = content_words(entity)
                if not entity_words or f" {' '.join(words(entity))} " in f" {said} ":
                    continue  # the question names it already: no bridge
                key = (match, -sum(entity_words <= d for d in documents), rank)
                if entity not in best or key[:2] > best[entity][:2]:
                    best[entity] = key
    done = {_key(q) for q in already}
    queries = []
    for entity in sorted(best, key=lambda e: best[e][:2], reverse=True):
        known = named | documents[best[entity][2]]
        rest = [w for w in search_terms(question) if not content_words(w) <= known]
        query = " ".join([entity, *rest[:QUESTION_WORDS]])
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
