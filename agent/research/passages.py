"""What the reader reads of the evidence: the passages that bear on the question (and those
they lead to), each cut to the sentences that bear on it most. A small model given fewer,
better passages picks fewer wrong names of the right kind; spans are decoded from what it
reads, and quotes and citations still draw on all the evidence."""

from __future__ import annotations

import re

from sleuth.agent.text import STOPWORDS, content_words, rarity, sentences

from .checks import prose

# What the reader reads of each passage: its first sentence (what the passage is about) and
# the READ_SENTENCES that bear on the question most, in the passage's order (None: all of it).
# Three read as well as whole passages, in less time; two lost answers (bench/README.md).
READ_SENTENCES: int | None = 3
# Which passages the reader reads at all: those whose words share with the question at least
# FOCUS of what the passage sharing most does (each shared word weighted by how rare it is
# among the passages), and those a kept passage leads to (its text names their title). A
# passage that shares nothing rare with the question only offers a small model a wrong name of
# the right kind (None: every passage). 0.8 read best of the values tried (bench/README.md).
FOCUS: float | None = 0.8

# "Which is older, A or B?", "Who was born first: A or B?", "Is A or B the older one?"
_CHOICE = re.compile(r"(?:,|:)\s*(?:the\s+)?([^,:?]+?)\s+or\s+(?:the\s+)?([^,:?]+?)\s*\??$", re.I)


# Lowercase words a name may hold between its capitalised ones ("Salt and Ember", "Bay of Kestrel").
_JOINERS = frozenset("of and the de la le du des von van der di da del y on in upon".split())


def alternatives(question: str) -> list[str]:
    """The two alternatives a question offers ("..., A or B?"), else []. Without the comma,
    the two names joined by "or" ("Is A or B further west?", "Who is older A or B?")."""
    match = _CHOICE.search(question.strip())
    if not match:
        return _named_either(question)
    first, second = (" ".join(part.split()) for part in match.groups())
    if not first or not second or len(first) > 80 or len(second) > 80:
        return []
    return [first, second]


def _named_either(question: str) -> list[str]:
    """The names on each side of the question's one "or", each a run of capitalised words
    (a number or a joining word inside it), the one after it past the words that lead to the
    first ("the band A or the band B"); [] unless both are names."""
    said = question.strip().rstrip("?").split()
    at = [n for n, word in enumerate(said) if word.lower() == "or"]
    if len(at) != 1:
        return []
    before, after = said[: at[0]], said[at[0] + 1 :]
    first = _name_run(before[::-1], backward=True)[::-1]
    if first and len(first) == len(before) and first[0].lower() in STOPWORDS:
        first = first[1:]  # the question's own first word ("Is A or B ...?")
    lead = before[: len(before) - len(first)]
    for size in range(min(3, len(lead)), 0, -1):  # "the band A or the band B"
        if [w.lower() for w in after[:size]] == [w.lower() for w in lead[-size:]]:
            after = after[size:]
            break
    else:
        if after[:1] and after[0].lower() == "the":
            after = after[1:]
    second = _name_run(after)
    if not first or not second:
        return []
    return [" ".join(first).strip(",:;\"'"), " ".join(second).strip(",:;\"'")]


def _name_run(words: list[str], backward: bool = False) -> list[str]:
    """The capitalised words `words` starts with, with joining words and numbers between
    them (`backward`: `words` are a name's words from its last, which may be a number)."""
    run: list[str] = []
    for n, word in enumerate(words):
        bare = word.strip("\"'(),:;")
        if bare[:1].isupper():
            run = words[: n + 1]
        elif not (run or backward) or not (bare.lower() in _JOINERS or bare[:1].isdigit()):
            break
    return run


def reading(question: str, evidence: list[dict]) -> list[dict]:
    """The passages as the reader reads them: those `focused` keeps, numbered as the evidence
    is, each cut to its first sentence and the READ_SENTENCES that bear on the question most
    (weighted by how rare their words are among the passages, the title counting half)."""
    if READ_SENTENCES is None:
        return focused(question, evidence)
    idf = rarity([content_words(item["text"]) for item in evidence])
    asked = content_words(question)

    def bears(sentence: str, title: set[str]) -> float:
        have = content_words(sentence)
        hit = sum(idf(w) for w in have & asked) + sum(idf(w) for w in (title - have) & asked) / 2
        return hit / max(len(have), 1) ** 0.5

    out = []
    for item in focused(question, evidence):
        said = sentences(prose(item["text"]))
        title = content_words(item.get("title") or "")
        best = sorted(range(1, len(said)), key=lambda i: -bears(said[i], title))[:READ_SENTENCES]
        kept = [said[i] for i in sorted({0, *best}) if i < len(said)]
        out.append({**item, "text": " ".join(kept)})
    return out


def focused(question: str, evidence: list[dict]) -> list[dict]:
    """The passages that bear on the question (see FOCUS), the one bearing most on each side
    of a comparison the question offers, and the passages they lead to (a kept passage whose
    text names another passage's title keeps that one), in their order, each with its number
    in the evidence."""
    if FOCUS is None or len(evidence) < 2:
        return evidence
    held = [content_words(f"{item.get('title') or ''}\n{item['text']}") for item in evidence]
    idf = rarity(held)
    asked = content_words(question)
    scores = [sum(idf(word) for word in have & asked) for have in held]
    best = max(scores)
    if best <= 0:
        return evidence
    kept = {n for n, score in enumerate(scores) if score >= FOCUS * best}
    for side in map(content_words, alternatives(question)):  # a comparison reads both sides
        holding = [n for n, have in enumerate(held) if side <= have]
        if holding:
            kept.add(max(holding, key=lambda n: scores[n]))
    # each passage's title without its "(disambiguation)", as another passage would name it
    titles = [content_words((item.get("title") or "").split("(")[0]) for item in evidence]
    for n in list(kept):
        said = content_words(evidence[n]["text"])
        kept.update(other for other, named in enumerate(titles) if named and named <= said)
    return [
        {**item, "number": item.get("number", n + 1)}
        for n, item in enumerate(evidence)
        if n in kept
    ]
