"""Two-step questions, read in order: first what the question only describes, then the answer.

"Where was the director of film The Low Tide born?" asks about a person it never names. A
small reader shown the film's passage and the director's at once often answers with a name
or a place from the wrong one. Read in order, each step is a one-step question:

1. the bridge, a short answer of its own: "Who is the director of film The Low Tide?" read
   from the passages about the film ("Ansel Brandt");
2. the question with the bridge in place of its description, "Where was Ansel Brandt born?",
   read from the passages about the bridge (the loop searches for it when research has not
   found them: loop.py).

`find_hop` finds the description by the shape of the question (no list of relations; a
few short lists of what a description is not: kinds of place, parts, events):

- "the R of [the] [kind] NAME": R and the kind are lower-case words, NAME a run of
  capitalised words ("the director of film The Low Tide", "the founder of Kestrel Works");
- "NAME's R": "Tomas Arvid's wife", "Lena Voss's father's" (a birthday, a death ...);
- "the NOUN who/that/which/where ..." to the end of the question ("... held by the woman
  who played Nell Farrow in Salt and Ember", "In what county is the town where Lena Voss
  was born?").

A description that is all the question asks ("Who is the father of Tomas Arvid?") is no hop:
it is read as it stands. A chain ("the father of the director of film X") is read from the
inside out, one hop at a time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sleuth.agent.text import content_words, is_polar

from .kinds import JOINING
from .passages import alternatives
from .reader import Read, cited_passage, compose, support_sentences

MAX_HOPS = 2  # descriptions read in turn before the answer
MAX_WORDS = 20  # of a question split into steps; longer ones join clauses no rule can part
# Lower-case words an "R" may begin with besides the relation itself ("paternal grandfather").
_MODIFIERS = frozenset(
    "paternal maternal younger older elder eldest youngest first second late former lead "
    "current founding principal main".split()
)
# What the words before and after a description may be when it is all the question asks.
_BARE = re.compile(
    r"^(who|what|which)( (is|was|are|were))?( the (full |real )?name of)? \{\}( called)?$", re.I
)
# What "the R of NAME" says NAME is, not something NAME leads to ("the city of Lyon", "the
# siege of Tarn"): places and bodies, and events.
_KINDS_OF_NAME = frozenset(
    "city town village state country county province region island kingdom republic empire "
    "duchy river lake mountain valley district borough municipality parish port bay sea "
    "university college school church diocese siege battle war treaty reign year era age "
    "period title term word east west north south".split()
)
# Nor is "the R of NAME" (or "NAME's R") someone to find when R is a part, a role or an event.
_NOT_SOMEONE = frozenset("part role side end rest top birth death life".split())
_EVENT = re.compile(r"(ing|tion|sion|ment)$")  # "the recording of", "X's suspension"
# An outer question whose verb went into the description: "Who did {}?", "How many times
# has {}?" (the clause took "play in ...", "won ...").
_UNFINISHED = re.compile(r"\b(did|does|do|has|have|had) \{\}$")
_PREPOSITIONS = frozenset("of in from for with at on to by about into".split())
_ASKING = frozenset("which what who whom whose where when how".split())
_RELATIVE = frozenset({"who", "that", "which", "where"})
_NOT_RELATION = frozenset(
    "is was are were did does do has have had be been a an the and or in on at by for to with "
    "from as it its their his her this these those which who whom whose what when where why "
    "how name most own best only last latest".split()
)


@dataclass(frozen=True)
class Hop:
    """One step of a question: `inner` asks for what the question describes as `described`;
    `outer`, with "{}" where the description stood, asks the rest."""

    described: str
    inner: str
    outer: str

    def read_from(self, passage: dict) -> bool:
        """Whether a bridge may be read from `passage`: it names at least half of the
        described name's words (the film's title, the person's name), title counted."""
        named = content_words(" ".join(w for w in self.described.split() if _name_word(w)))
        held = content_words(f"{passage.get('title') or ''}\n{passage['text']}")
        return 2 * len(named & held) >= len(named)

    def then(self, bridge: str) -> str:
        """The question that remains once the description is known to be `bridge`."""
        return self.outer.replace("{}", bridge, 1)


@dataclass(frozen=True)
class Bridge:
    """A hop read: what the description turned out to be, and the passage it was read from."""

    hop: Hop
    name: str
    cited: int | None = None


def find_hop(question: str) -> Hop | None:
    """The innermost description in `question` that the rest of it asks about (None: no
    description, or one that is the whole question)."""
    if is_polar(question) or alternatives(question):
        return None  # a comparison through a hop is read as a comparison
    said = _kin(question.strip().rstrip("?")).split()
    if len(said) > MAX_WORDS:
        return None  # a long question of many clauses: read as it stands
    of = list(_described_of(said))
    found = [
        *of,
        *(  # "the R of NAME's ..." describes NAME's owner: the possessive is outside it
            p for p in _possessive(said) if not any(s < p[0] < e for s, e, _, _ in of)
        ),
        *_relative(said),
    ]
    if not found:
        return None
    start, end, inner, kept = max(found, key=lambda f: (f[0], -f[1]))  # innermost: latest
    outer = " ".join([*said[:start], "{}" + kept, *said[end:]])
    if _BARE.match(outer.strip()) or _UNFINISHED.search(outer):
        return None
    described = " ".join(said[start:end])
    return Hop(described, inner, outer + "?")


# Kin two steps away, as the two steps: "the paternal grandfather of X" is "the father of the
# father of X", read from the inside out like any chain.
_KIN = {
    "paternal grandfather": "father of the father",
    "paternal grandmother": "mother of the father",
    "maternal grandfather": "father of the mother",
    "maternal grandmother": "mother of the mother",
    "father-in-law": "father of the spouse",
    "mother-in-law": "mother of the spouse",
}
_KIN_OWNED = re.compile(rf"(\S.*?)['’]s ({'|'.join(_KIN)})\b")


def _kin(question: str) -> str:
    """`question` with kin two steps away said as the two steps ("Lena Voss's paternal
    grandmother" is "the mother of the father of Lena Voss")."""

    def owned(match: re.Match) -> str:
        words = match.group(1).split()
        start = len(words)
        while start > 0 and (_name_word(words[start - 1]) or words[start - 1] in JOINING):
            start -= 1
        while start < len(words) and not _name_word(words[start]):
            start += 1
        lead, name = " ".join(words[:start]), " ".join(words[start:])
        return f"{lead} the {_KIN[match.group(2)]} of {name}".strip()

    question = _KIN_OWNED.sub(owned, question)
    for kin, steps in _KIN.items():
        question = re.sub(rf"\b{kin} of\b", f"{steps} of", question)
    return question


def _described_of(said: list[str]):
    """ "the R of [the] [kind] NAME": (start, end, inner question, "") for each."""
    for i, word in enumerate(said):
        if word.lower() != "the":
            continue
        j = i + 1
        while j < len(said) and j - i <= 3 and _lower(said[j]) and said[j] != "of":
            j += 1
        if j == i + 1 or j >= len(said) or said[j] != "of":
            continue
        if any(w.lower() in _NOT_RELATION for w in said[i + 1 : j]):
            continue
        if re.search(r"[^su]s$", said[j - 1]):  # "the origins of ...": a bridge is one thing
            continue
        if said[j - 1] in _KINDS_OF_NAME | _NOT_SOMEONE or _EVENT.search(said[j - 1]):
            continue  # "the city of Lyon" is Lyon; "the founding of X" is no one to find
        k = j + 1
        if k < len(said) and said[k].lower() == "the":
            k += 1
        while k < len(said) and k - j <= 3 and _lower(said[k]) and said[k] not in ("of", "the"):
            if said[k] in _NOT_RELATION:
                break
            k += 1
        end = _name_end(said, k)
        if end > k and _name_word(said[k]) and not re.search(r"['’]s$|,$", said[end - 1]):
            if _ends_there(said, end):
                yield i, end, f"Who is {' '.join(said[i:end])}?", ""


def _possessive(said: list[str]):
    """ "NAME's R": (start, end, inner question, what the outer keeps of R's word) for each."""
    for n, word in enumerate(said):
        bare = word.rstrip(",;:")
        if not re.search(r"['’]s$", bare) or n + 1 >= len(said):
            continue
        owner = bare[:-2].strip() or None  # "Deivam 's": the name ends a word earlier
        start = n if owner else n - 1
        while start > 0 and (_name_word(said[start - 1]) or said[start - 1].lower() in JOINING):
            start -= 1
        while start < n and not _name_word(said[start]):  # joiners do not begin a name
            start += 1
        if start >= n + (1 if owner else 0) or not said[start][:1].isupper():
            continue  # "2015's thriller": a year owns nothing to search for
        if owner and not _name_word(said[n]):
            continue  # "whom's life"
        rest = n + 1
        if said[rest].lower() in _MODIFIERS and rest + 1 < len(said):
            rest += 1
        relation = said[rest]
        if not _lower(relation.rstrip("'’s")) or relation.lower() in _NOT_RELATION:
            continue
        head = relation.rstrip("'’s") if re.search(r"['’]s$", relation) else relation
        if _EVENT.search(head) or head in _NOT_SOMEONE:
            continue  # "Arvid's suspension": an event, not someone
        if said[rest + 1 : rest + 2] == ["of"] and rest + 2 < len(said) and _lower(said[rest + 2]):
            rest += 2  # "NAME's city of birth"
            relation = said[rest]
        tail = re.search(r"['’]s$", relation)
        if not tail and (re.search(r"[^su]s$", relation) or not _ends_there(said, rest + 1)):
            continue  # "Arvid's songs": no one thing; "Arvid's tax code": R runs on

        kept = tail.group(0) if tail else ""  # "father's birthday": "'s" stays in the outer
        name = " ".join(said[start : rest + 1])
        yield start, rest + 1, f"Who is {name[: len(name) - len(kept)]}?", kept


def _relative(said: list[str]):
    """ "the NOUN who/that/which/where ..." to the end: (start, end, inner question, "")."""
    for i, word in enumerate(said):
        if word.lower() != "the" or i == 0:
            continue
        for j in range(i + 1, min(i + 5, len(said) - 1)):
            how = said[j]
            if how in _RELATIVE:  # lower-case: "The Boy Who ..." is a title
                end = len(said)
                if _lower(said[-1]) and (said[-2][-1:] in "\"”'’" or _name_word(said[-2])):
                    end -= 1  # "the band that recorded Salt and Ember | from": the outer's word
                rest = said[j + 1 : end]
                if not any(_name_word(w) for w in rest) or any(w.endswith(",") for w in rest):
                    break  # names nothing to search for, or is not the question's last part
                if rest[-1].lower() in _PREPOSITIONS or "of" in said[i + 1 : j]:
                    break  # "... a member of": the clause took the outer's words
                if any(w.lower() in _ASKING for w in rest):
                    break  # "... for which group ...": what is asked is inside it
                clause, noun = " ".join(rest), " ".join(said[i + 1 : j])
                if how == "who":
                    asked = f"Who {clause}?"
                elif how == "where":  # "the city where Lena Voss was born"
                    asked = f"Which {noun} is it where {clause}?"
                else:
                    asked = f"Which {noun} {clause}?"
                yield i, end, asked, ""
                break
            if how.lower() in _NOT_RELATION:
                break


def _ends_there(said: list[str], end: int) -> bool:
    """Whether a description may end before word `end`: at the question's end, before its
    last word ("... born?"), or before a joining or asking word ("... is from?"). A
    lower-case word that runs on ("... Kestrel record label ...") says the name was only part
    of a longer description."""
    return end >= len(said) - 1 or said[end].lower() in _NOT_RELATION


def _name_end(said: list[str], k: int) -> int:
    """Where the name that starts at word `k` ends: capitalised words, numbers, a part in
    brackets, and joining words between capitalised ones."""
    end, j, depth = k, k, 0
    while j < len(said):
        word = said[j]
        depth += word.count("(") - word.count(")")
        if depth > 0 or word.endswith(")") or _name_word(word) or word[:1].isdigit():
            end = j + 1
        elif word.lower() not in JOINING:
            break
        j += 1
    return end


def _name_word(word: str) -> bool:
    """Whether a word can stand in a name here: it starts, past punctuation, with a capital or
    a digit ("(1929", "2003")."""
    first = next((ch for ch in word if ch.isalnum()), "")
    return bool(first) and (first.isupper() or first.isdigit())


def _lower(word: str) -> bool:
    return word.isalpha() and word.islower()


def names_the_question(bridge: str, question: str) -> bool:
    """Whether a bridge read is only a name the question says already (no step taken)."""
    words = content_words(bridge)
    return not words or words <= content_words(question)


def about(name: str, evidence: list[dict]) -> bool:
    """Whether the evidence has a passage about `name` (its title holds the name's words)."""
    need = content_words(name)
    return bool(need) and any(need <= content_words(item.get("title") or "") for item in evidence)


def cited(bridges: list[Bridge], evidence: list[dict]) -> list[Bridge]:
    """The bridges with the passage each is read from, in this evidence."""
    return [Bridge(b.hop, b.name, cited_passage(b.name, b.hop.inner, evidence)) for b in bridges]


def shown_with(read: Read, bridges: list[Bridge], asked: str, evidence: list[dict]) -> Read:
    """A short answer read through bridges, shown with each step's sentence in order: the
    one that names each bridge, then the one that holds the answer ("The Low Tide is a film
    by Ansel Brandt [1]." "Ansel Brandt was born in Vardholm [2].")."""
    if read.short is None or not bridges:
        return read
    quotes: list[tuple[int, str]] = []
    for bridge in bridges:
        quotes += support_sentences(bridge.name, bridge.hop.inner, evidence, bridge.cited)[:1]
    own = read.cited[0] if read.cited else None
    quotes += support_sentences(read.short, asked, evidence, own)[:1]
    quotes = list(dict.fromkeys(quotes))
    return Read(read.short, [], compose(read.short, read.cited, quotes, evidence), read.cited)
