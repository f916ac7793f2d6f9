"""Comparisons decided from the evidence, where a small reader offered two alternatives picks
one about as often as a coin would. Three rules, each deciding only when both sides' own
passages say what it needs (else the reader's own reading stands):

- **In time** ("Which was founded first, A or B?", "Who is older, A or B?", "Which film came
  out more recently, A or B?", "Who died later, A or B?"): what is compared (`asked_order`: a
  birth, a death, or the event the question names, "founded", "released", or none: the year
  a film or a book is of) and which way; each side's passage (`side_passage`: the one titled
  by its name, else the first whose first sentence holds all its words); each side's date
  (`date_of`: a birth the first date of the lead's brackets, "(born 4 March 1931)", or the one
  after "born"; a death the second date of those brackets or the one after "died"; another
  event the first year of the first sentence holding one of the question's own verbs, else
  of the first sentence); the side whose date comes first or last, by year, then month and
  day where both give them. Through a hop ("Which film has the director who died first, A
  or B?", `through`), the dates are those of what each side leads to, read by the writer.
- **The same country** ("Are A and B from the same country?", `same`): yes when where each
  is from, as its first sentence says it (`origin`), is the same word.
- **The side described** ("Which film is about X, A or B?", `described`): the side whose own
  passage says clearly more of the question's rare words.

The decision is shown with the sentence each side was read from ("A was founded in 1987
[1]." "B was founded in 1990 [2].") and kept in the answer's verification as `compared`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sleuth.agent.text import content_words, is_polar, rarity, sentences

from .checks import prose
from .hops import Bridge
from .kinds import MONTH_NAMES, MONTHS
from .passages import alternatives
from .reader import Read, compose, support_sentences

_EARLIER = re.compile(r"\b(first|earlier|earliest|older|oldest|elder|eldest|sooner|before)\b", re.I)
_LATER = re.compile(
    r"\b(later|latest|last|younger|youngest|more recent(ly)?|most recent(ly)?|newer|newest|"
    r"after)\b",
    re.I,
)
# "Are A and B (both) from the same country?", "Is A of the same nationality as B?"
_SAME = re.compile(r"\bsame (country|nationality)\b", re.I)
_PAIR = re.compile(
    r"^(?:are|were|do|did|is|was)\s+(?:both\s+)?(?:the\s+)?(.+?)\s+and\s+(.+?),?\s+"
    r"(?:both\s+)?(?:located|from|of|have|has|had|share|shared|come|came|originate|originated|"
    r"in|based)\b",
    re.I,
)
_PAIR_AS = re.compile(
    r"^(?:does|did|do|is|was)\s+(.+?)\s+(?:have|has|share|come from|from|of)\s+the same "
    r"\w+ as\s+(.+?)\s*\?*$",
    re.I,
)
# Where a person or a work is from: "... was an American painter", "is a 1999 French film".
_ORIGIN = re.compile(
    r"\b(?:is|was)\s+(?:a|an|the)\s+(?:\d{4}\s+)?(?:(?:former|retired|late|professional)\s+)?"
    r"([A-Z][\w-]+)"
)
# What a place is, said before where it is ("a village in ..."): then its last name is read.
_PLACE_NOUN = re.compile(
    r"\b(village|town|city|river|creek|school|airport|university|college|district|county|"
    r"settlement|lake|mountain|island|manor|mansion|castle|church|station|park|building)\b",
    re.I,
)
# "Which film has the director who ...", "Which album whose producer was born first ...".
_THROUGH = re.compile(
    r"\b(?:has|had|have|with|whose|by)\s+(?:the\s+|a\s+)?([a-z]+)\s+(?:who\s+|that\s+)?"
    r"(?:is|was|were|died|dies|born|lived)\b"
)
_BIRTH = re.compile(r"\b(born|birth|older|oldest|younger|youngest|elder|eldest)\b", re.I)
_DEATH = re.compile(r"\b(died|dies|die|death|passed away)\b", re.I)
# How long or how many, not when: "lived longer", "more members" (no rule reads those).
_NOT_TIME = re.compile(
    r"\b(longer|more(?! recent)|most(?! recent)|fewer|less|least|larger|bigger|taller)\b", re.I
)
_MONTH = "(?:" + "|".join(MONTH_NAMES) + ")"
_YEAR = r"(?<![\d,.])(\d{4})(?![\d,])"
_DATE = re.compile(
    rf"(?:(\d{{1,2}})(?:st|nd|rd|th)?\s+({_MONTH})|({_MONTH})(?:\s+(\d{{1,2}})(?:st|nd|rd|th)?)?)"
    rf",?\s+{_YEAR}|{_YEAR}",
    re.I,
)
# How much more of the question one side's passage must say than the other's to be the side
# it describes (rarity-weighted words: about two rare words). A smaller margin decides more
# questions and gets a larger share of them wrong (on the train pool: bench/README.md).
DESCRIBED_BY = 2.0
LEAD_CHARS = 300  # how far into a passage its lead's brackets may stand
_BRACKETS = re.compile(r"\(([^()]*)\)")
_RANGE = re.compile(r"[–—-]|\bto\b")
# Question words that name neither the event nor a side: the cue words and those around them.
_NOT_EVENT = frozenset(
    "first earlier earliest older oldest elder eldest sooner before later latest last younger "
    "youngest recent recently newer newest after which who what one came come".split()
)


@dataclass(frozen=True)
class Date:
    year: int
    month: int = 0  # 0: not given
    day: int = 0

    def before(self, other: Date) -> bool | None:
        """Whether this date comes before `other` (None: the dates do not tell)."""
        for mine, theirs in ((self.year, other.year), (self.month, other.month)):
            if not mine or not theirs:
                return None
            if mine != theirs:
                return mine < theirs
        if self.day and other.day and self.day != other.day:
            return self.day < other.day
        return None


@dataclass(frozen=True)
class Side:
    name: str  # as the question offers it
    number: int  # the number in the evidence of the passage its date is read from
    value: Date | str | float  # its date, where it is from, or how much it says of the question
    sentence: str  # the sentence that was read from
    own: int | None = None  # the passage about the side itself, read through a bridge


@dataclass(frozen=True)
class Compared:
    """A comparison decided: the side picked and both sides as read."""

    picked: str
    sides: tuple[Side, Side]

    def shown(self, evidence: list[dict], bridges: list[Bridge] = ()) -> Read:
        """The decision as the user sees it: the picked side, citing its own passage and the
        one its date is read from (a film's, then its director's), over the sentence naming
        each side's bridge, then each side's date."""
        picked = [s for s in self.sides if s.name == self.picked] or self.sides  # yes or no
        cited = list(dict.fromkeys(n for s in picked for n in (s.own, s.number) if n))
        quotes: list[tuple[int, str]] = []
        for b in bridges:
            quotes += support_sentences(b.name, b.hop.inner, evidence, b.cited)[:1]
        quotes = list(dict.fromkeys([*quotes, *((s.number, s.sentence) for s in self.sides)]))
        return Read(self.picked, [], compose(self.picked, cited, quotes, evidence), cited)

    def as_dict(self) -> dict:
        return {
            "picked": self.picked,
            "sides": [
                {"name": s.name, "cited": s.number, "read": _said(s.value)} for s in self.sides
            ],
        }


def asked_order(question: str) -> tuple[str, str] | None:
    """(what is compared: "birth", "death" or "event"; which way: "earlier" or "later") for a
    comparison in time, else None."""
    rest = _without_sides(question)
    earlier, later = _EARLIER.search(rest), _LATER.search(rest)
    if bool(earlier) == bool(later) or _NOT_TIME.search(rest):
        return None
    way = "earlier" if earlier else "later"
    if _DEATH.search(rest):
        return "death", way
    if _BIRTH.search(rest):
        # "older" is an earlier birth; "younger" a later one
        return "birth", way
    return "event", way


def through(question: str) -> str | None:
    """What each side of a comparison in time leads to, when the question compares that and
    not the sides ("Which film has the director who died first, A or B?": "director"), else
    None."""
    if len(alternatives(question)) != 2 or asked_order(question) is None:
        return None
    match = _THROUGH.search(_without_sides(question))
    return match.group(1).lower() if match else None


def asked_of_lead(question: str) -> str:
    """What a comparison through a hop asks of each side's bridge, "{}" standing for it
    ("When was {} born?"): what the loop searches for when no passage is about it yet."""
    event = (asked_order(question) or ("event", ""))[0]
    return {"birth": "When was {} born?", "death": "When did {} die?"}.get(event, "Who is {}?")


def compare(
    question: str, evidence: list[dict], leads: dict[str, str] | None = None
) -> Compared | None:
    """The side of a comparison in time that the evidence says comes first (or last);
    through what each side leads to (`leads`: side -> the name read for it, such as each
    film's director) when the question compares that (`through`). For a yes-or-no question
    whether two sides are from the same country, whether their passages say so (`same`)."""
    if is_polar(question):
        return same(question, evidence)
    offered = alternatives(question)
    if len(offered) != 2:
        return None
    order = asked_order(question)
    if order is None:
        return described(question, offered, evidence)
    if through(question) and not all(side in (leads or {}) for side in offered):
        return None  # a film's own year is not its director's birth
    event, way = order
    verbs = _event_words(question, offered) if event == "event" else set()
    sides = []
    for name in offered:
        number = side_passage((leads or {}).get(name, name), evidence)
        if number is None:
            return None
        found = date_of(evidence[number - 1], event, verbs)
        if found is None:
            return None
        own = side_passage(name, evidence) if leads else None
        sides.append(Side(name, number, *found, own=own if own != number else None))
    if sides[0].number == sides[1].number:
        return None  # one passage read for both: not each side's own date
    first = sides[0].value.before(sides[1].value)
    if first is None:
        return None
    picked = sides[0] if first == (way == "earlier") else sides[1]
    return Compared(picked.name, (sides[0], sides[1]))


def described(question: str, offered: list[str], evidence: list[dict]) -> Compared | None:
    """The side the question describes ("Which documentary is about river towns, A or B?"):
    the one whose own passage says more of the question's other words (each weighted by how
    rare it is among the passages), by at least DESCRIBED_BY; none for a question of how
    much ("Which band has more members ...?"), which words do not decide."""
    if _NOT_TIME.search(_without_sides(question)):
        return None
    idf = rarity([content_words(item["text"]) for item in evidence])
    asked = content_words(question) - content_words(" ".join(offered))
    sides = []
    for name in offered:
        number = side_passage(name, evidence)
        if number is None:
            return None
        said = sentences(prose(evidence[number - 1]["text"])) or [evidence[number - 1]["text"]]
        held = content_words(" ".join(said))
        best = max(said, key=lambda sentence: len(content_words(sentence) & asked))
        sides.append(Side(name, number, sum(idf(w) for w in asked & held), best))
    if sides[0].number == sides[1].number or abs(sides[0].value - sides[1].value) < DESCRIBED_BY:
        return None
    return Compared(max(sides, key=lambda side: side.value).name, (sides[0], sides[1]))


def same(question: str, evidence: list[dict]) -> Compared | None:
    """Yes or no to "Are A and B from the same country?" ("Were A and B of the same
    nationality?", "Is A of the same nationality as B?"): whether where each side is from, as
    its own passage's first sentence says it (`origin`), is the same word."""
    match = _SAME.search(question) and (_PAIR.match(question) or _PAIR_AS.match(question))
    if not match:
        return None
    sides = []
    for name in (" ".join(part.strip(" ,").split()) for part in match.groups()):
        number = side_passage(name, evidence)
        if number is None or re.search(r"\b(director|directors|films?) of\b", name, re.I):
            return None  # a side with no passage, or one named by what it leads to
        found = origin(evidence[number - 1])
        if found is None:
            return None
        sides.append(Side(name, number, *found))
    if sides[0].number == sides[1].number:
        return None
    return Compared("yes" if sides[0].value == sides[1].value else "no", (sides[0], sides[1]))


def origin(passage: dict) -> tuple[str, str] | None:
    """Where the subject of `passage` is from, as its first sentence says, with the sentence:
    the word after "is a"/"was an" for a person or a work ("was an American film director",
    "is a 1999 French film"), else, for a place, the last name of that sentence (its country:
    "... a village in Kestrel County, Vardland"); None when it says neither."""
    said = sentences(prose(passage["text"])[:LEAD_CHARS]) or [passage["text"]]
    lead = " ".join(said[:2]) if len(said[0]) < 40 else said[0]  # "A. B. Kell (born ...": one
    found = _ORIGIN.search(lead)
    place = _PLACE_NOUN.search(lead[: found.end() + 40] if found else lead)
    if found and not place:
        word = found.group(1)
    elif place:
        names = [
            w for w in re.findall(r"[A-Z][\w-]+", lead[place.end() :]) if w.lower() not in MONTHS
        ]
        if not names:
            return None
        word = names[-1]
    else:
        return None
    sentence = next((s for s in said if word in s), said[0])
    return word.lower().removesuffix("-born"), sentence


def side_passage(name: str, evidence: list[dict]) -> int | None:
    """The number of the passage about `name`: the one whose title (without its bracketed
    part) is made of the name's words, most of them first; else the first whose first
    sentence holds all of them."""
    said = content_words(name)
    if not said:
        return None
    best, best_share = None, 0.0
    for number, item in enumerate(evidence, start=1):
        title = content_words((item.get("title") or "").split("(")[0])
        if not title:
            continue
        share = len(title & said) / len(title | said)
        if share > best_share:
            best, best_share = number, share
    if best is not None and best_share >= 0.5:
        return best
    for number, item in enumerate(evidence, start=1):
        lead = (sentences(prose(item["text"])) or [""])[0]
        if said <= content_words(lead):
            return number
    return None


def date_of(passage: dict, event: str, verbs: set[str]) -> tuple[Date, str] | None:
    """The date of `event` ("birth", "death", "event") in `passage`, with its sentence."""
    text = prose(passage["text"])
    said = sentences(text) or [text]
    lead = said[0]
    if event in ("birth", "death"):
        # the lead's brackets from the passage's opening: "Tomas R. Arvid (c. 1667 - ...)"
        opening = text[:LEAD_CHARS]  # is cut after "R." and "c." by the sentence splitter
        for inside in _BRACKETS.findall(opening):
            dates = _dates(inside)
            if not dates:
                continue
            if event == "birth" and not re.search(r"\bdied\b|\bd\.", inside[: dates[0][1]]):
                return dates[0][0], _sentence_of(dates[0][0], said)
            if event == "death" and len(dates) > 1 and _RANGE.search(inside):
                return dates[1][0], _sentence_of(dates[1][0], said)
        cue = r"\bborn\b" if event == "birth" else r"\b(died|death)\b"
        for sentence in said:
            if m := re.search(cue, sentence, re.I):
                if dates := _dates(sentence[m.end() : m.end() + 80]):
                    return dates[0][0], sentence
        if event == "death" or re.search(r"\bborn\b", text):
            return None  # a birth or a death not read: no decision
    for sentence in said:  # what else happens once: "founded", "released", a film's year
        if verbs & {w[:5] for w in content_words(sentence)}:
            if dates := _dates(sentence):
                return dates[0][0], sentence
    if dates := _dates(lead):
        return dates[0][0], lead
    return None


def _sentence_of(date: Date, said: list[str]) -> str:
    """The first sentence of `said` that writes `date`'s year (the lead's brackets may be cut
    by an abbreviation: "Margaret Wilson (c." is no quote), for the quote."""
    return next((s for s in said if str(date.year) in s), said[0])


def _said(read: Date | str | float) -> int | str | float:
    """What was read of a side, as the answer's record keeps it."""
    return (
        read.year if isinstance(read, Date) else round(read, 3) if isinstance(read, float) else read
    )


def _dates(text: str) -> list[tuple[Date, int]]:
    """The dates in `text`, each with where it starts: whole ("4 March 1931", "March 1931")
    or a year alone (four digits, no number around it)."""
    out = []
    for m in _DATE.finditer(text):
        day, month, month2, day2, year, bare = m.groups()
        year = int(year or bare)
        if not 1000 <= year <= 2100:
            continue
        name = (month or month2 or "").lower()
        number = MONTH_NAMES.index(name) + 1 if name else 0
        out.append((Date(year, number, int(day or day2 or 0)), m.start()))
    return out


def _without_sides(question: str) -> str:
    """The question without the alternatives it offers (a side may be "The Last Word")."""
    rest = question
    for side in alternatives(question):
        rest = rest.replace(side, " ")
    return rest


def _event_words(question: str, offered: list[str]) -> set[str]:
    """The first five letters of each word of the question that may name the event
    ("founded" -> "found", "released" -> "relea"), past the sides and the cue words."""
    named = content_words(" ".join(offered))
    return {
        w[:5]
        for w in content_words(_without_sides(question))
        if w not in named and w not in _NOT_EVENT  # content words hold no stopword
    }
