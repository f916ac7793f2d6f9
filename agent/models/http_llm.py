"""A model behind an OpenAI-compatible server (llama-server, vLLM, Ollama), over httpx.

A server is outside Sleuth's control, so every call is bounded on the wire: the caller's stop
signal (the run's cancel or deadline) and a total deadline per call close the connection
wherever the call stands (connecting, waiting for headers, or in a stream of keep-alive lines
or of bytes that never end a line); a response is capped in size; every shape a server may
send that is not a chat completion ends in one sentence (ModelError)."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from sleuth.agent.errors import ModelError
from sleuth.agent.retry import TRANSIENT_STATUS, Transient, retry_after, retrying
from sleuth.store.settings import redact_url

from .grammars import form_grammar, held_to
from .llm import Completion, Message, OutputForm, Sampling, TokenCallback

MAX_RESPONSE_BYTES = 16 << 20  # a chat completion is kilobytes; far more is not one
MAX_LINE_BYTES = 1 << 20  # one server-sent event line
CALL_SECONDS = 600.0  # the most one call may take, whatever the server sends meanwhile
WATCH_S = 0.05  # how often a call checks its stop signal while the wire is silent


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
        call_seconds: float = CALL_SECONDS,
        max_bytes: int = MAX_RESPONSE_BYTES,
        transport: httpx.BaseTransport | None = None,
    ):
        if not endpoint.startswith(("http://", "https://")):
            raise ModelError(f"The model endpoint {redact_url(endpoint)!r} is not an http(s) URL.")
        self.endpoint = endpoint.rstrip("/")
        self.shown = redact_url(self.endpoint)  # what messages say: no password in them
        self.model = model
        self.n_ctx = n_ctx
        self.name = model or self.shown
        self.call_seconds = call_seconds
        self.max_bytes = max_bytes
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=10.0), headers=headers, transport=transport
        )
        # Servers disagree on how to ask for schema-constrained output: OpenAI and vLLM take
        # "json_schema"; llama-cpp-python's server only "json_object" with a "schema". We try
        # the standard form and fall back once, remembering what worked.
        self._schema_style: str | None = None
        # A GBNF grammar holds a short answer to its form where the server takes one
        # (llama.cpp's servers); a server that refuses the field is asked without it.
        self._grammar_ok = True

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
                tokens = response.json().get(key) if response.status_code == 200 else None
                if isinstance(tokens, list):
                    return len(tokens)
            except (httpx.HTTPError, ValueError, AttributeError):
                continue
        return max(1, len(text) // 4)  # the usual estimate when a server cannot tokenize

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
        if schema is None:
            return self._answer(messages, sampling, form, on_token, cancel)
        styles = [self._schema_style] if self._schema_style else ["json_schema", "json_object"]
        completion = None
        for number, style in enumerate(styles, start=1):
            try:
                extra = {"response_format": _response_format(style, schema)}
                completion = self._chat(messages, sampling, extra, None, cancel)
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

    def _answer(self, messages, sampling, form, on_token, cancel) -> Completion:
        """A free or form-held answer. The form goes to the server as a GBNF grammar
        (grammars.py); a server that refuses one is asked without it, and what it answers is
        held to the form after (`held_to`; the caller checks it, as it checks every answer)."""
        grammar = form_grammar(form) if form is not None and self._grammar_ok else None
        if grammar is not None:
            try:
                completion = self._chat(messages, sampling, {"grammar": grammar}, on_token, cancel)
            except ServerRefused:
                completion = self._chat(messages, sampling, {}, on_token, cancel)
                self._grammar_ok = False  # refused with the grammar, answered without it
        else:
            completion = self._chat(messages, sampling, {}, on_token, cancel)
        if form is not None:
            completion.text = held_to(form, completion.text)
        return completion

    def _chat(self, messages, sampling, extra, on_token, cancel) -> Completion:
        """One request, retried while the server is busy or unreachable and nothing has
        streamed yet (a partly streamed answer is never sent twice)."""
        retries: list[dict] = []

        def note(attempt: int, wait: float, error: BaseException) -> None:
            retries.append({"attempt": attempt, "wait_s": round(wait, 2), "error": str(error)})

        for attempt in retrying(note):
            with attempt:
                completion = self._request(messages, sampling, extra, on_token, cancel)
        completion.retries = retries
        return completion

    def _body(self, messages, sampling: Sampling, extra: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "messages": messages,
            "stream": True,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stream_options": {"include_usage": True},
            **extra,
        }
        if self.model:
            body["model"] = self.model
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        if sampling.stop:
            body["stop"] = sampling.stop
        for penalty in ("frequency_penalty", "presence_penalty"):  # the API's own; no other
            if getattr(sampling, penalty):
                body[penalty] = getattr(sampling, penalty)
        return body

    def _request(self, messages, sampling, extra, on_token, cancel) -> Completion:
        started = time.perf_counter()
        stream = _Stream(self, on_token)
        url = self.endpoint + "/chat/completions"
        with _Watch(cancel, time.monotonic() + self.call_seconds) as watch:
            try:
                with self._client.stream(
                    "POST", url, json=self._body(messages, sampling, extra), extensions=watch.trace
                ) as response:
                    watch.attach(response)
                    self._check_status(response)
                    stream.read(response, watch)
            except httpx.HTTPError as exc:
                if watch.why is None:
                    error = ServerBusy if not stream.pieces else ModelError
                    raise error(
                        f"Cannot reach the model server at {self.shown} "
                        f"({exc.__class__.__name__}): is it running? Check model.endpoint."
                    ) from exc
            except OSError as exc:  # the watch closed the socket under a read
                if watch.why is None:
                    raise ModelError(
                        f"The connection to the model server at {self.shown} failed: {exc}."
                    ) from exc
        if watch.why == "deadline":
            raise ModelError(
                f"The model server at {self.shown} did not finish an answer within "
                f"{self.call_seconds:.0f} s."
            )
        return Completion(
            text="".join(stream.pieces),
            prompt_tokens=_count(stream.usage.get("prompt_tokens")),
            completion_tokens=_count(stream.usage.get("completion_tokens")) or len(stream.pieces),
            seconds=time.perf_counter() - started,
            finish_reason="cancelled" if watch.why == "cancelled" else stream.finish,
        )

    def _check_status(self, response: httpx.Response) -> None:
        if response.status_code == 200:
            return
        text = _head(response)
        if response.status_code in TRANSIENT_STATUS:
            raise ServerBusy(
                f"The model server at {self.shown} answered {response.status_code}",
                retry_after(response.headers.get("retry-after")),
            )
        raise ServerRefused(
            f"The model server at {self.shown} answered {response.status_code}: {text}"
        )


class _Stream:
    """What one response holds: the answer's pieces, how it finished, the server's counts.
    Reads server-sent events, or one JSON completion from a server that does not stream."""

    def __init__(self, llm: OpenAILLM, on_token: TokenCallback | None):
        self.llm, self.on_token = llm, on_token
        self.pieces: list[str] = []
        self.finish = "stop"
        self.usage: dict[str, Any] = {}

    def read(self, response: httpx.Response, watch: _Watch) -> None:
        kind = response.headers.get("content-type", "")
        if "json" in kind and "event-stream" not in kind:
            body = b"".join(self._chunks(response, watch))
            if watch.why is None:
                self._event(self._parse(body), "message")
            return
        for line in self._lines(response, watch):
            if not line.startswith(b"data:"):
                continue  # comments (": ping"), event names, ids, blank separators
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            self._event(self._parse(data), "delta")

    def _chunks(self, response: httpx.Response, watch: _Watch) -> Iterator[bytes]:
        """The body's bytes, stopping at the watch and at the size cap."""
        total = 0
        for chunk in response.iter_bytes():
            total += len(chunk)
            if total > self.llm.max_bytes:
                raise ModelError(
                    f"The model server at {self.llm.shown} sent more than "
                    f"{self.llm.max_bytes >> 20} MB for one answer."
                )
            if watch.stopped():
                return
            yield chunk

    def _lines(self, response: httpx.Response, watch: _Watch) -> Iterator[bytes]:
        pending = b""
        for chunk in self._chunks(response, watch):
            pending += chunk
            *lines, pending = pending.replace(b"\r\n", b"\n").split(b"\n")
            if len(pending) > MAX_LINE_BYTES:
                raise ModelError(
                    f"The model server at {self.llm.shown} sent a line of more than "
                    f"{MAX_LINE_BYTES >> 20} MB: it is not a chat completion stream."
                )
            yield from lines
        if pending and not watch.stopped():
            yield pending

    def _parse(self, data: bytes) -> dict[str, Any]:
        try:
            event = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError):
            event = None
        if not isinstance(event, dict):
            raise self._malformed()
        return event

    def _event(self, event: dict[str, Any], key: str) -> None:
        usage = event.get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        choices = event.get("choices") or []
        if not isinstance(choices, list):
            raise self._malformed()
        for choice in choices:
            if not isinstance(choice, dict):
                raise self._malformed()
            part = choice.get(key)
            if part is not None and not isinstance(part, dict):
                raise self._malformed()
            piece = (part or {}).get("content") or ""
            if not isinstance(piece, str):
                raise self._malformed()
            if piece:
                self.pieces.append(piece)
                if self.on_token is not None:
                    self.on_token(piece)
            if isinstance(choice.get("finish_reason"), str):
                self.finish = choice["finish_reason"]

    def _malformed(self) -> ModelError:
        return ModelError(
            f"The model server at {self.llm.shown} sent something that is not a chat "
            "completion: check model.endpoint points at an OpenAI-compatible /v1."
        )


class _Watch:
    """Stops one call from outside: a thread that, when the caller's stop signal is set or
    the call's deadline passes, shuts the call's socket down, which ends a read blocked on a
    server that sends nothing, or keep-alives, or a line that never ends."""

    def __init__(self, cancel: threading.Event | None, deadline: float):
        self.cancel, self.deadline = cancel, deadline
        self.why: str | None = None  # "cancelled" or "deadline", once stopped
        self._socket: socket.socket | None = None
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="model-call-watch", daemon=True)
        # httpcore reports each connection it opens (or reuses) through this trace hook.
        self.trace = {"trace": self._traced}

    def __enter__(self) -> _Watch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def stopped(self) -> bool:
        self._check()
        return self.why is not None

    def attach(self, response: httpx.Response) -> None:
        stream = response.extensions.get("network_stream")
        if stream is not None:
            self._hold(stream)

    def _traced(self, name: str, info: dict[str, Any]) -> None:
        if name.endswith(("connect_tcp.complete", "start_tls.complete")):
            stream = info.get("return_value")
            if stream is not None:
                self._hold(stream)

    def _hold(self, stream: Any) -> None:
        with contextlib.suppress(Exception):
            sock = stream.get_extra_info("socket")
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._socket = sock
                if self.why is not None:
                    self._shut()

    def _check(self) -> None:
        if self.why is None:
            if self.cancel is not None and self.cancel.is_set():
                self.why = "cancelled"
            elif time.monotonic() >= self.deadline:
                self.why = "deadline"

    def _run(self) -> None:
        while not self._done.wait(WATCH_S):
            self._check()
            if self.why is not None:
                self._shut()
                return

    def _shut(self) -> None:
        with self._lock, contextlib.suppress(OSError):
            if self._socket is not None:
                self._socket.shutdown(socket.SHUT_RDWR)


class ServerRefused(ModelError):
    """The server answered the request with an error status."""


class ServerBusy(ModelError, Transient):
    """The server is busy, restarting or unreachable for now: the request is retried."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _head(response: httpx.Response) -> str:
    """The first few hundred characters of an error body (read no further)."""
    with contextlib.suppress(httpx.HTTPError, OSError):
        for chunk in response.iter_bytes():
            return chunk[:200].decode("utf-8", "replace").strip()
    return ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and value >= 0 else 0


def _response_format(style: str, schema: dict[str, Any]) -> dict[str, Any]:
    if style == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    return {"type": "json_object", "schema": schema}


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False
