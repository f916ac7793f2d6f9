"""How long each stage of a training run takes, said before it starts.

A stage's estimate is what it took in the last finished training run of the same algorithm on
the same base model, scaled by how much more or less work this run asks of it (steps for the
optimizer steps, held-out prompts for the evaluation). The first run of a kind has no estimate:
it says so, and the optimizer steps still show their rate and time left as they go. What each
stage took is kept in the run's summary (`stage_seconds`) for the next run to estimate from.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sleuth.store import Store

NAMES = {  # what each stage is called where the user reads it
    "load": "loading the model",
    "prepare": "preparing the algorithm",
    "steps": "training",
    "export": "writing the adapter",
    "evaluate": "evaluating on held-out prompts",
}


def duration(seconds: float) -> str:
    """'40 s', '3 min', '1 h 05 min': as precise as a wait needs."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


@dataclass
class Previous:
    """The last finished run of the same algorithm over the same base: its stage times and
    the amounts of work they were for."""

    seconds: dict[str, float]
    work: dict[str, float]

    @classmethod
    def find(cls, store: Store, algo: str, parent_model_id: int | None) -> Previous | None:
        def base(model_id: int | None) -> str | None:
            return store.registry.model(model_id).base_fingerprint if model_id else None

        ours = base(parent_model_id)
        for run in store.training.runs():  # newest first
            summary = run.summary or {}
            if run.algo != algo or run.status != "done" or "stage_seconds" not in summary:
                continue
            if base(run.parent_model_id) != ours:
                continue
            return cls(dict(summary["stage_seconds"]), dict(summary.get("stage_work", {})))
        return None


@dataclass
class Clock:
    """Times the stages of one training run and says, before each, about how long it takes."""

    info: Callable[[str], None]  # the run's Logger.info
    previous: Previous | None
    seconds: dict[str, float] = field(default_factory=dict)
    work: dict[str, float] = field(default_factory=dict)

    def estimate(self, name: str, work: float | None = None) -> float | None:
        """Seconds this stage should take, from the previous run, or None without one."""
        if self.previous is None or name not in self.previous.seconds:
            return None
        seconds = self.previous.seconds[name]
        before = self.previous.work.get(name)
        if work is not None and before:
            seconds *= work / before
        return seconds

    @contextmanager
    def stage(self, name: str, work: float | None = None) -> Iterator[None]:
        guess = self.estimate(name, work)
        what = NAMES[name]
        if guess is not None:
            self.info(f"{what}: about {duration(guess)} (from your last run like this)")
        else:
            self.info(f"{what}…")
        started = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - started, 1)
        if work is not None:
            self.work[name] = work

    def total(self, stages: dict[str, float | None]) -> float | None:
        """The whole run's estimate, when every stage has one."""
        guesses = [self.estimate(name, work) for name, work in stages.items()]
        return None if any(g is None for g in guesses) else sum(guesses)  # type: ignore[arg-type]
