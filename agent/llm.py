"""The model runtime: one small Protocol and two backends.

- `LlamaCppLLM` runs a GGUF in this process with llama-cpp-python: all layers on the GPU when
  llama.cpp was built with one, the GGUF's own chat template (or a correct one for template-less
  base models such as Gemma 3), JSON-schema constrained decoding through a grammar, the KV cache
  of a shared prompt prefix kept between calls, and an optional LoRA adapter GGUF.
- `OpenAILLM` talks to an OpenAI-compatible server (llama-server, vLLM, Ollama) over httpx.

Calls are blocking and run one at a time; callers put them on a worker thread. Streaming is a
callback (`on_token`) so a worker can forward tokens to an event loop; `cancel` is a
threading.Event checked between tokens.
"""

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
from collections.abc import Callable
from contextlib import redirect_stderr
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import httpx

from .errors import ModelError

log = logging.getLogger(__name__)

Message = dict[str, str]
TokenCallback = Callable[[str], None]


@dataclass
class Sampling:
    """How to sample. Stored with every answer so training can replay it."""

    temperature: float = 0.3
    top_p: float = 0.95
    max_tokens: int = 512
    seed: int | None = None
    stop: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Completion:
    """What one call produced, with its costs."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    finish_reason: str  # "stop", "length" or "cancelled"
    cached_tokens: int = 0  # prompt tokens whose KV cache was reused from the previous call

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


class LLM(Protocol):
    """What the agent and the trainer need from a model."""

    name: str
    n_ctx: int

    def chat(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        schema: dict[str, Any] | None = None,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        """Answer the conversation. With `schema`, the output is JSON valid against it."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens `text` takes in this model."""
        ...


def chat_json(
    llm: LLM,
    messages: list[Message],
    schema: dict[str, Any],
    sampling: Sampling,
    *,
    cancel: threading.Event | None = None,
) -> tuple[dict[str, Any], Completion]:
    """Ask for schema-constrained JSON and parse it. Raises ModelError on unparsable output
    (which a grammar makes rare: it happens when the token budget cuts the JSON short)."""
    completion = llm.chat(messages, sampling, schema=schema, cancel=cancel)
    try:
        value = json.loads(completion.text)
    except json.JSONDecodeError as exc:
        raise ModelError(
            f"The model's structured output was not valid JSON ({completion.finish_reason}): "
            "raise the token budget or use a larger model."
        ) from exc
    if not isinstance(value, dict):
        raise ModelError("The model's structured output was not a JSON object.")
    return value, completion


# -- llama.cpp ---------------------------------------------------------------------------------

GGUF_MAGIC = b"GGUF"


def check_gguf(path: Path) -> None:
    """Fail with one sentence if `path` is not a readable GGUF file."""
    if not path.exists():
        raise ModelError(f"Model file {path} does not exist: check the path or `sleuth config`.")
    if path.is_dir():
        raise ModelError(f"Model path {path} is a folder: point it at a .gguf file.")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelError(f"Cannot read the model file {path}: {exc.strerror}.") from exc
    if magic != GGUF_MAGIC:
        raise ModelError(
            f"{path} is not a GGUF model file (corrupt, truncated or another format): "
            "download it again or pick another file."
        )


def check_adapter(path: Path) -> None:
    """Fail with one sentence if `path` is not a LoRA adapter GGUF."""
    check_gguf(path)
    from gguf import GGUFReader

    try:
        fields = GGUFReader(path).fields
        kind = fields["general.type"].contents() if "general.type" in fields else None
        adapter = fields["adapter.type"].contents() if "adapter.type" in fields else None
    except (ValueError, KeyError, IndexError, OSError) as exc:
        raise ModelError(f"The adapter {path} is corrupt ({exc}): retrain or roll back.") from exc
    if kind != "adapter" or adapter != "lora":
        raise ModelError(f"{path} is not a LoRA adapter GGUF (general.type={kind!r}).")


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


def _template(name: str) -> str:
    return resources.files("sleuth.assets").joinpath("templates", name).read_text("utf-8")


class ChatFormat:
    """Renders messages to the exact prompt text a model is given, and an answer to the text
    that ends its turn. Shared by llama.cpp inference and the trainer, so both see one format."""

    def __init__(self, template: str, bos: str, eos: str, end_of_turn: list[str]):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.prompt_formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.full_formatter = Jinja2ChatFormatter(
            template=template, eos_token=eos, bos_token=bos, add_generation_prompt=False
        )
        self.eos = eos
        self.stops = [s for s in [eos, *end_of_turn] if s]

    def prompt(self, messages: list[Message]) -> str:
        """The prompt, ending where the assistant starts writing."""
        return self.prompt_formatter(messages=messages).prompt

    def completion(self, messages: list[Message], answer: str) -> str:
        """What follows the prompt when the assistant says `answer`, end-of-turn included."""
        prompt = self.prompt(messages)
        full = self.full_formatter(
            messages=[*messages, {"role": "assistant", "content": answer}]
        ).prompt
        if full.startswith(prompt):
            return full[len(prompt) :]
        return answer + self.stops[-1] if self.stops else answer


def chat_formatter(template: str | None, architecture: str, *, bos: str, eos: str) -> ChatFormat:
    """The GGUF's own template, or for template-less base models the turn format they were
    built for (Gemma's), or ChatML."""
    end_of_turn: list[str] = []
    if not template:
        if architecture.startswith("gemma"):
            template, end_of_turn = _template("gemma.jinja"), ["<end_of_turn>"]
        else:
            template, end_of_turn = _template("chatml.jinja"), ["<|im_end|>"]
    return ChatFormat(template, bos, eos, end_of_turn)


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
        from llama_cpp import Llama

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
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        prompt = self.render(messages)
        with self._lock:
            tokens = self.tokenize(prompt)
            return self._generate(tokens, sampling, schema, on_token, cancel)

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

    def _generate(self, tokens, sampling, schema, on_token, cancel) -> Completion:
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
            seed=sampling.seed,
            stop=[*self.chat_format.stops, *sampling.stop],
            grammar=self._grammar(schema) if schema is not None else None,
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


def _common_prefix(a, b) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


# -- OpenAI-compatible HTTP --------------------------------------------------------------------


class OpenAILLM:
    """A model behind an OpenAI-compatible /v1/chat/completions endpoint, streamed over SSE."""

    def __init__(
        self,
        endpoint: str,
        *,
        model: str = "",
        api_key: str | None = None,
        n_ctx: int = 8192,
        timeout: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ):
        if not endpoint.startswith(("http://", "https://")):
            raise ModelError(f"The model endpoint {endpoint!r} is not an http(s) URL.")
        self.endpoint = endpoint.rstrip("/")
        self.model = model
        self.n_ctx = n_ctx
        self.name = model or self.endpoint
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0), headers=headers, transport=transport
        )
        # Servers disagree on how to ask for schema-constrained output: OpenAI and vLLM take
        # "json_schema"; llama-cpp-python's server only "json_object" with a "schema". We try
        # the standard form and fall back once, remembering what worked.
        self._schema_style: str | None = None

    def close(self) -> None:
        self._client.close()

    def count_tokens(self, text: str) -> int:
        root = self.endpoint.removesuffix("/v1")
        for path, body, key in (
            ("/extras/tokenize", {"input": text}, "tokens"),
            ("/tokenize", {"content": text}, "tokens"),
        ):
            try:
                response = self._client.post(root + path, json=body, timeout=10.0)
                if response.status_code == 200 and key in response.json():
                    return len(response.json()[key])
            except (httpx.HTTPError, ValueError):
                continue
        return max(1, len(text) // 4)  # the usual estimate when a server cannot tokenize

    def chat(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        schema: dict[str, Any] | None = None,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        if schema is None:
            return self._chat(messages, sampling, None, on_token, cancel)
        styles = [self._schema_style] if self._schema_style else ["json_schema", "json_object"]
        completion = None
        for number, style in enumerate(styles, start=1):
            try:
                completion = self._chat(
                    messages, sampling, _response_format(style, schema), None, cancel
                )
            except ServerRefused:
                if number == len(styles):
                    raise
                continue  # this server does not know the style: try the next one
            if _is_json_object(completion.text) or completion.finish_reason == "cancelled":
                self._schema_style = style
                break
        assert completion is not None
        if on_token is not None and completion.text:
            on_token(completion.text)
        return completion

    def _chat(self, messages, sampling, response_format, on_token, cancel) -> Completion:
        body: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stream_options": {"include_usage": True},
        }
        if self.model:
            body["model"] = self.model
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.stop:
            body["stop"] = sampling.stop
        if response_format is not None:
            body["response_format"] = response_format
        started = time.perf_counter()
        pieces: list[str] = []
        finish = "stop"
        usage: dict[str, int] = {}
        url = self.endpoint + "/chat/completions"
        try:
            with self._client.stream("POST", url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise ServerRefused(
                        f"The model server at {self.endpoint} answered {response.status_code}: "
                        f"{response.text[:200].strip()}"
                    )
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    usage = event.get("usage") or usage
                    for choice in event.get("choices") or []:
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece:
                            pieces.append(piece)
                            if on_token is not None:
                                on_token(piece)
                        if choice.get("finish_reason"):
                            finish = choice["finish_reason"]
                    if cancel is not None and cancel.is_set():
                        finish = "cancelled"
                        break
        except httpx.HTTPError as exc:
            raise ModelError(
                f"Cannot reach the model server at {self.endpoint} ({exc.__class__.__name__}): "
                "is it running? Check model.endpoint."
            ) from exc
        except json.JSONDecodeError as exc:
            raise ModelError(
                f"The model server at {self.endpoint} sent a malformed stream."
            ) from exc
        text = "".join(pieces)
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or len(pieces)),
            seconds=time.perf_counter() - started,
            finish_reason=finish,
        )


class ServerRefused(ModelError):
    """The server answered the request with an error status."""


def _response_format(style: str, schema: dict[str, Any]) -> dict[str, Any]:
    if style == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    return {"type": "json_object", "schema": schema}


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False
