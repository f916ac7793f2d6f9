"""The boundary between the user's files and the web.

A research run reads the user's library and the web side by side, and what one finds shapes the
next searches (bridge queries take names from found passages, the model's reflection reads
them). A query sent to a web search engine leaves the machine, so it may hold only words that
are public already: the question's own, words of web results and pages, and words the model
brought itself. A word that this session has seen only in the user's files (a name, a code, a
project) is private: a web query holding one is withheld, never sent, unless the user turned
`research.library_to_web` on.

A follow-up question starts where its session stands: the session's earlier questions are the
user's own, its earlier evidence keeps the side it came from, and a word of an earlier answer
that no question or web text holds counts as private (an answer quotes the user's files).

Words are compared in a normal form (`keys`), so a spelling of a private word is the word:
Unicode compatibility forms folded (full-width letters), case folded, a run of letters and
digits split where one turns into the other ("Zebra4471" is zebra and 4471), a number's
digit grouping dropped ("9,381,204" is 9381204), a plural's ending cut.

`Boundary` keeps the two vocabularies of one run and answers, for a query, which of its words
came from where; the loop records that with every search.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from sleuth.agent.text import STOPWORDS, words

# 9,381,204 / 9.381.204 / 9'381'204 (not a space, which stands between two numbers as often as
# inside one).
_GROUPED_NUMBER = re.compile(r"(?<![\d.,])\d{1,3}([,.'\u2019])\d{3}(?:\1\d{3})*(?!\d)")
_RUNS = re.compile(r"\d+|[^\W\d_]+")


def _normal(text: str) -> str:
    """`text` in Unicode compatibility form with the digit grouping of its numbers dropped."""
    text = unicodedata.normalize("NFKC", text)
    return _GROUPED_NUMBER.sub(lambda m: re.sub(r"\D", "", m.group()), text)


def _stem(run: str) -> str:
    """A word without a plural's ending ("codes" -> "code", "cities" -> "city")."""
    if len(run) > 4 and run.endswith("ies"):
        return run[:-3] + "y"
    if len(run) > 3 and run.endswith("s") and not run.endswith(("ss", "us", "is")):
        return run[:-1]
    return run


def keys(token: str) -> list[str]:
    """The compared forms of one word: case-folded runs of letters and of digits, stemmed."""
    runs = _RUNS.findall(token.casefold())
    return [run if run in STOPWORDS else _stem(run) for run in runs]


def tokens(text: str) -> list[str]:
    """The words of `text` as shown (lower-cased, in its normal form), once each, in order."""
    return list(dict.fromkeys(w.casefold() for w in words(_normal(text))))


def vocabulary(text: str | None) -> set[str]:
    """Every compared form of the words of `text`."""
    return {key for token in tokens(text or "") for key in keys(token)}


@dataclass
class Boundary:
    """The public and private words of one run and the session before it (compared forms)."""

    question: str
    library_to_web: bool = False
    _asked: set[str] = field(init=False)
    _public: set[str] = field(default_factory=set, init=False)  # seen on the web
    _private: set[str] = field(default_factory=set, init=False)  # seen in the user's files

    def __post_init__(self) -> None:
        self._asked = vocabulary(self.question)

    def saw_web(self, *texts: str | None) -> None:
        """Text that came from the web (results, pages): its words are public."""
        for text in texts:
            self._public |= vocabulary(text)

    def saw_library(self, *texts: str | None) -> None:
        """Text that came from the user's files: its words are private unless public too."""
        for text in texts:
            self._private |= vocabulary(text)

    def saw(self, item: dict) -> None:
        """An evidence passage, by where it came from (`kind`: "file" or "web")."""
        texts = (item.get("title"), item.get("text"))
        if item.get("kind") == "file":
            self.saw_library(*texts)
        else:
            self.saw_web(*texts)

    def recall(
        self, questions: Iterable[str], answers: Iterable[str], evidence: Iterable[dict]
    ) -> None:
        """What the session saw before this run: its questions (the user's own words), the
        evidence its answers were read from (each on its side), and its answers, whose words
        that no question or web text holds are private."""
        for question in questions:
            self._asked |= vocabulary(question)
        for item in evidence:
            self.saw(item)
        for answer in answers:
            self._private |= vocabulary(answer) - self._public - self._asked

    def _is_private(self, key: str) -> bool:
        return (
            key in self._private
            and key not in self._public
            and key not in self._asked
            and key not in STOPWORDS
        )

    def private_words(self, query: str) -> list[str]:
        """The words of `query` that this session has seen only in the user's files, in order
        (a word is private when any of its compared forms is)."""
        return [t for t in tokens(query) if any(self._is_private(k) for k in keys(t))]

    def withheld(self, query: str) -> list[str]:
        """The private words that keep `query` off the web (empty: it may be sent)."""
        return [] if self.library_to_web else self.private_words(query)

    def origins(self, query: str) -> dict[str, list[str]]:
        """Where each word of `query` came from: the question, web text, the user's files, or
        none of them (the model's own). A word the files hold is never the model's own.
        Stopwords are left out."""
        out: dict[str, list[str]] = {"question": [], "web": [], "library": [], "model": []}
        for token in tokens(query):
            found = [k for k in keys(token) if k not in STOPWORDS]
            if not found or token in STOPWORDS:
                continue
            if any(self._is_private(k) for k in found):
                out["library"].append(token)
            elif all(k in self._asked for k in found):
                out["question"].append(token)
            elif all(k in self._asked or k in self._public for k in found):
                out["web"].append(token)
            elif any(k in self._private for k in found):
                out["library"].append(token)
            else:
                out["model"].append(token)
        return {where: found for where, found in out.items() if found}
