"""The reader's candidates: the short answers it could give, each with what Sleuth knows of it
at the reader, for a reward model to choose among (agent/research/picker.py).

The model's own reading is one candidate; the others are the answers of the form that stand
in what it read: the options of a yes-or-no question or a comparison, else each span of the
kind asked (a name's run of capitalised words, a date, a number). They cost no model call:
what the model believed comes from the logits of its own reading (the log-probability of
each candidate's first token, and of the tokens it wrote), the rest from the passages.

Features (FEATURES, each near the range -1..1, so one prior and one penalty fit them all):

  greedy          1 for the model's own reading
  lp_first        the log-probability of the candidate's first token, / 10
  lp_gap          lp_first less the best candidate's, / 10 (0 for the likeliest)
  lp_path         the mean log-probability of the tokens the model wrote, / 5 (of the
                  question: how sure the reading was)
  margin          the best candidate's lp_first less the second's, / 10 (of the question)
  rank            the first passage holding it, in the order read, 0 (first) .. 1 (last)
  count           how often what was read holds it, log(1 + n) / 3
  question_words  the share of its content words that are the question's own
  overlap         the sentence holding it that bears most on the question: the question's
                  words it shares, weighted by rarity, over all of theirs
  title           1 when it is a passage's title (what the passage is about)
  lead            1 when a passage's first sentence holds it (where a passage says what its
                  subject is)
  words           its words, / 5
  polar, choice   1 for a yes-or-no question, or one offering two alternatives
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from sleuth.agent.text import STOPWORDS, content_words, rarity, sentences

from .kinds import JOINING, NAMED, dates_in, of_kind

FEATURES = (
    "greedy",
    "lp_first",
    "lp_gap",
    "lp_path",
    "margin",
    "rank",
    "count",
    "question_words",
    "overlap",
    "title",
    "lead",
    "words",
    "polar",
    "choice",
)
K = 8  # candidates kept: the model's reading and the K - 1 others likeliest to it
FLOOR = -15.0  # the log-probability of a first token the model did not rank among its best

_MARKS = "\"'()[]“”‘’"  # quotes and brackets around a word
_YEARISH = re.compile(r"\b(?:1\d{3}|20\d{2})s?\b|\b\d{1,2}(?:st|nd|rd|th) century\b", re.I)
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?:\s+(?:million|billion|thousand))?\b")


@dataclass
class Candidate:
    """A short answer the reader could give: its text as the evidence writes it, and its
    features (FEATURES, by name)."""

    text: str
    features: dict[str, float] = field(default_factory=dict)
    score: float | None = None  # the reward model's, once one has scored it
    shows: str | None = None  # the short answer shown for it, where that differs (a whole date)

    def as_dict(self) -> dict:
        out = {"text": self.text, "features": {k: round(v, 4) for k, v in self.features.items()}}
        if self.shows and self.shows != self.text:
            out["shows"] = self.shows
        if self.score is not None:
            out["score"] = round(self.score, 4)
        return out


def propose(
    form,
    reading: str,
    question: str,
    read: list[dict],
    *,
    first_tokens: list[tuple[str, float]] = (),
    token_logprobs: list[float] = (),
) -> list[Candidate]:
    """The reader's candidates for `question` (the model's `reading` first, when it is one),
    at most K, with their features. `form` is the answer's form (reader.py `AnswerForm`),
    `read` the passages as the reader read them (passages.py `reading`)."""
    own = form.finish(reading) if reading.strip() else ""
    own = own if own and form.complete(own) else ""  # a reading not of the form is none
    texts = [own] if own else []
    seen = {_key(own)}
    for text in _of_form(form):
        if _key(text) not in seen and form.complete(text):
            texts.append(text)
            seen.add(_key(text))
    first = {_key(t): _first_logprob(t, first_tokens) for t in texts}
    if len(texts) > K:  # the model's own, then the others the model believed likeliest
        texts = texts[:1] + sorted(texts[1:], key=lambda t: -first[_key(t)])[: K - 1]
    best = sorted((first[_key(t)] for t in texts), reverse=True) + [FLOOR, FLOOR]
    path = sum(token_logprobs) / len(token_logprobs) if token_logprobs else 0.0
    passages = _passages(read)
    weigh = _weights(question, passages)
    asked = content_words(question)
    said = [s for _, passage in passages for s in sentences(passage)]  # split once, not per text
    leads = [_lead(item["text"]) for item in read]
    out = []
    for text in texts:
        have = content_words(text)
        holding = [n for n, (_, said) in enumerate(passages) if _holds(said, text)]
        out.append(
            Candidate(
                text,
                {
                    "greedy": float(bool(own) and text == texts[0]),
                    "lp_first": first[_key(text)] / 10,
                    "lp_gap": (first[_key(text)] - best[0]) / 10,
                    "lp_path": max(path, FLOOR) / 5,
                    "margin": (best[0] - best[1]) / 10,
                    "rank": holding[0] / max(len(passages) - 1, 1) if holding else 1.0,
                    "count": math.log1p(sum(_count(s, text) for _, s in passages)) / 3,
                    "question_words": len(have & asked) / len(have) if have else 0.0,
                    "overlap": max((weigh(s) for s in said if _holds(s, text)), default=0.0),
                    "title": float(any(_key(t) == _key(text) for t, _ in passages)),
                    "lead": float(any(_holds(lead, text) for lead in leads)),
                    "words": len(text.split()) / 5,
                    "polar": float(form.kind == "polar"),
                    "choice": float(form.kind == "choice"),
                },
            )
        )
    return out


def _of_form(form) -> list[str]:
    """Every answer of the form that stands in what was read, in the order read."""
    if form.options:
        return list(form.options)
    found: list[str] = []
    for source in form.sources:
        if form.expects in ("date", "number", None):
            found += [m.group(0) for m in _YEARISH.finditer(source)]
            found += [m.group(0) for m in _NUMBER.finditer(source)]
            found += dates_in(source)
        if form.expects in NAMED or form.expects is None:
            found += _names(source)
    return [t for t in dict.fromkeys(" ".join(t.split()) for t in found) if t]


def _names(text: str) -> list[str]:
    """Each run of capitalised words in `text` (joining words inside it, none at its ends),
    split where a sentence or a clause ends; a lone word that is a common one ("The", "In")
    is none."""
    runs: list[list[str]] = []
    run: list[str] = []
    for raw in text.split():
        bare = raw.strip(_MARKS + ",.;:!?")
        tail = raw.strip(_MARKS)
        if tail.endswith(".") and len(bare) <= 3:  # an abbreviation: "St.", "Jr."
            bare += "."
        ends = tail[-1:] in set(",;:!?") or (tail.endswith(".") and not bare.endswith("."))
        if bare[:1].isupper() and not any(ch.isdigit() for ch in bare):
            run.append(bare)
        elif run and bare.lower() in JOINING and not ends:
            run.append(bare)
            continue
        else:
            runs.append(run)
            run = []
            continue
        if ends:
            runs.append(run)
            run = []
    runs.append(run)
    out = []
    for run in runs:
        parts = [run] + _segments(run)  # "Lena Voss of Vardholm": "Lena Voss", "Vardholm"
        if run and run[0].lower() in STOPWORDS and len(run) > 1:
            parts.append(run[1:])  # a sentence's first word ("In Vardholm", "The Low Tide")
        for part in parts:
            while part and part[0].lower() in JOINING - {"the"}:
                part = part[1:]
            while part and part[-1].lower() in JOINING:
                part = part[:-1]
            if not part or (len(part) == 1 and part[0].lower() in STOPWORDS):
                continue
            name = " ".join(part)
            if of_kind(name, "name"):
                out.append(name)
    return out


def _segments(run: list[str]) -> list[list[str]]:
    """The runs of capitalised words a name with joining words holds (none when it has none)."""
    if not any(w.lower() in JOINING for w in run):
        return []
    out, part = [], []
    for word in run:
        if word.lower() in JOINING:
            out.append(part)
            part = []
        else:
            part.append(word)
    return [p for p in [*out, part] if p]


def _first_logprob(text: str, first_tokens) -> float:
    """The log-probability of the likeliest first token the model ranked that `text` begins
    with (FLOOR when none did)."""
    said = text.lower()
    found = [
        lp for piece, lp in first_tokens if piece.strip() and said.startswith(piece.strip().lower())
    ]
    return max(found, default=FLOOR)


def _passages(read: list[dict]) -> list[tuple[str, str]]:
    return [(t := item.get("title") or "", f"{t} . {item['text']}") for item in read]


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _holds(text: str, answer: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(_key(answer))}(?!\w)", _key(text)) is not None


def _count(text: str, answer: str) -> int:
    return len(re.findall(rf"(?<!\w){re.escape(_key(answer))}(?!\w)", _key(text)))


def _lead(text: str) -> str:
    """A passage's first sentence."""
    return (sentences(text) or [text])[0]


def _weights(question: str, passages: list[tuple[str, str]]):
    """How much of the question's words (by rarity among the passages) a sentence holds."""
    idf = rarity([content_words(said) for _, said in passages])
    asked = {w: idf(w) for w in content_words(question)}
    total = sum(asked.values()) or 1.0

    def weigh(sentence: str) -> float:
        return sum(asked.get(w, 0.0) for w in content_words(sentence)) / total

    return weigh
