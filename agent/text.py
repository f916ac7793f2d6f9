"""Text utilities: chunking with overlap, sentences, content words, near-duplicates, support."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from .citations import MARKER, strip_citations

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our ours out over own same she
    should so some such than that the their theirs them then there these they this those through
    to too under until up very was we were what when where which while who whom whose why will
    with would you your yours""".split()
)

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
# A sentence ends at . ! or ? and keeps the citation markers that follow it: the next one
# starts with a capital, a digit, a quote or bracket (not a citation marker) or a quote mark
# of Markdown (">").
_SENTENCE_END = re.compile(rf"(?<=[.!?])((?:\s*{MARKER})*)\s+(?=[A-Z0-9\"'(>]|\[(?!\d))")


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int  # character offsets into the source text
    end: int


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return [w.lower() for w in _WORD.findall(text)]


def search_terms(text: str) -> list[str]:
    """The words of `text` worth searching for, in order, once each: no stopwords (the
    full-text index does its own stemming)."""
    return list(dict.fromkeys(w for w in words(text) if w not in STOPWORDS))


def content_words(text: str) -> set[str]:
    """Words that carry meaning: no stopwords, no one-letter tokens, crude plural folding."""
    out = set()
    for word in words(text):
        if word in STOPWORDS or len(word) < 2:
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.add(word)
    return out


def rarity(documents: list[set[str]]) -> Callable[[str], float]:
    """How rare a word is among `documents` (each a set of content words): a smoothed inverse
    document frequency, log(1 + n / (1 + the documents that hold it))."""

    def of(word: str) -> float:
        return math.log(1 + len(documents) / (1 + sum(word in d for d in documents)))

    return of


CHUNK_CHARS = 900  # a chunk: a paragraph or two, small enough that BM25 ranks passages, not pages
CHUNK_OVERLAP = 150  # so a sentence cut at a boundary is whole in one of the two chunks


def chunk_text(text: str, size: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP) -> list[Chunk]:
    """Split `text` into chunks of about `size` characters that overlap by about `overlap`.

    Cuts prefer a paragraph break, then a sentence end, then a space, so a chunk rarely splits
    a sentence; offsets point into the original text.
    """
    if size <= overlap:
        raise ValueError("chunk size must exceed the overlap")
    text_len = len(text)
    chunks: list[Chunk] = []
    start = 0
    while start < text_len:
        while start < text_len and text[start].isspace():
            start += 1
        if start >= text_len:
            break
        end = min(start + size, text_len)
        if end < text_len:
            window = text[start:end]
            floor = size // 2
            cut = -1
            for marker in ("\n\n", ". ", "? ", "! ", "\n", " "):
                cut = window.rfind(marker, floor)
                if cut != -1:
                    end = start + cut + len(marker.rstrip(" ")) if marker != "\n\n" else start + cut
                    break
        piece = text[start:end].strip()
        if piece:
            chunks.append(Chunk(piece, start, end))
        if end >= text_len:
            break
        next_start = max(end - overlap, start + 1)
        # Start the overlap at a word boundary.
        space = text.find(" ", next_start, end)
        start = space + 1 if space != -1 else next_start
    return chunks


def sentences(text: str) -> list[str]:
    """Split prose into sentences, keeping a sentence's trailing citations with it."""
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*[-*\d]+[.)]?\s)", text):
        block = block.strip()
        if block:
            start = 0
            for end in _SENTENCE_END.finditer(block):
                out.append(block[start : end.end(1)].strip())  # with its trailing markers
                start = end.end()
            out.append(block[start:].strip())
    return [sentence for sentence in out if sentence]


_AUXILIARIES = frozenset(
    "is are was were am do does did can could will would shall should may might must has have "
    "had".split()
)


_ASKED = frozenset("you u anyone anybody someone somebody".split())


def is_polar(question: str) -> bool:
    """Whether a question asks yes or no ("Were X and Y of the same nationality?"): it opens
    with an auxiliary verb, is not a request put as one ("Can you find who wrote Dune?") and
    offers no alternatives ("Is X or Y older?" asks which)."""
    first = [w.lower().strip("\"'(,") for w in question.split(maxsplit=2)]
    if not first or first[0] not in _AUXILIARIES or (first[1:2] and first[1] in _ASKED):
        return False
    return not re.search(r"\bor\b(?!\s+not\b)", question, re.I)


def jaccard(a: set[str], b: set[str]) -> float:
    """Overlap of two word sets, 0..1."""
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def near_duplicate(a: str, b: str, threshold: float = 0.8) -> bool:
    """Whether two passages say almost the same thing (mirrors, syndicated copies)."""
    return jaccard(content_words(a), content_words(b)) >= threshold


def support(claim: str, evidence: str) -> float:
    """How much of a claim's content is found in the evidence: the share of the claim's
    content words that appear there (0..1). Citation markers are ignored."""
    claim_words = content_words(strip_citations(claim))
    if not claim_words:
        return 1.0  # nothing to support ("See [1].")
    return len(claim_words & content_words(evidence)) / len(claim_words)
