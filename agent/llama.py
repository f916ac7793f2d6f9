"""A GGUF model in this process, through llama-cpp-python: all layers on the GPU when llama.cpp
was built with one, the GGUF's own chat template (or a correct one for template-less base
models such as Gemma 3), JSON-schema constrained decoding through a grammar, the KV cache of a
shared prompt prefix kept between calls, and an optional LoRA adapter GGUF."""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import functools
import io
import json
import logging
import os
import tempfile
import threading
import time
import weakref
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

from .chat_format import chat_formatter
from .errors import ModelError
from .gguf_file import check_adapter, check_gguf, training_context
from .llm import Completion, Message, OutputForm, Sampling, TokenCallback

log = logging.getLogger(__name__)

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
def _llama_class():
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


_log_callback = None


def _route_llama_logs() -> None:
    """Send llama.cpp's C-level log lines to Python logging instead of the terminal.

    llama-cpp-python's quiet mode silences loading by pointing file descriptors 1 and 2 at
    /dev/null for a moment, which would blank a Textual screen drawn from another thread. We
    load in verbose mode and route the logs ourselves instead.
    """
    global _log_callback
    if _log_callback is not None:
        return
    import llama_cpp

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        log.debug("llama.cpp: %s", text.decode("utf-8", "replace").rstrip())

    _log_callback = callback  # keep a reference: ctypes would free it
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def gpu_offload_supported() -> bool:
    """Whether this llama.cpp build can put layers on a GPU."""
    import llama_cpp

    return bool(llama_cpp.llama_supports_gpu_offload())


TURN_POLL_S = 0.02  # how often a process waiting for the model checks again
TURN_COURTESY_S = 0.06  # a process that just had its turn waits this long before another


class TurnCancelled(Exception):  # noqa: N818 - a state, not a failure of the code
    """The caller's stop signal came while it waited for another Sleuth's model call."""

    def __init__(self, waited: float):
        super().__init__(f"stopped after waiting {waited:.0f} s for the model")
        self.waited = waited


class ModelTurns:
    """One model computes at a time on this machine, whichever Sleuth process holds it.

    llama.cpp uses every core it is given, and two processes that each take all of them on
    a small machine both slow to a crawl (four asks on 2 cores all ran out of time). So each
    call takes this machine's turn, an exclusive lock on one file in the temporary folder,
    for the length of the call: Sleuths on one machine take turns, each at full speed, and a
    waiting call stops waiting when its own stop signal comes. The lock is the kernel's
    (flock), so a process that dies gives up its turn at once.
    """

    def __init__(self, path: Path | None = None):
        self.path = path or Path(tempfile.gettempdir()) / f"sleuth-{os.getuid()}" / "model.lock"
        self._released = 0.0

    @contextlib.contextmanager
    def turn(self, cancel: threading.Event | None = None):
        """Hold the machine's model turn; yields the seconds spent waiting for it."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        started = time.monotonic()
        try:
            # Just had a turn: give a waiting process the chance to take the next one.
            courtesy = self._released + TURN_COURTESY_S - started
            if courtesy > 0:
                time.sleep(courtesy)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if cancel is not None and cancel.is_set():
                        raise TurnCancelled(time.monotonic() - started) from None
                    time.sleep(TURN_POLL_S)
            yield time.monotonic() - started
        finally:
            os.close(fd)  # releases the lock
            self._released = time.monotonic()


_turns = ModelTurns()
_open_models: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_open_models() -> None:
    # A Llama garbage-collected during interpreter shutdown prints a TypeError from its
    # finaliser (its C bindings are gone by then); closing first avoids that noise.
    for model in list(_open_models):
        model.close()


class LlamaCppLLM:
    """A GGUF model in this process."""

    def __init__(
        self,
        model_path: Path | str,
        *,
        adapter_path: Path | str | None = None,
        n_ctx: int = 8192,
        n_gpu_layers: int | str = "auto",
        threads: int = 0,
        logits_all: bool = False,
    ):
        self.model_path = Path(model_path)
        self.adapter_path = Path(adapter_path) if adapter_path else None
        check_gguf(self.model_path)
        if self.adapter_path is not None:
            check_adapter(self.adapter_path)
        self.warnings: list[str] = []
        try:
            trained = training_context(self.model_path)
        except ModelError:  # llama.cpp's own load says what is wrong with the file
            trained = None
        if trained and n_ctx > trained:  # more would cost memory and give nothing back
            self.warnings.append(
                f"model.n_ctx is {n_ctx:,} but {self.model_path.name} was trained on "
                f"{trained:,} tokens of context: using {trained:,}."
            )
            n_ctx = trained
        self.gpu = gpu_offload_supported()
        if n_gpu_layers == "auto":
            self.n_gpu_layers = -1 if self.gpu else 0
        else:
            self.n_gpu_layers = int(n_gpu_layers)
        self._options = dict(n_ctx=n_ctx, threads=threads, logits_all=logits_all)
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._llama = self._load()
        _open_models.add(self)
        self.n_ctx = self._llama.n_ctx()
        self.architecture = self._llama.metadata.get("general.architecture", "unknown")
        self.name = self.model_path.stem + (
            f" + {self.adapter_path.stem}" if self.adapter_path else ""
        )
        self.chat_format = self._chat_formatter()

    def _load(self):
        Llama = _llama_class()
        _route_llama_logs()
        options = self._options
        try:
            with redirect_stderr(io.StringIO()):  # verbose mode's Python-level prints
                llama = Llama(
                    model_path=str(self.model_path),
                    lora_path=str(self.adapter_path) if self.adapter_path else None,
                    n_ctx=options["n_ctx"],
                    n_batch=512,
                    n_gpu_layers=self.n_gpu_layers,
                    # llama-cpp-python's default is half the cores; 0 means all of them here.
                    n_threads=options["threads"] or os.cpu_count(),
                    n_threads_batch=options["threads"] or os.cpu_count(),
                    logits_all=options["logits_all"],
                    verbose=True,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            what = (
                f"adapter {self.adapter_path}" if self.adapter_path else f"model {self.model_path}"
            )
            raise ModelError(
                f"llama.cpp could not load the {what} ({exc}): the file may be corrupt or for a "
                "different base model."
            ) from exc
        # llama-cpp-python tests the adapter pointer with `is None`, but a failed load returns
        # a NULL ctypes pointer, which is not None: without this check a broken adapter would
        # silently leave the bare base model running.
        if self.adapter_path is not None and not llama._lora_adapter:
            llama.close()
            raise ModelError(
                f"llama.cpp could not load the adapter {self.adapter_path}: it may be corrupt or "
                "for a different base model."
            )
        llama.verbose = False  # no per-call prints from here on
        return llama

    @property
    def llama(self):
        """The underlying llama_cpp.Llama (for benchmarks and parity tests)."""
        return self._llama

    def set_adapter(self, adapter_path: Path | str | None) -> None:
        """Swap the LoRA adapter (None: the bare base) without touching the base file."""
        new = Path(adapter_path) if adapter_path else None
        if new is not None:
            check_adapter(new)
        with self._lock:
            old_llama, old_adapter = self._llama, self.adapter_path
            self.adapter_path = new
            try:
                self._llama = self._load()
            except ModelError:
                self.adapter_path = old_adapter
                raise
            old_llama.close()
        self.name = self.model_path.stem + (f" + {new.stem}" if new else "")

    def close(self) -> None:
        with self._lock:
            self._llama.close()
        _open_models.discard(self)

    def _chat_formatter(self):
        llama = self._llama
        eos_id, bos_id = llama.token_eos(), llama.token_bos()
        return chat_formatter(
            llama.metadata.get("tokenizer.chat_template"),
            self.architecture,
            bos=llama._model.token_get_text(bos_id) if bos_id != -1 else "",
            eos=llama._model.token_get_text(eos_id) if eos_id != -1 else "",
        )

    def render(self, messages: list[Message]) -> str:
        """The exact prompt text the model sees for `messages`."""
        return self.chat_format.prompt(messages)

    def tokenize(self, text: str, *, special: bool = True) -> list[int]:
        return self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def _grammar(self, schema: dict[str, Any]):
        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            self._grammars[key] = json_schema_grammar(schema)
        return self._grammars[key]

    def chat(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        schema: dict[str, Any] | None = None,
        form: OutputForm | None = None,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        prompt = self.render(messages)
        with self._lock:
            tokens = self.tokenize(prompt)
            return self._generate(tokens, sampling, schema, on_token, cancel, form)

    def complete(
        self,
        prompt: str,
        sampling: Sampling,
        *,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        """Continue raw text (no chat template); used by GRPO rollouts over stored prompts."""
        with self._lock:
            return self._generate(self.tokenize(prompt), sampling, None, on_token, cancel)

    def _generate(self, tokens, sampling, schema, on_token, cancel, form=None) -> Completion:
        try:
            with _turns.turn(cancel) as waited:
                completion = self._decode(tokens, sampling, schema, on_token, cancel, form)
        except TurnCancelled as stopped:
            return Completion("", len(tokens), 0, 0.0, "cancelled", waited_s=stopped.waited)
        completion.waited_s = waited
        return completion

    def _decode(self, tokens, sampling, schema, on_token, cancel, form=None) -> Completion:
        llama = self._llama
        if len(tokens) >= self.n_ctx:
            raise ModelError(
                f"The prompt is {len(tokens)} tokens, more than the model's context of "
                f"{self.n_ctx}: raise model.n_ctx or lower the evidence budget."
            )
        max_tokens = max(1, min(sampling.max_tokens, self.n_ctx - len(tokens)))
        cached = _common_prefix(llama._input_ids, tokens)
        started = time.perf_counter()
        pieces: list[str] = []
        finish = "stop"
        stream = llama.create_completion(
            prompt=tokens,
            max_tokens=max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            repeat_penalty=sampling.repeat_penalty,
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            seed=sampling.seed,
            stop=[*self.chat_format.stops, *sampling.stop],
            grammar=self._grammar(schema) if schema is not None else None,
            logits_processor=_held_to(form, llama, len(tokens)) if form is not None else None,
            stream=True,
        )
        for chunk in stream:
            choice = chunk["choices"][0]
            piece = choice["text"]
            if piece:
                pieces.append(piece)
                if on_token is not None:
                    on_token(piece)
            if choice.get("finish_reason"):
                finish = choice["finish_reason"]
            if cancel is not None and cancel.is_set():
                finish = "cancelled"
                stream.close()
                break
        text = "".join(pieces)
        return Completion(
            text=text,
            prompt_tokens=len(tokens),
            completion_tokens=len(self.tokenize(text, special=False)) if text else 0,
            seconds=time.perf_counter() - started,
            finish_reason=finish,
            cached_tokens=min(cached, max(len(tokens) - 1, 0)),
        )


FORM_CANDIDATES = 40  # the model's best tokens tried against an answer form at each step


def _held_to(form: OutputForm, llama, prompt_length: int):
    """A logits processor that lets through only tokens that keep the text written so far an
    allowed answer (agent/llm.py `OutputForm`): of the model's FORM_CANDIDATES best tokens,
    those whose text still fits, and the end of the turn once the answer may end. When none of
    them fits, the next token of each allowed continuation does (so the answer never stalls)."""
    from llama_cpp import LogitsProcessorList

    eog = {t for t in (llama.token_eos(),) if t >= 0}
    vocab = llama._model.vocab

    def text_of(ids) -> str:
        return llama.detokenize(list(ids)).decode("utf-8", "ignore")

    def held(input_ids, scores):
        import llama_cpp
        import numpy as np

        written = [int(t) for t in input_ids[prompt_length:]]
        so_far = text_of(written)
        top = np.argpartition(-scores, FORM_CANDIDATES)[:FORM_CANDIDATES]
        allowed = np.full_like(scores, -np.inf)
        for token in top.tolist():
            text = text_of([*written, token])
            if token in eog or llama_cpp.llama_vocab_is_eog(vocab, token):
                ends = True
            elif "\n" in text[len(so_far) :]:  # a line break ends an answer too
                ends = True
            else:
                ends = False
            if form.complete(so_far) if ends else form.permits(text):
                allowed[token] = scores[token]
        if not np.isfinite(allowed).any():
            for token in _continuations(form, so_far, llama):
                allowed[token] = scores[token]
        if not np.isfinite(allowed).any():  # nothing can follow: end the answer here
            for token in eog:
                allowed[token] = 0.0
        return allowed

    return LogitsProcessorList([held])


def _continuations(form: OutputForm, so_far: str, llama) -> set[int]:
    """The first token of each way the allowed answers go on from `so_far`."""
    lead = " " if not so_far.strip() else ""
    found = set()
    for text in form.continuations(so_far):
        ids = llama.tokenize((lead + text).encode("utf-8"), add_bos=False, special=False)
        if ids:
            found.add(ids[0])
    return found


def _common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
