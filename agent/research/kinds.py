"""The kind of answer a question asks for, by its first words, and whether a short answer is of
that kind, by a rule that can be stated (no judgement, no gazetteer):

- a date ("When ...?", "In what year ...?") or a number ("How many ...?", "How old ...?")
  holds a digit, a month or a number word;
- a place ("Where ...?", "In which city ...?"), a person ("Who ...?") or a nationality
  ("What nationality ...?") starts each of its words with a capital letter (past any opening
  punctuation), but for joining words ("of", "the", "de", ...), and holds no digit.

Other questions ("What ...?", "Which ...?") ask for no one kind. The reader holds its decoding
to the kind (reader.py `AnswerForm`): a span may only go on while it can still become an
answer of the kind, and may only end once it is one.
"""

from __future__ import annotations

import re

KINDS = ("date", "number", "place", "person", "nationality", "name")
# Kinds answered with a name ("name": any, such as the bridge of a two-step question: hops.py)
NAMED = frozenset({"place", "person", "nationality", "name"})

_ASKED = [
    (
        "date",
        re.compile(
            r"^(when|(in |during |on )?(what|which) (year|decade|century|date|day)|"
            r"(what|which) (is|was) the (date|year|day)\b)\b"
        ),
    ),
    ("number", re.compile(r"^how (many|much|old|long|tall|far|big|large|high)\b")),
    (
        "place",
        re.compile(
            r"^(where|(in |from )?(what|which) (city|country|state|town|county|place)|"
            r"(what|which) (is|was) the (place|birthplace)\b)\b"
        ),
    ),
    ("person", re.compile(r"^(who|whom|whose)\b")),
    ("nationality", re.compile(r"^(what|which) (nationality|country of citizenship)\b")),
]
MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)
NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve hundred thousand".split()
)
# Lower-case words a name may hold between its capitalised ones ("Bay of Kestrel", "the
# Hague", "Vale upon Tarn", "Anna de la Cruz").
JOINING = frozenset("of and the de la le upon on in du des von van der da del y".split())


def asked_kind(question: str) -> str | None:
    """The kind of answer `question` asks for by its first words (None: no one kind)."""
    asked = " ".join(question.lower().split())
    return next((kind for kind, pattern in _ASKED if pattern.match(asked)), None)


def of_kind(short: str, kind: str | None) -> bool:
    """Whether a short answer is of the kind asked (always, when no kind is asked)."""
    if kind is None:
        return True
    if kind in ("date", "number"):
        said = set(short.lower().replace(",", " ").split())
        return any(ch.isdigit() for ch in short) or bool(said & (MONTHS | NUMBER_WORDS))
    named = [word for word in short.split() if word.lower() not in JOINING]
    return bool(named) and all(_capital(w) for w in named) and not _digit(short)


def may_become(text: str, kind: str | None) -> bool:
    """Whether `text`, the start of a short answer, can still become one of the kind: a date
    or a number may gain its digit later; a name may not have had a digit, nor a whole word
    that is neither capitalised nor a joining word (its last word may still be one)."""
    if kind not in NAMED or not text.strip():
        return True
    if _digit(text):
        return False
    said = text.split()
    whole, last = (said, "") if text[-1:].isspace() else (said[:-1], said[-1])
    if not all(_capital(w) or w.lower() in JOINING for w in whole):
        return False
    return not last or _capital(last) or any(j.startswith(last) for j in JOINING)


def _capital(word: str) -> bool:
    """Whether a word starts with a capital, past any opening punctuation ("(Kestrel", "&")."""
    first = next((ch for ch in word if ch.isalnum()), "")
    return not first or first.isupper()


def _digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)
