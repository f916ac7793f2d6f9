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
MONTH_NAMES = (  # in the calendar's order: a month's number is its place here, plus one
    "january february march april may june july august september october november december"
).split()
MONTHS = frozenset(MONTH_NAMES)
NUMBER_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve hundred thousand".split()
)
# Lower-case words a name may hold between its capitalised ones ("Bay of Kestrel", "the
# Hague", "Vale upon Tarn", "Anna de la Cruz").
JOINING = frozenset("of and the de la le upon on in du des von van der da del y".split())


_YEAR_ASKED = re.compile(r"\b(what|which) (year|decade|century)\b", re.I)
_MONTH = "(?:" + "|".join(sorted(MONTHS)) + ")"
# A whole date as texts write it: "4 March 1931", "March 4, 1931", "March 1931".
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}(?:st|nd|rd|th)?\s+)?{_MONTH}(?:\s+\d{{1,2}}(?:st|nd|rd|th)?)?,?\s+\d{{3,4}}\b",
    re.I,
)


def asks_whole_date(question: str) -> bool:
    """Whether a date asked for is a whole one ("When was ...?"), not a year ("In what year
    ...?"): a year the evidence gives in a whole date is then answered with all of it."""
    return asked_kind(question) == "date" and not _YEAR_ASKED.search(question)


def whole_dates(short: str, text: str) -> list[str]:
    """The whole dates in `text` that the short answer is part of (a year, "13 January")."""
    said = " ".join(short.split()).lower()
    return [
        m.group(0)
        for m in _DATE.finditer(text)
        if re.search(rf"(?<!\w){re.escape(said)}(?!\w)", " ".join(m.group(0).split()).lower())
    ]


def dates_in(text: str) -> list[str]:
    """The whole dates `text` writes ("4 March 1931", "March 1931"), in order."""
    return [m.group(0) for m in _DATE.finditer(text)]


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
    holds only its own words (digits, months, DATE_WORDS) and may gain its digit later, as
    a number may; a name starts with a capital, and may not have had
    a digit, nor a whole word that is neither capitalised nor a joining word (its last word
    may still be one). A small model that starts "the ..." for a place otherwise ends in a
    run of lower-case words that no name continues."""
    if kind == "date" and text.strip():
        said = text.replace(",", " ").split()
        whole, last = (said, "") if text[-1:].isspace() else (said[:-1], said[-1])
        return all(_in_date(w) for w in whole) and (not last or _in_date(last, prefix=True))
    if kind not in NAMED or not text.strip():
        return True
    if _digit(text):
        return False
    said = text.split()
    if not _capital(said[0]):  # a name starts with its own word ("the Hague" is "Hague")
        return False
    whole, last = (said, "") if text[-1:].isspace() else (said[:-1], said[-1])
    if not all(_capital(w) or w.lower() in JOINING for w in whole):
        return False
    if any(len(w.rstrip(".")) > 3 and w.endswith(".") for w in said[:-1]):
        return False  # a sentence ended ("Brandt. It ..."), not an abbreviation ("St. Ives")
    return not last or _capital(last) or any(j.startswith(last) for j in JOINING)


# Words a date may hold besides its digits, months and number words ("the early 1950s",
# "c. 1200 BC", "mid-March", "13th of May").
DATE_WORDS = frozenset(
    "of the and to in on early late mid around about circa c. ad bc bce ce century decade "
    "year spring summer autumn fall winter".split()
)


def _in_date(word: str, prefix: bool = False) -> bool:
    """Whether `word` may stand in a date (`prefix`: may still become such a word)."""
    word = word.strip("()[],;:")
    if not word or any(ch.isdigit() for ch in word) or re.fullmatch(r"(?:[A-Za-z]\.)+", word):
        return True  # digits, or an abbreviation: "O.S.", "A.D."
    if prefix and word[:1].isupper():  # a capital starts a month or an era, not a name
        return any(k.startswith(word) for k in _CAPITALISED)
    word = word.lower()
    known = MONTHS | NUMBER_WORDS | DATE_WORDS
    return (
        any(k.startswith(word) for k in known)
        if prefix
        else word.strip("-") in known or (word.startswith("mid-") and word[4:] in MONTHS)
    )


_CAPITALISED = frozenset({m.capitalize() for m in MONTHS} | {"AD", "BC", "BCE", "CE"})


def _capital(word: str) -> bool:
    """Whether a word starts with a capital, past any opening punctuation ("(Kestrel", "&")."""
    first = next((ch for ch in word if ch.isalnum()), "")
    return not first or first.isupper()


def _digit(text: str) -> bool:
    return any(ch.isdigit() for ch in text)
