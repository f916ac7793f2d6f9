"""What makes a written answer fit to show, in one place: the research loop rejects answers
that fail these checks, and the trainer's rewards use the same ones (train/checks.py).

- `RepetitionGuard` watches an answer as it streams and trips as soon as it loops ("[1]
  Sleuth [2] Sleuth [3] Sleuth ..."), so a loop costs a few tokens, not the whole budget.
- `problems` lists what is wrong with a finished answer: empty, mostly citation markers,
  repeating itself, echoing the prompt or reciting the evidence list, or citing evidence that
  supports none of its sentences.
- `cut_recitation` cuts an evidence list the model copied out after its answer ("... Moon.
  [1] Tides Tides are caused ..."), so the answer above it can still be judged.
- `extractive_answer` is what the user gets when two answers in a row were rejected: the
  evidence sentences that bear on the question most, quoted with their [n], and labelled as
  quotations, not as the model's answer.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from sleuth.agent.citations import CITATION, MARKER, strip_citations
from sleuth.agent.text import content_words, rarity, sentences

LOOP_NGRAM = 4  # words in the repeating unit that the guard looks for
LOOP_REPEATS = 3  # how often one such unit may appear before the text counts as a loop
RECITED_TITLES = 3  # bare passage titles between markers that make an answer a recited list
EXTRACT_SENTENCES = 3  # quotes in an extractive answer, at most
EXTRACT_FLOOR = 0.5  # how much a later quote must bear on the question, next to the first

_WORD = re.compile(r"\S+")
_EVIDENCE_HEADER = re.compile(rf"^\s*{MARKER}\s+\S")  # "[3] Some title" at a line start
_HEADING = re.compile(r"^\s*#{1,6}\s")  # a Markdown heading line in a passage
_PROMPT_ECHO = re.compile(r"^\s*(question|evidence|answer the question)\s*:", re.I | re.M)
_DECLINED = re.compile(
    r"\b(evidence|sources?|passages?)\b[^.]*\b(does not|do not|doesn't|don't|cannot|can't)\b"
    r"|\bno (information|evidence|mention)\b",
    re.I,
)


def _unit(word: str) -> str:
    """A word as loops repeat it: case and numbers ignored ([1] and [2] are the same)."""
    return re.sub(r"\d+", "#", word.lower())


class RepetitionGuard:
    """Trips when the text streamed so far repeats a unit of LOOP_NGRAM words LOOP_REPEATS
    times. Fed piece by piece (`feed`); also usable on a whole text (`loops`)."""

    def __init__(self, n: int = LOOP_NGRAM, repeats: int = LOOP_REPEATS):
        self.n, self.repeats = n, repeats
        self._pending = ""
        self._words: list[str] = []
        self._seen: Counter[tuple[str, ...]] = Counter()
        self.tripped = False

    def feed(self, piece: str) -> bool:
        """Add streamed text; returns True once the text loops."""
        *words, self._pending = re.split(r"\s+", self._pending + piece)
        for word in words:  # the last piece may be half a word: it waits for the next
            if word:
                self._add(_unit(word))
        return self.tripped

    def _add(self, word: str) -> None:
        self._words.append(word)
        if len(self._words) >= self.n:
            gram = tuple(self._words[-self.n :])
            self._seen[gram] += 1
            if self._seen[gram] >= self.repeats:
                self.tripped = True

    @classmethod
    def loops(cls, text: str) -> bool:
        guard = cls()
        guard.feed(text + " ")
        return guard.tripped


def problems(
    text: str, citations: list[dict] | None = None, evidence: list[dict] | None = None
) -> list[str]:
    """What is wrong with an answer (an empty list: nothing). `citations` are the writer's
    verified ones (research/verify.py `verify`); without them only the answer's form is judged.
    With the `evidence`, an answer that lists its passages' titles on one line counts as
    reciting the evidence list too ("Tomas Reyes [2]. Luis Ortega [3]. ...")."""
    found = []
    words = _WORD.findall(strip_citations(text))
    if not words:
        return ["it is empty"]
    markers = len(CITATION.findall(text))
    if markers >= 3 and len(content_words(strip_citations(text))) <= 2 * markers:
        found.append("it is mostly citation markers")
    if RepetitionGuard.loops(text) or _repeated_sentence(text):
        found.append("it repeats itself")
    if _PROMPT_ECHO.search(text):
        found.append("it echoes the prompt")
    lines = [line for line in text.splitlines() if line.strip()]
    if (len(lines) > 1 and any(_EVIDENCE_HEADER.match(line) for line in lines)) or (
        evidence and _bare_titles(text, evidence) >= RECITED_TITLES
    ):
        found.append("it recites the evidence list")
    if citations is not None and not _DECLINED.search(text):
        if not citations:
            found.append("it cites no evidence")
        elif not any(c["supported"] for c in citations):
            found.append("no sentence is supported by the evidence it cites")
    return found


def cut_recitation(text: str, evidence: list[dict]) -> tuple[str, bool]:
    """`text` up to the first line that opens with "[n] <title of passage n>", when an answer
    stands above that line; returns the text and whether anything was cut."""
    lines = text.splitlines(keepends=True)
    for index, line in enumerate(lines):
        if not line.strip() or not _recites(line, evidence):
            continue
        above = "".join(lines[:index])
        if not above.strip():  # it opens with the list: there is no answer to keep
            return text, False
        return above.rstrip(), True
    return text, False


def _recites(line: str, evidence: list[dict]) -> bool:
    """Whether a line opens like passage n of the evidence list: "[n] <its title>"."""
    match = re.match(r"\s*\[(\d{1,3})\]\s+(.*)", line)
    if not match or not 1 <= int(match.group(1)) <= len(evidence):
        return False
    title = " ".join((evidence[int(match.group(1)) - 1].get("title") or "").split()).lower()
    return bool(title) and match.group(2).lower().startswith(title)


def _bare_titles(text: str, evidence: list[dict]) -> int:
    """How many of the pieces between citation markers are nothing but a passage's title."""
    titles = {_plain(item.get("title") or "") for item in evidence} - {""}
    return sum(_plain(piece) in titles for piece in CITATION.split(text)[::2])


def _plain(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def _repeated_sentence(text: str) -> bool:
    said = [" ".join(s.lower().split()) for s in sentences(strip_citations(text)) if s.strip()]
    most = Counter(said).most_common(1)
    return bool(most) and most[0][1] >= 3


def prose(passage: str) -> str:
    """A passage without its Markdown headings (a heading on a line of its own is dropped; in
    a passage of one line only its marks go), on one line."""
    lines = passage.splitlines()
    if len(lines) > 1:
        passage = " ".join(line for line in lines if not _HEADING.match(line))
    else:
        passage = _HEADING.sub("", passage)
    return " ".join(passage.split())


def extractive_answer(question: str, evidence: list[dict]) -> str:
    """The evidence sentences that bear on the question most, quoted with their numbers and
    labelled as quotes: at most EXTRACT_SENTENCES (a multi-hop question needs two or three
    facts), from different passages when they can be, each after the first bearing on the
    question at least EXTRACT_FLOOR as much as the first.

    A sentence is read with its passage's title ("It is a sequel to ..." in a passage titled
    "Salt and Ember"): title words it lacks count half, and the quote names the title after it.
    After each quote, every word in it weighs half its rarity, the question's and its own
    alike: the next quote covers what the question asks that is not quoted yet (the other
    person of "Who is older, A or B?") or follows the quotes before it to the passage they
    lead to (the bridge of a multi-hop question), not a passage that restates them."""
    idf = rarity([content_words(item["text"]) for item in evidence])
    weights = {word: idf(word) for word in content_words(question)}
    candidates = [
        (number, sentence, words, content_words(item.get("title") or "") - words)
        for number, item in enumerate(evidence, start=1)
        for sentence in sentences(prose(item["text"]))
        if len(words := content_words(sentence)) >= 3
    ]

    def score(candidate) -> float:
        _, _, words, title = candidate
        overlap = (
            sum(weights.get(w, 0.0) for w in words) + sum(weights.get(w, 0.0) for w in title) / 2
        )
        return overlap / math.sqrt(len(words))

    chosen: list[tuple[int, str]] = []
    first = 0.0
    while len(chosen) < EXTRACT_SENTENCES:
        quoted = {number for number, _ in chosen}
        left = [(score(c), c) for c in candidates if c[:2] not in chosen]
        left = [(value, c) for value, c in left if value > 0]
        left = [(value, c) for value, c in left if c[0] not in quoted] or left
        if not left:
            break
        # The first of equals: evidence order breaks ties.
        value, best = max(left, key=lambda scored: scored[0])
        if chosen and value < EXTRACT_FLOOR * first:
            break
        first = first or value
        chosen.append(best[:2])
        for word in best[2] | best[3]:
            weights[word] = idf(word) / 2
    if not chosen:
        return (
            "No answer: the model's answers did not hold up, and no sentence in the evidence "
            "bears on the question."
        )
    quotes = "\n\n".join(f"> {quote(s, evidence[n - 1])} [{n}]" for n, s in chosen)
    return (
        "Quoted from the sources (the model's answers did not hold up, so these are the "
        f"passages that bear on the question most):\n\n{quotes}"
    )


def quote(sentence: str, item: dict) -> str:
    """A quoted sentence, followed by its passage's title when it does not name what the
    title names ("It is told in first person. — The Lantern Keepers"): what "it" is, the
    reader should see. A title's note in brackets ("Arne Lindqvist (director)") need not be
    named."""
    sentence = CITATION.sub("", sentence).strip()
    title = " ".join((item.get("title") or "").split())
    name = content_words(re.sub(r"\s*\(.*?\)", "", title)) or content_words(title)
    if title and not name <= content_words(sentence):
        return f"{sentence} — {title}"
    return sentence
