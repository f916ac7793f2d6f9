"""The reader: the short answer, read off the evidence, and the sentences that support it.

A small model that writes free text around an answer restates the question, picks the wrong
name, or cites nothing; the same model asked for the answer alone, and only allowed to copy it
from the evidence, does much better. So the answer is found in three steps:

1. `answer_form` says what shape the answer may take: yes or no for a question that asks it
   ("Were A and B both ...?"), one of the alternatives a question offers ("Which is older, A
   or B?"), else a span of the evidence: words copied as they stand, starting at a word.
2. The model reads the numbered evidence (`reader_messages`; which passages and sentences of
   it: passages.py) and writes the short answer,
   its decoding held to that form (a backend that can constrain it does: agent/models/llama.py;
   one that cannot is checked after).
3. `check` accepts a short answer only if it is yes or no for a yes-or-no question, or if its
   content words stand in the passage it cites; `compose` puts it first, cited, and under it
   the sentences of the evidence that support it, quoted: the one that holds the answer, then
   the one that leads to it (the bridge of a two-step question, or the other side of a
   comparison).

The model's own words are the short answer; everything else in the shown answer is the
evidence, quoted and cited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sleuth.agent.citations import strip_citations
from sleuth.agent.prompts import render, template
from sleuth.agent.text import content_words, is_polar, rarity, sentences, words

from .checks import extractive_answer, prose, quote
from .evidence import EVIDENCE_CHARS, evidence_block
from .kinds import asked_kind, asks_whole_date, may_become, of_kind, whole_dates
from .passages import alternatives, reading

SHORT_TOKENS = 24  # longest short answer, in tokens: a name, a title, a date, a few words
SUPPORT_SENTENCES = 2  # quoted under the short answer, at most
YES_NO = ("yes", "no")


@dataclass(frozen=True)
class AnswerForm:
    """The shapes a short answer may take. `options`: the whole answers allowed (yes/no, or
    the question's alternatives); else `sources`: texts whose word-aligned spans are allowed,
    of the kind the question asks for (`expects`, kinds.py), as the source spells them."""

    kind: str  # "polar", "choice" or "span"
    options: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    expects: str | None = None  # a span's kind: "date", "number", "place", "person", ...
    whole_dates: bool = False  # a date asked: read_answer gives the whole date a span is part of
    avoid: frozenset[str] = frozenset()  # content words an answer may not be made of alone
    _spelled: tuple[str, ...] = field(default=(), repr=False, compare=False)
    _lowered: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        spelled = tuple(" ".join(t.split()) for t in self.options or self.sources)
        lowered = tuple(t.lower() for t in spelled)
        # lower-casing may change a text's length (rarely): its spans are then judged lower-cased
        spelled = tuple(
            s if len(s) == len(lo) else lo for s, lo in zip(spelled, lowered, strict=True)
        )
        object.__setattr__(self, "_spelled", spelled)
        object.__setattr__(self, "_lowered", lowered)

    def permits(self, text: str) -> bool:
        """Whether `text` can still become an allowed answer (it is a prefix of one)."""
        wanted = " ".join(text.split()).lower()
        if not wanted:
            return True
        if self.options:
            return any(option.startswith(wanted) for option in self._lowered)
        if text[-1:].isspace():  # a word ended: the next one must follow it in the source
            wanted += " "
        return any(True for _ in self._spans(wanted))

    def fits(self, word: str) -> bool:
        """Whether a span's word may be `word` in an answer of the kind asked (a server's
        grammar is built of such words: agent/models/grammars.py)."""
        return may_become(word + " ", self.expects)

    def _spans(self, wanted: str):
        """(source, where) of each place a source has `wanted`, from a word, as a span that
        can still become an answer of the kind asked (the source's own spelling judged)."""
        for n, lowered in enumerate(self._lowered):
            at = self._find(lowered, wanted)
            while at >= 0:
                if may_become(self._spelled[n][at : at + len(wanted)], self.expects):
                    yield n, at
                at = self._find(lowered, wanted, at + 1)

    def complete(self, text: str) -> bool:
        """Whether `text` is an answer that may end here."""
        wanted = " ".join(text.split()).lower()
        if not wanted:
            return False
        if self.options:
            return wanted in self._lowered
        if not content_words(wanted):  # not "the" alone
            return False
        if self.avoid and content_words(wanted) <= self.avoid:
            return False
        return any(
            of_kind(self._run_on(n, at, len(wanted)), self.expects) for n, at in self._spans(wanted)
        )

    def _run_on(self, n: int, at: int, size: int) -> str:
        """The span of source `n` from `at`, `size` long, run on to the end of its last word."""
        lowered, end = self._lowered[n], at + size
        while end < len(lowered) and lowered[end].isalnum():
            end += 1
        return self._spelled[n][at:end].strip(" ,;:")

    def continuations(self, text: str) -> list[str]:
        """How the allowed answers go on from `text`: the rest of each option it begins, or
        the next few characters after each place the evidence has it (each word, for "")."""
        wanted = " ".join(text.split()).lower()
        if self.options:
            return [o[len(wanted) :] for o in self.options if o.lower().startswith(wanted)]
        out: list[str] = []
        if not wanted:
            out = [w for s in self._spelled for w in s.split() if self.fits(w)]
        for n, at in self._spans(wanted) if wanted else ():
            piece = self._spelled[n][at + len(wanted) : at + len(wanted) + 16]
            word = re.match(r"\s*\S*", piece).group(0)  # the next word: is it of the kind?
            if may_become(self._spelled[n][at : at + len(wanted)] + word, self.expects):
                out.append(piece)
        return list(dict.fromkeys(piece for piece in out if piece))

    def finish(self, text: str) -> str:
        """The answer as the evidence writes it: an option's own spelling, or the span found
        in the evidence, run on to the end of its last word ("" when it is not allowed). Of
        the places the evidence has it, the first whose span is of the kind asked."""
        wanted = " ".join(text.split()).lower().strip()
        if not wanted:
            return ""
        if self.options:
            return next(
                (o for o, lo in zip(self.options, self._lowered, strict=True) if lo == wanted), ""
            )
        spans = [self._run_on(n, at, len(wanted)) for n, at in self._spans(wanted)]
        if not spans:  # no place of the kind: the first place at all, for the check to judge
            spans = [
                self._run_on(n, at, len(wanted))
                for n, lowered in enumerate(self._lowered)
                if (at := self._find(lowered, wanted)) >= 0
            ]
        return next((s for s in spans if of_kind(s, self.expects)), spans[0] if spans else "")

    @staticmethod
    def _find(haystack: str, needle: str, start: int = 0) -> int:
        """Where `needle` first stands in `haystack` from `start`, beginning at a word
        (-1: nowhere)."""
        at = haystack.find(needle, start)
        while at >= 0:
            if at == 0 or not haystack[at - 1].isalnum():
                return at
            at = haystack.find(needle, at + 1)
        return -1


def answer_form(
    question: str, evidence: list[dict], asking: str | None = None, avoid: tuple[str, ...] = ()
) -> AnswerForm:
    """What shape the short answer to `question` may take, over this evidence (a span of the
    kind `asking`, when given, else of the kind the question asks for; not only the words of
    `avoid`, the names a two-step question's steps read before it)."""
    if is_polar(question):
        return AnswerForm("polar", options=YES_NO)
    offered = alternatives(question)
    if offered:
        return AnswerForm("choice", options=tuple(offered))
    # Held to the kind even when what it reads holds none of it: then no answer is (the
    # sources do not say), where a name or a year of another kind would be a wrong one.
    return AnswerForm(
        "span",
        sources=tuple(shown_texts(reading(question, evidence))),
        expects=asking or asked_kind(question),
        whole_dates=asking is None and asks_whole_date(question),
        avoid=frozenset(content_words(" ".join(avoid))),
    )


def shown_texts(evidence: list[dict]) -> list[str]:
    """Each passage as the reader sees it, title first, on one line (spans come from these)."""
    out = []
    for item in evidence:
        text = prose(item["text"])
        if len(text) > EVIDENCE_CHARS:
            text = text[:EVIDENCE_CHARS].rsplit(" ", 1)[0]
        out.append(" ".join(f"{item.get('title') or ''} . {text}".split()))
    return out


def reader_messages(question: str, evidence: list[dict], history_text: str = "") -> list[dict]:
    """The exact messages the reader model gets: instructions, one worked example, and the
    numbered evidence with the question and the form of answer it takes."""
    messages = [{"role": "system", "content": render("read_system")}]
    example = template("read_example").strip()
    if example:
        asked, _, answered = example.partition("\n---\n")
        messages += [
            {"role": "user", "content": asked.strip()},
            {"role": "assistant", "content": answered.strip()},
        ]
    form = answer_form(question, [])
    if form.kind == "polar":
        ask = "Answer yes or no."
    elif form.kind == "choice":
        ask = f"Answer {form.options[0]} or {form.options[1]}."
    else:
        ask = "Answer with the words of the evidence, nothing else."
    messages.append(
        {
            "role": "user",
            "content": render(
                "read_user",
                question=question,
                evidence=evidence_block(reading(question, evidence)),
                history=history_text,
                form=ask,
            ),
        }
    )
    return messages


def cited_passage(short: str, question: str, evidence: list[dict]) -> int | None:
    """The number of the passage the short answer is read from: of those whose text (or
    title) holds its words, the one whose sentence holding them bears on the question most."""
    need = content_words(short)
    if not need:
        return None
    asked = content_words(question)
    best: tuple[float, int] | None = None
    for number, item in enumerate(evidence, start=1):
        title = content_words(item.get("title") or "")
        for sentence in sentences(prose(item["text"])) or [item["text"]]:
            have = content_words(sentence) | title
            if need <= have:
                score = len((content_words(sentence) | title) & asked)
                if best is None or score > best[0]:
                    best = (score, number)
    return best[1] if best else None


def check(short: str, form: AnswerForm, cited: int | None, evidence: list[dict]) -> list[str]:
    """What is wrong with a short answer (empty: nothing): it must be yes or no for a
    yes-or-no question; else its content words must stand in the passage it cites."""
    text = short.strip()
    if not text:
        return ["the short answer is empty"]
    if form.kind == "polar":
        return [] if text.lower() in YES_NO else ["a yes-or-no question answered otherwise"]
    if not content_words(text):
        return [f"the short answer {text!r} says nothing"]
    if form.kind == "span" and not of_kind(text, form.expects):
        return [f"the short answer {text!r} is not a {form.expects}, which the question asks for"]
    if form.avoid and content_words(text) <= form.avoid:
        return [f"the short answer {text!r} only names the step before it"]
    if cited is None or not 1 <= cited <= len(evidence):
        return ["the short answer cites no passage that holds it"]
    item = evidence[cited - 1]
    missing = content_words(text) - content_words(f"{item.get('title') or ''}\n{item['text']}")
    if missing:
        return [f"the short answer {text!r} is not in passage [{cited}], which it cites"]
    return []


def support_sentences(
    short: str, question: str, evidence: list[dict], cited: int | None
) -> list[tuple[int, str]]:
    """Up to SUPPORT_SENTENCES (passage number, sentence) that support the short answer: the
    sentence of the cited passage that holds it (for yes or no: the passage bearing on the
    question most), then the sentence of another passage that bears most on what the question
    asks and the first sentence does not say (the bridge to the answer, or the other side of a
    comparison)."""
    idf = rarity([content_words(item["text"]) for item in evidence])
    weights = {word: idf(word) for word in content_words(question)}
    need = content_words(short) if short.lower() not in YES_NO else set()

    def scored(number: int, sentence: str) -> float:
        item = evidence[number - 1]
        title = content_words(item.get("title") or "")
        have = content_words(sentence)
        overlap = (
            sum(weights.get(w, 0.0) for w in have)
            + sum(weights.get(w, 0.0) for w in title - have) / 2
        )
        return overlap / max(len(have), 1) ** 0.5

    candidates = [
        (number, sentence)
        for number, item in enumerate(evidence, start=1)
        for sentence in sentences(prose(item["text"]))
        if len(content_words(sentence)) >= 3
    ]
    chosen: list[tuple[int, str]] = []
    holding = [
        (n, s)
        for n, s in candidates
        if need and (cited is None or n == cited) and need <= content_words(s) | _title(evidence, n)
    ]
    pool = holding or [(n, s) for n, s in candidates if cited is None or n == cited] or candidates
    if pool:
        chosen.append(max(pool, key=lambda c: scored(*c)))
        for word in content_words(chosen[0][1]) | _title(evidence, chosen[0][0]):
            weights[word] = weights.get(word, 0.0) / 2
    others = [(n, s) for n, s in candidates if n not in {c[0] for c in chosen}]
    while others and len(chosen) < SUPPORT_SENTENCES:
        best = max(others, key=lambda c: scored(*c))
        if scored(*best) <= 0:
            break
        chosen.append(best)
        others = [(n, s) for n, s in others if n != best[0]]
    return chosen


def _title(evidence: list[dict], number: int) -> set[str]:
    return content_words(evidence[number - 1].get("title") or "")


def compose(
    short: str, cited: list[int], quotes: list[tuple[int, str]], evidence: list[dict]
) -> str:
    """The shown answer: the short answer with its citations on the first line, then the
    supporting sentences, quoted with their passage numbers."""
    marks = "".join(f"[{n}]" for n in cited)
    head = f"{short.rstrip('.')} {marks}".strip() + "."
    body = "\n\n".join(f"> {quote(s, evidence[n - 1])} [{n}]" for n, s in quotes)
    return f"{head}\n\n{body}" if body else head


@dataclass
class Read:
    """A completion of the reader's prompt, read as an answer: the short answer (None when it
    is not one the evidence holds), what is wrong with it, and the text shown for it."""

    short: str | None
    problems: list[str]
    text: str
    cited: list[int] = field(default_factory=list)


def read_answer(raw: str, question: str, evidence: list[dict], avoid: tuple[str, ...] = ()) -> Read:
    """What the model wrote for the reader's prompt, as the user would be shown it: the short
    answer as the evidence writes it, cited, over its supporting quotes; or, when it fails its
    check, the problems and the not-found line over the best quotes. The writer, evaluation
    and GRPO's rewards all read completions through this one function."""
    form = answer_form(question, evidence, avoid=avoid)
    short = form.finish(raw) if raw.strip() else ""
    cited = cited_of(short, question, evidence, form.kind)
    if form.whole_dates and cited:
        short = whole_date_of(short, question, evidence[cited[0] - 1])
    found = check(short, form, cited[0] if cited else None, evidence)
    if not short and raw.strip():
        found = [f"{raw.strip()!r} is not an answer the evidence holds"]
    if found:
        quoted = extractive_answer(question, evidence).split("\n\n", 1)[-1]
        return Read(None, found, f"{not_found(question)}\n\n{quoted}")
    quotes = support_sentences(short, question, evidence, cited[0] if cited else None)
    cited = cited or sorted({n for n, _ in quotes})
    return Read(short, [], compose(short, cited, quotes, evidence), cited)


def whole_date_of(short: str, question: str, passage: dict) -> str:
    """The whole date the short answer is part of in the passage it is read from ("March 4,
    1931" for "1931"), in the sentence bearing on the question most; else the answer."""
    asked = content_words(question)
    said = sorted(
        sentences(prose(passage["text"])) or [passage["text"]],
        key=lambda s: -len(content_words(s) & asked),
    )
    return next((dates[0] for s in said if (dates := whole_dates(short, s))), short)


def cited_of(short: str, question: str, evidence: list[dict], kind: str) -> list[int]:
    """The passage a short answer is read from ([] for yes or no: its support says)."""
    if not short or kind == "polar":
        return []
    number = cited_passage(short, question, evidence)
    return [number] if number is not None else []


def not_found(question: str) -> str:
    """The first line when the evidence holds no answer the model could read off it."""
    asked = (words(question) or ["what"])[0]
    asked = asked if asked in {"who", "what", "when", "where", "which", "how", "why"} else "what"
    return f"The sources found do not say {asked} {_rest(question)}."


def _rest(question: str) -> str:
    """The question after its first word, without its question mark ("who founded Lyon")."""
    text = strip_citations(question).strip().rstrip("?").strip()
    parts = text.split(maxsplit=1)
    return parts[1] if len(parts) > 1 else text
