"""Retrying what fails for a moment: a search backend or a model server that is busy (429,
503), restarting (502, 504) or briefly unreachable. Waits grow exponentially with jitter; a
server's Retry-After is honoured (up to MAX_WAIT_S); every retry is reported, so a run records
it as a step. What is not transient (a 404, a refused format) fails at once.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from datetime import UTC, datetime

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

ATTEMPTS = 3
MAX_WAIT_S = 10.0
TRANSIENT_STATUS = frozenset({429, 502, 503, 504})

OnRetry = Callable[[int, float, BaseException], None]  # attempt that failed, wait, error
_backoff = wait_random_exponential(multiplier=0.5, max=MAX_WAIT_S)


class Transient(Exception):  # noqa: N818 - a property of other errors, mixed into them
    """Marks an error worth retrying; `retry_after` is the server's own wait, if it gave one."""

    retry_after: float | None = None
    attempts: int | None = None  # the most tries this kind of failure deserves, if fewer


def retry_after(header: str | None) -> float | None:
    """A Retry-After header (seconds, or an HTTP date) as seconds from now."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    given = getattr(error, "retry_after", None)
    return min(given, MAX_WAIT_S) if given is not None else _backoff(state)


def _reporter(on_retry: OnRetry | None):
    def report(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None and state.next_action is not None:
            on_retry(state.attempt_number, state.next_action.sleep, state.outcome.exception())

    return report


def _stop(attempts: int):
    """Stop after `attempts`, or sooner where the error says it deserves fewer."""
    everything = stop_after_attempt(attempts)

    def stop(state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        fewer = getattr(error, "attempts", None)
        return everything(state) or (fewer is not None and state.attempt_number >= fewer)

    return stop


def _options(on_retry: OnRetry | None, attempts: int) -> dict:
    return dict(
        stop=_stop(attempts),
        wait=_wait,
        retry=retry_if_exception(lambda error: isinstance(error, Transient)),
        before_sleep=_reporter(on_retry),
        reraise=True,
    )


def retrying(on_retry: OnRetry | None = None, attempts: int = ATTEMPTS) -> Retrying:
    """For blocking calls: `for attempt in retrying(...): with attempt: call()`."""
    return Retrying(sleep=time.sleep, **_options(on_retry, attempts))


def async_retrying(on_retry: OnRetry | None = None, attempts: int = ATTEMPTS) -> AsyncRetrying:
    """For coroutines: `async for attempt in async_retrying(...): with attempt: await call()`."""
    return AsyncRetrying(**_options(on_retry, attempts))
