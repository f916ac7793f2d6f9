"""Verification of an answer against the evidence it cites.

Citation markers in odd shapes are repaired to [n]; every [n] must point at real
evidence (dangling ones are removed and counted); each cited sentence gets a support score
against the evidence it cites (each passage's title and text, as the writer saw them), and
sentences below SUPPORT_MIN are flagged as unsupported.

Attribution (`attribute`): a small model often writes a sentence straight from the evidence and
forgets the [n]. An answer that cites nothing gets a marker on each sentence that one passage
supports almost word for word (ATTRIBUTE_MIN, stricter than SUPPORT_MIN); the count is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sleuth.agent.citations import CITATION, cited_numbers, numbers_in, repair
from sleuth.agent.text import content_words, sentences, support

SUPPORT_MIN = 0.5  # share of a sentence's content words that its cited evidence must contain
ATTRIBUTE_MIN = 0.8  # ... that one passage must contain for an uncited sentence to be credited
ATTRIBUTE_WORDS = 3  # content words a sentence needs before it is credited to a passage


@dataclass
class Verified:
    text: str
    citations: list[dict]
    verification: dict


def verify(text: str, evidence: list[dict]) -> Verified:
    """Repair, check and score the citations of an answer against its evidence."""
    text, repaired = repair(text)
    valid = set(range(1, len(evidence) + 1))
    dangling = 0

    def keep_valid(match: re.Match) -> str:
        nonlocal dangling
        numbers = numbers_in(match.group(1))
        kept = [n for n in numbers if n in valid]
        dangling += len(numbers) - len(kept)
        return "".join(f"[{n}]" for n in kept)

    text = CITATION.sub(keep_valid, text)
    text = re.sub(r"[ \t]+([.,;:!?])", r"\1", text).strip()

    citations, unsupported, cited_sentences = [], [], 0
    all_sentences = sentences(text)
    for index, sentence in enumerate(all_sentences):
        numbers = sorted(set(cited_numbers(sentence)))
        if not numbers:
            continue
        cited_sentences += 1
        cited_text = " ".join(_as_shown(evidence[n - 1]) for n in numbers)
        score = round(support(sentence, cited_text), 3)
        ok = score >= SUPPORT_MIN
        if not ok:
            unsupported.append(index)
        citations.append(
            {
                "sentence": index,
                "text": sentence,
                "numbers": numbers,
                "support": score,
                "supported": ok,
            }
        )
    return Verified(
        text=text,
        citations=citations,
        verification={
            "sentences": len(all_sentences),
            "cited_sentences": cited_sentences,
            "uncited_sentences": len(all_sentences) - cited_sentences,
            "citations": sum(len(c["numbers"]) for c in citations),
            "dangling_removed": dangling,
            "repaired": repaired,
            "unsupported": unsupported,
        },
    )


def _as_shown(item: dict) -> str:
    """A passage as the writer sees it (`evidence_block`): its title, then its text (a passage
    without a title is shown under its address, which says nothing a claim could rest on)."""
    return f"{item.get('title') or ''}\n{item['text']}"


def attribute(text: str, evidence: list[dict]) -> tuple[str, int]:
    """An answer with no citation markers, with [n] added to each sentence that passage n
    supports at ATTRIBUTE_MIN or more (the best such passage); returns the text and how many
    markers were added. An answer that cites anything is left as the model wrote it."""
    if CITATION.search(text) or not evidence:
        return text, 0
    out, cursor, added = [], 0, 0
    for sentence in sentences(text):
        start = text.find(sentence, cursor)
        if start < 0:  # sentences() normalises nothing, so this is not expected; be safe
            return text, 0
        end = start + len(sentence)
        out.append(text[cursor:start])
        number = _best_passage(sentence, evidence)
        if number is not None:
            body = sentence.rstrip(".!?")
            sentence = f"{body} [{number}]{sentence[len(body) :]}"
            added += 1
        out.append(sentence)
        cursor = end
    out.append(text[cursor:])
    return "".join(out), added


def _best_passage(sentence: str, evidence: list[dict]) -> int | None:
    if len(content_words(sentence)) < ATTRIBUTE_WORDS:
        return None
    scores = [support(sentence, _as_shown(item)) for item in evidence]
    best = max(range(len(scores)), key=lambda i: scores[i])
    return best + 1 if scores[best] >= ATTRIBUTE_MIN else None
