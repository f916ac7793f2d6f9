"""The recorder: persists a research run from its event stream alone.

Every event but Token is written as it arrives, in order, off the event loop (a worker thread),
each in its own transaction, before it is passed on: a crash loses at most the step in flight.
What the database assigns (session, turn, run and answer ids) is filled into the events it
passes on, so consumers never need to ask the store during a run.

The stream is consumed by a task of the recorder's own, not by whoever reads the recorded
events: when that reader stops listening (a closed window, a broken pipe, a cancelled task),
the run is cancelled and its remaining events, RunFinished included, are still recorded.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from sleuth.agent.errors import ModelError
from sleuth.agent.models.registry import ModelRegistry
from sleuth.store import Store

from .events import (
    AnswerDone,
    Event,
    EvidenceChosen,
    LLMCall,
    PageFetched,
    PlanReady,
    PlanReviewed,
    RunFinished,
    RunStarted,
    Token,
)

EVIDENCE_KEYS = ("uri", "text", "title", "source_id", "chunk_id", "subquestion", "score")
_DONE = object()
ABANDONED_WAIT_S = 30.0  # how long a left-behind run may take to stop and be recorded


@dataclasses.dataclass
class _Recording:
    """The ids of the run being recorded."""

    run_id: int | None = None
    session_id: int | None = None
    turn_id: int | None = None
    answer_id: int | None = None
    model_id: int | None = None  # the registry row answers are attributed to


class Recorder:
    def __init__(self, store: Store):
        self.store = store

    async def record(
        self, events: AsyncIterator[Event], *, cancel: Callable[[], None]
    ) -> AsyncIterator[Event]:
        """Persist each event of `events` and pass it on with its ids filled in. `cancel`
        stops the run (called when the reader of the recorded events goes away)."""
        recording = _Recording()
        passed: asyncio.Queue = asyncio.Queue()

        async def pump() -> None:
            try:
                async for event in events:
                    if not isinstance(event, Token):
                        event = await asyncio.to_thread(self._persist, recording, event)
                    passed.put_nowait(event)
            except BaseException:
                cancel()  # a failed write must not leave the run going on unrecorded
                await _drain(events)
                raise
            finally:
                passed.put_nowait(_DONE)

        task = asyncio.ensure_future(pump())
        try:
            while (event := await passed.get()) is not _DONE:
                yield event
            await task  # what could not be recorded (a locked or full database) is raised
        finally:
            if not task.done():
                cancel()
                await asyncio.wait({task}, timeout=ABANDONED_WAIT_S)
                if task.done() and not task.cancelled():
                    task.exception()  # nobody is left to raise it to; the run recorded it

    # -- one event -----------------------------------------------------------------------

    def _persist(self, recording: _Recording, event: Event) -> Event:
        """Write one event (in the worker thread); returns it with its ids filled in."""
        runs = self.store.runs
        if isinstance(event, RunStarted):
            event = self._start(recording, event)
        elif isinstance(event, PlanReady) and event.round == 1:
            runs.set_plan(recording.run_id, {"subquestions": event.subquestions, "reviewed": False})
        elif isinstance(event, PlanReviewed):
            runs.set_plan(recording.run_id, {"subquestions": event.subquestions, "reviewed": True})
        elif isinstance(event, EvidenceChosen):
            runs.add_evidence(
                recording.run_id,
                [{k: item.get(k) for k in EVIDENCE_KEYS} for item in event.items],
            )
        elif isinstance(event, AnswerDone):
            recording.answer_id = runs.add_answer(
                recording.run_id,
                text=event.text,
                short_answer=event.short_answer,
                messages=event.messages,
                sampling=event.sampling,
                citations=event.citations,
                verification=event.verification,
                model_id=recording.model_id,
                model_name=event.model_name,
                base_path=event.base_path,
                adapter_path=event.adapter_path,
                prompt_tokens=event.prompt_tokens,
                completion_tokens=event.completion_tokens,
                duration_ms=event.seconds * 1000,
            )
            event = dataclasses.replace(
                event, answer_id=recording.answer_id, run_id=recording.run_id
            )
        elif isinstance(event, RunFinished):
            event = dataclasses.replace(
                event, answer_id=recording.answer_id, run_id=recording.run_id
            )
        assert recording.run_id is not None, f"{event.kind} before run_started"
        runs.add_step(recording.run_id, event.kind, event.data(), **_costs(event))
        if isinstance(event, RunFinished):
            runs.finish_run(recording.run_id, event.status, event.error)
        return event

    def _start(self, recording: _Recording, event: RunStarted) -> RunStarted:
        runs = self.store.runs
        if event.regenerates is not None:
            turn = runs.turn(runs.run(event.regenerates).turn_id)
            session_id, turn_id = turn.session_id, turn.id
        else:
            session_id = event.session_id or runs.new_session(event.question)
            turn_id = runs.add_turn(session_id, event.question)
        # Answers are attributed to a registry row: the active adapter, else the base file
        # (registered the first time it writes an answer).
        model_id = event.model_id
        if model_id is None and event.base_path is not None:
            try:
                model_id = (
                    ModelRegistry(self.store)
                    .ensure_base(Path(event.base_path), event.base_fingerprint)
                    .id
                )
            except ModelError:  # a model file gone or unreadable since it was loaded
                model_id = None  # the run is recorded all the same, unattributed
        run_id = runs.start_run(turn_id, event.settings, model_id)
        recording.run_id, recording.session_id, recording.turn_id = run_id, session_id, turn_id
        recording.model_id = model_id
        return dataclasses.replace(
            event, run_id=run_id, session_id=session_id, turn_id=turn_id, model_id=model_id
        )


def _costs(event: Event) -> dict[str, Any]:
    """The step row's timing and token columns, where the event has them."""
    if isinstance(event, LLMCall):
        return {
            "duration_ms": event.seconds * 1000,
            "tokens_in": event.prompt_tokens,
            "tokens_out": event.completion_tokens,
        }
    if isinstance(event, PageFetched) and not event.cached:
        return {"duration_ms": event.seconds * 1000}
    return {"status": "failed"} if event.failed else {}


async def _drain(events: AsyncIterator[Event]) -> None:
    """Let a cancelled run wind down without recording it further."""
    try:
        async for _ in events:
            pass
    except BaseException:  # noqa: BLE001 - the first error is the one being raised
        pass
