"""What the agent and the trainer need from a model: one small Protocol, the sampling settings
and the result of a call. The backends are `llama.LlamaCppLLM` (a GGUF in this process) and
`http_llm.OpenAILLM` (an OpenAI-compatible server); `chat_format` renders prompts for both
inference and training.

Calls are blocking and run one at a time; callers put them on a worker thread. Streaming is a
callback (`on_token`) so a worker can forward tokens to an event loop; `cancel` is a
threading.Event checked between tokens.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from sleuth.agent.errors import ModelError

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
    repeat_penalty: float = 1.0  # > 1 makes tokens seen in the last 64 less likely
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0

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
    retries: list[dict] = field(default_factory=list)  # attempt, wait_s, error: a busy server
    waited_s: float = 0.0  # seconds spent waiting while another Sleuth used the model
    # The exact messages of a structured call (chat_json sets them), so the run's record
    # holds the planner's and reflection's prompts and outputs for training on trajectories.
    messages: list[Message] | None = None
    # A form-held answer's first step, where the backend offers it: the model's likeliest
    # first tokens, each (its text, its log-probability over the whole vocabulary), and the
    # log-probability of each token it wrote (the reader's candidates are scored from these:
    # agent/research/candidates.py).
    first_tokens: list[tuple[str, float]] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds > 0 else 0.0


class OutputForm(Protocol):
    """What a constrained answer may be (research/reader.py `AnswerForm` is one): a backend
    that can hold decoding to it lets through only text it `permits`, ends only where it is
    `complete`, and when the model's own best tokens all break it, follows `continuations`."""

    def permits(self, text: str) -> bool:
        """Whether `text` can still become an allowed answer."""
        ...

    def complete(self, text: str) -> bool:
        """Whether `text` is an allowed answer as it stands."""
        ...

    def continuations(self, text: str) -> list[str]:
        """Text that may follow `text` (a few characters each) on the way to an answer."""
        ...


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
        form: OutputForm | None = None,
        on_token: TokenCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        """Answer the conversation. With `schema`, the output is JSON valid against it; with
        `form`, a backend that can constrain decoding holds the output to it (one that cannot
        ignores it, and the caller checks what comes back)."""
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
    completion.messages = messages
    try:
        value = json.loads(completion.text)
    except json.JSONDecodeError as exc:
        raise UnusableOutput(_why_unusable(completion), completion) from exc
    if not isinstance(value, dict):
        raise UnusableOutput("The model's structured output was not a JSON object.", completion)
    return value, completion


def _why_unusable(completion: Completion) -> str:
    """Why a structured call gave no JSON, in words that point at the real cause."""
    if completion.finish_reason == "cancelled":
        waited = (
            f" after waiting {completion.waited_s:.0f} s while other Sleuths used the model"
            if completion.waited_s >= 1
            else ""
        )
        return (
            f"The model was stopped before it finished{waited} (the run's time ran out, or it "
            "was cancelled): raise the time budget (--budget seconds=N)."
        )
    if completion.finish_reason == "length":
        return (
            f"The model's structured output ran past its {completion.completion_tokens} tokens "
            "before the JSON closed: raise the token budget or use a larger model."
        )
    return "The model's structured output was not valid JSON: use a larger model."


class UnusableOutput(ModelError):
    """The model answered, but not in a usable shape; the completion is kept for the record."""

    def __init__(self, message: str, completion: Completion):
        super().__init__(message)
        self.completion = completion
