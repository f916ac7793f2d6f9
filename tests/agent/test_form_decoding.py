"""The logits processor that holds a short answer to its form, on a made-up vocabulary: it
lets no token through that adds no text (a stray piece of a character, space after space),
and only the end of the turn once the answer's tokens are spent. Either would otherwise let a
small model write on to the end of its context (llama-cpp-python skips its own `max_tokens`
check while the text ends in a broken character)."""

from __future__ import annotations

import numpy as np
import pytest

from sleuth.agent.models.decoding import held_to, utf8_prefix
from sleuth.agent.research.reader import AnswerForm

EOS = 0
# id -> bytes: "Kaunas", " in", a stray UTF-8 continuation byte, "\u3000" (a wide space),
# " ", and the first byte of "ë" (which a second token completes)
PIECES = {
    1: b"Kaunas",
    2: b" in",
    3: b"\x80",
    4: "\u3000".encode(),
    5: b" ",
    6: b"\xc3",
    7: b"\xab",
}


class FakeLlama:
    """Just what `held_to` reads of a loaded model."""

    class _Model:
        vocab = None

    _model = _Model()

    def token_eos(self):
        return EOS

    def detokenize(self, ids):
        return b"".join(PIECES.get(i, b"") for i in ids)

    def tokenize(self, text, add_bos=False, special=False):
        return [next(i for i, piece in PIECES.items() if text.startswith(piece))]


@pytest.fixture(autouse=True)
def _no_real_vocab(monkeypatch):
    import llama_cpp

    monkeypatch.setattr(llama_cpp, "llama_vocab_is_eog", lambda vocab, token: token == EOS)


def allowed(written: list[int], form, max_tokens=None) -> set[int]:
    (held,) = held_to(form, FakeLlama(), prompt_length=2, max_tokens=max_tokens)
    scores = np.zeros(64, dtype=np.float32)
    scores[list(PIECES)] = 1.0  # the vocabulary's tokens are the model's best
    out = held(np.array([9, 9, *written]), scores)  # two prompt tokens, then the answer
    return {int(t) for t in np.flatnonzero(np.isfinite(out))}


def test_utf8_prefix_allows_a_character_cut_short_and_nothing_broken():
    assert utf8_prefix(b"Kaunas") and utf8_prefix("Chlo\u00eb".encode())
    assert utf8_prefix(b"Chlo\xc3")  # "ë" cut after its first byte: more may complete it
    assert not utf8_prefix(b"Kaunas\x80") and not utf8_prefix(b"Chlo\xc3\xc3")


def test_a_token_that_adds_no_text_is_never_let_through():
    form = AnswerForm("span", sources=("Kaunas in 1927 . Chlo\u00eb Vant",))
    assert 3 not in allowed([1], form)  # a stray byte: the text would still fit, forever
    assert 5 in allowed([1], form) and 2 in allowed([1], form)
    assert 5 not in allowed([1, 5], form) and 4 not in allowed([1, 5], form)  # space on space
    assert 7 not in allowed([1], form)  # a continuation byte with nothing to continue


def test_once_the_answers_tokens_are_spent_only_the_end_of_turn_follows():
    form = AnswerForm("span", sources=("Kaunas in Kaunas in Kaunas",))
    assert allowed([1, 2], form, max_tokens=2) == {EOS}
    assert EOS in allowed([1], form, max_tokens=2) and 2 in allowed([1], form, max_tokens=2)
