"""The boundary between the user's files and the web.

A research run reads the user's library and the web side by side, and what one finds shapes the
next searches (bridge queries take names from found passages, the model's reflection reads
them). A query sent to a web search engine leaves the machine, so it may hold only words that
are public already: the question's own, words of web results and pages, and words the model
brought itself. A word that this run has seen only in the user's files (a name, a code, a
project) is private: a web query holding one is withheld, never sent, unless the user turned
`research.library_to_web` on.

`Boundary` keeps the two vocabularies of one run and answers, for a query, which of its words
came from where; the loop records that with every search.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sleuth.agent.text import STOPWORDS, words


@dataclass
class Boundary:
    """The public and private words of one run (lower-cased word tokens, numbers included)."""

    question: str
    library_to_web: bool = False
    _asked: set[str] = field(init=False)
    _public: set[str] = field(default_factory=set, init=False)  # seen on the web
    _private: set[str] = field(default_factory=set, init=False)  # seen in the user's files

    def __post_init__(self) -> None:
        self._asked = set(words(self.question))

    def saw_web(self, *texts: str | None) -> None:
        """Text that came from the web (results, pages): its words are public."""
        for text in texts:
            self._public.update(words(text or ""))

    def saw_library(self, *texts: str | None) -> None:
        """Text that came from the user's files: its words are private unless public too."""
        for text in texts:
            self._private.update(words(text or ""))

    def saw(self, item: dict) -> None:
        """An evidence passage, by where it came from (`kind`: "file" or "web")."""
        texts = (item.get("title"), item.get("text"))
        if item.get("kind") == "file":
            self.saw_library(*texts)
        else:
            self.saw_web(*texts)

    def private_words(self, query: str) -> list[str]:
        """The words of `query` that this run has seen only in the user's files, in order."""
        return [
            w
            for w in dict.fromkeys(words(query))
            if w in self._private
            and w not in self._public
            and w not in self._asked
            and w not in STOPWORDS
        ]

    def withheld(self, query: str) -> list[str]:
        """The private words that keep `query` off the web (empty: it may be sent)."""
        return [] if self.library_to_web else self.private_words(query)

    def origins(self, query: str) -> dict[str, list[str]]:
        """Where each word of `query` came from: the question, web text, the user's files, or
        none of them (the model's own). Stopwords are left out."""
        out: dict[str, list[str]] = {"question": [], "web": [], "library": [], "model": []}
        for word in dict.fromkeys(words(query)):
            if word in STOPWORDS:
                continue
            if word in self._asked:
                out["question"].append(word)
            elif word in self._public:
                out["web"].append(word)
            elif word in self._private:
                out["library"].append(word)
            else:
                out["model"].append(word)
        return {where: found for where, found in out.items() if found}
