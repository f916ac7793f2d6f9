"""A GGUF model in this process, through llama-cpp-python: all layers on the GPU when llama.cpp
was built with one, the GGUF's own chat template (or a correct one for template-less base
models such as Gemma 3), JSON-schema constrained decoding through a grammar, the KV cache of a
shared prompt prefix kept between calls, and an optional LoRA adapter GGUF."""

from __future__ import annotations

import atexit
import ctypes
import io
import json
import logging
import os
import threading
import time
import weakref
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any

from sleuth.agent.errors import ModelError

from .chat_format import chat_formatter
from .decoding import Beliefs, held_to, json_schema_grammar, llama_class
from .files import check_adapter, check_gguf, training_context
from .llm import Completion, Message, OutputForm, Sampling, TokenCallback
from .turns import ModelTurns, TurnCancelled

log = logging.getLogger(__name__)

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
        Llama = llama_class()
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
        beliefs = Beliefs() if form is not None else None
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
            logits_processor=held_to(form, llama, len(tokens), max_tokens, beliefs)
            if form is not None
            else None,
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
            first_tokens=beliefs.first_tokens if beliefs else [],
            token_logprobs=beliefs.token_logprobs if beliefs else [],
        )


def _common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n
