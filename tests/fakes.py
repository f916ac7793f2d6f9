"""Scripted stand-ins for logic tests (next to tests that use the real parts)."""

from __future__ import annotations

import json
import threading
from typing import Any

from sleuth.agent.models.llm import Completion, Sampling


class ScriptedLLM:
    """An LLM that returns queued outputs in order and records every call.

    Queue strings, dicts (returned as JSON for schema calls), callables taking the messages,
    or Completions (returned as they are: a reading with its first tokens' log-probabilities).
    """

    name = "scripted"
    n_ctx = 8192
    # Queue this to stream words until the caller cancels (a writer that is never done).
    UNTIL_CANCELLED = object()

    def __init__(self, outputs: list[Any] | None = None):
        self.outputs = list(outputs or [])
        self.calls: list[dict[str, Any]] = []

    def queue(self, *outputs: Any) -> None:
        self.outputs.extend(outputs)

    def chat(
        self,
        messages,
        sampling: Sampling,
        *,
        schema=None,
        form=None,
        on_token=None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        # `form` is not enforced: this stands for a backend that cannot constrain decoding,
        # whose output the caller checks.
        self.calls.append(
            {"messages": messages, "sampling": sampling, "schema": schema, "form": form}
        )
        if not self.outputs:
            raise AssertionError(f"ScriptedLLM ran out of outputs at call {len(self.calls)}")
        output = self.outputs.pop(0)
        if output is self.UNTIL_CANCELLED:
            return self._until_cancelled(on_token, cancel)
        if callable(output):
            output = output(messages)
        if isinstance(output, Completion):  # as queued, with what the model believed
            if on_token is not None:
                on_token(output.text)
            return output
        text = json.dumps(output) if isinstance(output, (dict, list)) else str(output)
        finish = "stop"
        pieces = []
        for word in text.split(" "):
            if cancel is not None and cancel.is_set():
                finish = "cancelled"
                break
            piece = word if not pieces else " " + word
            pieces.append(piece)
            if on_token is not None:
                on_token(piece)
        out = "".join(pieces)
        return Completion(
            text=out,
            prompt_tokens=sum(len(m["content"].split()) for m in messages),
            completion_tokens=len(pieces),
            seconds=0.001,
            finish_reason=finish,
        )

    def _until_cancelled(self, on_token, cancel) -> Completion:
        assert cancel is not None, "UNTIL_CANCELLED needs a cancel event"
        count = 0
        while not cancel.wait(0.001):  # checks the event the way a real model does, per token
            count += 1
            if on_token is not None:
                on_token("word ")
            if count > 1_000_000:
                raise AssertionError("never cancelled")
        return Completion("word " * count, 1, count, 0.001, "cancelled")

    def count_tokens(self, text: str) -> int:
        return len(text.split())
