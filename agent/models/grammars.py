"""An answer's form said to a model server that cannot run Sleuth's own constrained decoding
(agent/models/decoding.py): as a GBNF grammar, which llama.cpp's servers take, and, for a
server that takes none, as a check after (`held_to`).

A form of a few whole options (yes or no, a question's alternatives) is their alternation. A
span form (words copied from the evidence, starting at a word) is a trie of every run of up
to SPAN_WORDS words of its sources, written as one rule a node: the server's sampler then
lets through only what the evidence holds, as the in-process decoder does.
"""

from __future__ import annotations

from collections.abc import Callable

from .llm import OutputForm

SPAN_WORDS = 16  # longest span a grammar offers, in words: a short answer is 24 tokens


def form_grammar(form: OutputForm) -> str | None:
    """The GBNF grammar of a form (None: a form of another kind, or one with no text)."""
    options = getattr(form, "options", ())
    if options:
        return options_grammar(options)
    sources = getattr(form, "sources", ())
    fits = getattr(form, "fits", None)
    return span_grammar(sources, fits) if sources else None


def options_grammar(options: tuple[str, ...]) -> str:
    """Just the whole options, each as written, lower-cased and capitalised."""
    spellings = dict.fromkeys(
        spelling for option in options for spelling in (option, option.lower(), option.capitalize())
    )
    return "root ::= " + " | ".join(_literal(s) for s in spellings)


def span_grammar(
    sources: tuple[str, ...] | list[str], fits: Callable[[str], bool] | None = None
) -> str | None:
    """Any run of up to SPAN_WORDS words of the sources, as written, that starts at a word
    (the first also lower-cased and capitalised: an answer may start a sentence the source
    did not) and may end before the punctuation that follows a word; with `fits`, only runs
    of words it lets through (the kind of answer asked: a name's words)."""
    fits = fits or (lambda piece: True)
    trie: dict[tuple[str, str], dict] = {}
    for text in sources:
        pieces = _pieces(text)
        for start, (sep, piece) in enumerate(pieces):
            if not _is_word(piece) or sep == "" or not fits(piece):
                continue
            node = trie.setdefault(("", piece), {})
            for following in pieces[start + 1 : start + 2 * SPAN_WORDS]:
                if not fits(following[1]):
                    break
                node = node.setdefault(following, {})
    if not trie:
        return None
    rules: list[str] = []

    def named(body: str) -> str:
        rules.append(f"n{len(rules)} ::= {body}")
        return f"n{len(rules) - 1}"

    def rest(children: dict[tuple[str, str], dict]) -> str:
        """What may follow a piece: nothing, or one of the pieces after it."""
        if not children:
            return ""
        ways = [
            (f'" " {named(_literal(p) + rest(c))}' if sep else named(_literal(p) + rest(c)))
            for (sep, p), c in children.items()
        ]
        return " (" + " | ".join(ways) + ")?"

    firsts = []
    for (_, word), children in trie.items():
        after = rest(children)
        for spelling in dict.fromkeys((word, word.lower(), word[:1].upper() + word[1:])):
            firsts.append(named(_literal(spelling) + after))
    return "\n".join([f"root ::= {' | '.join(firsts)}", *rules])


_TRAILING = ".,;:!?)]}\"'”’"


def _pieces(text: str) -> list[tuple[str, str]]:
    """A text's words and the punctuation that ends them, each with what stands before it
    (" " or ""): "in Lyon, France." is in, Lyon, ",", France, "."."""
    out: list[tuple[str, str]] = []
    for word in text.split():
        core = word.rstrip(_TRAILING) or word
        out.append((" ", core))
        if core != word:
            out.append(("", word[len(core) :]))
    return out


def _is_word(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece)


def _literal(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def held_to(form: OutputForm, text: str) -> str:
    """`text` as the form allows it, where a server could not hold decoding to it: as it is
    while the form permits it (the caller runs a span on to the end of its last word), else
    the longest stretch of it, from a word to a word's end, that is a complete answer (the
    earliest of equals: what constrained decoding would have let through); unchanged when
    none is, for the caller's check to refuse."""
    stripped = text.strip()
    if not stripped or form.permits(stripped):
        return text
    best = ""
    for start in [0] + [i + 1 for i, ch in enumerate(stripped) if ch.isspace()]:
        tail = stripped[start:]
        size = len(tail)
        for end in (i for i in range(size, len(best), -1) if i == size or not tail[i].isalnum()):
            head = tail[:end].rstrip(" ,;:.")
            if len(head) > len(best) and form.complete(head):
                best = head
                break
    return best or text
