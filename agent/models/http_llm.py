"""A model behind an OpenAI-compatible server (llama-server, vLLM, Ollama), over httpx."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx

from sleuth.agent.errors import ModelError
from sleuth.agent.retry import TRANSIENT_STATUS, Transient, retry_after, retrying
from sleuth.store.settings import redact_url

from .llm import Completion, Message, Sampling, TokenCallback


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
            raise ModelError(f"The model endpoint {redact_url(endpoint)!r} is not an http(s) URL.")
        self.endpoint = endpoint.rstrip("/")
        self.shown = redact_url(self.endpoint)  # what messages say: no password in them
        self.model = model
        self.n_ctx = n_ctx
        self.name = model or self.shown
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
        """One request, retried while the server is busy or unreachable and nothing has
        streamed yet (a partly streamed answer is never sent twice)."""
        retries: list[dict] = []

        def note(attempt: int, wait: float, error: BaseException) -> None:
            retries.append({"attempt": attempt, "wait_s": round(wait, 2), "error": str(error)})

        for attempt in retrying(note):
            with attempt:
                completion = self._request(messages, sampling, response_format, on_token, cancel)
        completion.retries = retries
        return completion

    def _request(self, messages, sampling, response_format, on_token, cancel) -> Completion:
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
        for penalty in ("frequency_penalty", "presence_penalty"):  # the API's own; no other
            if getattr(sampling, penalty):
                body[penalty] = getattr(sampling, penalty)
        if response_format is not None:
            body["response_format"] = response_format
        started = time.perf_counter()
        pieces: list[str] = []
        finish = "stop"
        usage: dict[str, int] = {}
        url = self.endpoint + "/chat/completions"
        try:
            with self._client.stream("POST", url, json=body) as response:
                if response.status_code in TRANSIENT_STATUS:
                    response.read()
                    raise ServerBusy(
                        f"The model server at {self.shown} answered {response.status_code}",
                        retry_after(response.headers.get("retry-after")),
                    )
                if response.status_code != 200:
                    response.read()
                    raise ServerRefused(
                        f"The model server at {self.shown} answered {response.status_code}: "
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
            error = ServerBusy if not pieces else ModelError
            raise error(
                f"Cannot reach the model server at {self.shown} ({exc.__class__.__name__}): "
                "is it running? Check model.endpoint."
            ) from exc
        except json.JSONDecodeError as exc:
            raise ModelError(f"The model server at {self.shown} sent a malformed stream.") from exc
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


class ServerBusy(ModelError, Transient):
    """The server is busy, restarting or unreachable for now: the request is retried."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _response_format(style: str, schema: dict[str, Any]) -> dict[str, Any]:
    if style == "json_schema":
        return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}
    return {"type": "json_object", "schema": schema}


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except json.JSONDecodeError:
        return False
