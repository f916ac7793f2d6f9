"""Citation markers: the one definition of what `[n]` looks like, shared by the writer's
verification, the trainer's rewards and the app's answer view.

A citation is a bracketed number or list of numbers: `[3]`, `[1, 2]`. Four digits are a year in
brackets, not a citation. Some models write other shapes (`[Source 1]`, `【1】`); `repair`
turns them into `[n]`.
"""

from __future__ import annotations

import re

_NUMBERS = r"\d{1,3}(?:\s*,\s*\d{1,3})*"
MARKER = rf"\[{_NUMBERS}\]"  # the pattern without a group, for building other patterns
CITATION = re.compile(rf"\[({_NUMBERS})\]")

_REPAIRS = [
    # [Source 1], [source: 2], [Evidence 3], [ref. 4], [Doc 5] -> [n]
    (
        re.compile(r"\[(?:source|evidence|ref|reference|doc|document)s?\.?:?\s*(\d+)\]", re.I),
        r"[\1]",
    ),
    # 【1】 (full-width brackets some models emit)
    (re.compile(r"【(\d+)】"), r"[\1]"),
]


def numbers_in(marker_group: str) -> list[int]:
    """The numbers of one marker's inside: "1, 2" -> [1, 2]."""
    return [int(n) for n in re.split(r"\s*,\s*", marker_group.strip())]


def cited_numbers(text: str) -> list[int]:
    """Every number cited in `text`, in order, repeats included."""
    return [n for group in CITATION.findall(text) for n in numbers_in(group)]


def strip_citations(text: str) -> str:
    """`text` with its citation markers replaced by spaces."""
    return CITATION.sub(" ", text)


def repair(text: str) -> tuple[str, int]:
    """Odd citation shapes rewritten as [n]; returns the text and how many were rewritten."""
    repaired = 0
    for pattern, replacement in _REPAIRS:
        text, count = pattern.subn(replacement, text)
        repaired += count
    return text, repaired
