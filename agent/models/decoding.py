"""Constrained decoding in llama.cpp: JSON held to a schema through a grammar (checked lazily,
against the sampled token first), and short answers held to an `OutputForm` through a logits
processor. The grammar sampler reaches into llama-cpp-python's sampler chain, which is why
that package is pinned (tests/agent/test_llama_internals.py)."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
from typing import Any

from sleuth.agent.errors import ModelError

from .llm import OutputForm

# llama-cpp-python's port of json-schema-to-grammar lets raw control characters (a newline)
# into JSON strings, which no JSON parser accepts; llama.cpp's own converter excludes them.
_LOOSE_CHAR = 'char ::= [^"\\\\] |'
_STRICT_CHAR = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'


def json_schema_gbnf(schema: dict[str, Any]) -> str:
    """GBNF text that accepts exactly the JSON documents valid against `schema`."""
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    gbnf = json_schema_to_gbnf(json.dumps(schema))
    return "\n".join(
        _STRICT_CHAR + line[len(_LOOSE_CHAR) :] if line.startswith(_LOOSE_CHAR) else line
        for line in gbnf.splitlines()
    )


def json_schema_grammar(schema: dict[str, Any]):
    """A compiled llama.cpp grammar for `schema`."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(json_schema_gbnf(schema), verbose=False)


class _LazyGrammarSampler:
    """Constrained decoding that checks the grammar against the sampled token only, and
    against the whole vocabulary only when that token breaks it (as llama.cpp's own sampler
    does). llama-cpp-python runs the grammar over every token of the vocabulary before each
    sample: 262k candidates a step with Gemma 3. With greedy decoding the tokens are the same
    either way: the best token the grammar allows is the best token when it allows it."""

    def __init__(self, chain, model, grammar, n_vocab: int):
        import llama_cpp
        import numpy as np

        self._chain = chain  # penalties and sampling, no grammar: llama-cpp-python's own
        self._grammar = llama_cpp.llama_sampler_init_grammar(
            model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self._grammar:
            chain.close()
            raise ModelError("llama.cpp could not compile the JSON grammar for this model.")
        self._n_vocab = n_vocab
        self._data = (llama_cpp.llama_token_data * n_vocab)()
        view = np.ctypeslib.as_array(self._data)  # a structured view of the same memory
        self._ids, self._logits = view["id"], view["logit"]
        self._one = (llama_cpp.llama_token_data * 1)()
        self._all_ids = np.arange(n_vocab, dtype=np.int32)

    def _candidates(self, ctx, idx: int):
        import llama_cpp
        import numpy as np

        logits = llama_cpp.llama_get_logits_ith(ctx.ctx, idx)
        self._ids[:] = self._all_ids  # the chain sorts and cuts the array in place
        self._logits[:] = np.ctypeslib.as_array(logits, shape=(self._n_vocab,))
        return llama_cpp.llama_token_data_array(
            data=self._data, size=self._n_vocab, selected=-1, sorted=False
        )

    def _pick(self, candidates) -> int:
        import llama_cpp

        llama_cpp.llama_sampler_apply(self._chain.sampler, ctypes.byref(candidates))
        return int(candidates.data[candidates.selected].id)

    def sample(self, ctx, idx: int = -1) -> int:
        import llama_cpp

        token = self._pick(self._candidates(ctx, idx))
        self._one[0].id, self._one[0].logit, self._one[0].p = token, 1.0, 0.0
        one = llama_cpp.llama_token_data_array(data=self._one, size=1, selected=-1, sorted=False)
        llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(one))
        if self._one[0].logit == float("-inf"):  # the grammar forbids it: choose among all
            candidates = self._candidates(ctx, idx)
            llama_cpp.llama_sampler_apply(self._grammar, ctypes.byref(candidates))
            token = self._pick(candidates)
        llama_cpp.llama_sampler_accept(self._grammar, token)
        self._chain.accept(token)
        return token

    def close(self) -> None:
        import llama_cpp

        if getattr(self, "_grammar", None):
            llama_cpp.llama_sampler_free(self._grammar)
            self._grammar = None
        self._chain.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the bindings may be gone
            self.close()


@functools.cache
def llama_class():
    """llama_cpp.Llama with grammar checks done lazily (see _LazyGrammarSampler)."""
    from llama_cpp import Llama

    class LazyGrammarLlama(Llama):
        lazy_grammar = True  # False: llama-cpp-python's own, for bench/grammar_decoding.py

        def _init_sampler(self, *args, grammar=None, **kwargs):
            if grammar is None or not self.lazy_grammar:
                return super()._init_sampler(*args, grammar=grammar, **kwargs)
            chain = super()._init_sampler(*args, **kwargs)
            try:
                return _LazyGrammarSampler(chain, self._model, grammar, self._n_vocab)
            except AttributeError:  # a llama-cpp-python whose internals differ: its own way
                chain.close()
                return super()._init_sampler(*args, grammar=grammar, **kwargs)

    return LazyGrammarLlama


FORM_CANDIDATES = 40  # the model's best tokens tried against an answer form at each step
FIRST_TOKENS = 48  # the model's likeliest first tokens kept with a form-held answer


class Beliefs:
    """What the model believed while writing a form-held answer, read off the logits the
    processor sees: its likeliest first tokens (text, log-probability) and the log-probability
    of each token it then wrote (of the whole vocabulary: the model's own belief, before
    the form)."""

    def __init__(self) -> None:
        self.first_tokens: list[tuple[str, float]] = []
        self.token_logprobs: list[float] = []
        self._last = None  # the log-probabilities of the step before

    def see(self, written: list[int], scores, text_of) -> None:
        import numpy as np

        top = float(scores.max())
        logz = top + float(np.log(np.exp(scores - top).sum()))
        if written and self._last is not None:
            self.token_logprobs.append(float(self._last[written[-1]]))
        if not written:
            best = np.argpartition(-scores, FIRST_TOKENS)[:FIRST_TOKENS]
            best = best[np.argsort(-scores[best])]
            self.first_tokens = [(text_of([int(t)]), float(scores[t]) - logz) for t in best]
        self._last = scores - logz


def held_to(
    form: OutputForm,
    llama,
    prompt_length: int,
    max_tokens: int | None = None,
    beliefs: Beliefs | None = None,
):
    """A logits processor that lets through only tokens that keep the text written so far an
    allowed answer (agent/models/llm.py `OutputForm`): of the model's FORM_CANDIDATES best tokens,
    those whose text still fits, and the end of the turn once the answer may end. When none of
    them fits, the next token of each allowed continuation does (so the answer never stalls).

    A token whose bytes cannot be UTF-8 (a stray piece of a character), or that adds only
    space after space, is never let through: it adds no text, so the answer would still fit
    after it, again and again; and llama-cpp-python skips its `max_tokens` check while the
    text ends in a broken character, so such a run would go on to the end of the context
    (nothing streams, so no deadline stops it either). For the same reason the end of the
    turn is the only token once `max_tokens` are written. With `beliefs`, what the model
    believed at each step is kept there."""
    from llama_cpp import LogitsProcessorList

    eog = {t for t in (llama.token_eos(),) if t >= 0}
    vocab = llama._model.vocab

    def text_of(ids) -> str:
        return llama.detokenize(list(ids)).decode("utf-8", "ignore")

    def only_end(scores):
        import numpy as np

        allowed = np.full_like(scores, -np.inf)
        for token in eog:
            allowed[token] = 0.0
        return allowed

    def held(input_ids, scores):
        import llama_cpp
        import numpy as np

        written = [int(t) for t in input_ids[prompt_length:]]
        if beliefs is not None:
            beliefs.see(written, scores, text_of)
        if max_tokens is not None and len(written) >= max_tokens:
            return only_end(scores)
        so_far = text_of(written)
        if "\n" in so_far:  # the answer ended at its line break: only the end of turn follows
            return only_end(scores)
        top = np.argpartition(-scores, FORM_CANDIDATES)[:FORM_CANDIDATES]
        allowed = np.full_like(scores, -np.inf)
        for token in top.tolist():
            raw = llama.detokenize([*written, token])
            if not utf8_prefix(raw):
                continue
            text = raw.decode("utf-8", "ignore")
            added = text[len(so_far) :]
            if added.isspace() and "\n" not in added and so_far[-1:].isspace():  # no new text
                continue
            if token in eog or llama_cpp.llama_vocab_is_eog(vocab, token):
                ends = True
            elif "\n" in added:  # a line break ends an answer too
                ends = True
            else:
                ends = False
            if form.complete(so_far) if ends else form.permits(text):
                allowed[token] = scores[token]
        if not np.isfinite(allowed).any():
            for token in _continuations(form, so_far, llama):
                if utf8_prefix(llama.detokenize([*written, token])):
                    allowed[token] = scores[token]
        if not np.isfinite(allowed).any():  # nothing can follow: end the answer here
            return only_end(scores)
        return allowed

    return LogitsProcessorList([held])


def utf8_prefix(raw: bytes) -> bool:
    """Whether `raw` is UTF-8, or UTF-8 cut inside its last character (which more bytes
    may complete)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.reason == "unexpected end of data" and error.start >= len(raw) - 3
    return True


def _continuations(form: OutputForm, so_far: str, llama) -> set[int]:
    """The first token of each way the allowed answers go on from `so_far`."""
    lead = " " if not so_far.strip() else ""
    found = set()
    for text in form.continuations(so_far):
        ids = llama.tokenize((lead + text).encode("utf-8"), add_bos=False, special=False)
        if ids:
            found.add(ids[0])
    return found
