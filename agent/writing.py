"""Writing the answer, the research loop's last step: streamed from the model, stopped the
moment it loops, tidied (an evidence list copied out after the answer is cut; an answer that
cites nothing gets [n] on the sentences one passage supports almost word for word), verified,
and checked (agent/answers.py). An answer that fails the checks is
written once more with other sampling; if that fails too, the user gets the evidence that bears
on the question most, quoted and labelled as such. Every rejected answer is recorded with why.

`Writing` is a part of the Researcher (agent/research.py), kept apart so each reads whole: it
uses the run's stream (`_emit`, `_queue`), its model calls (`_llm`, `_deadline`, `_cancel`),
and the loop's settings and model.
"""

from __future__ import annotations

import asyncio

from .answers import RepetitionGuard, cut_recitation, extractive_answer, problems
from .events import AnswerCancelled, AnswerDone, AnswerRejected, Token
from .executors import RunState
from .llm import Sampling
from .writer import Verified, attribute, verify


class Writing:
    async def _write(self, run: RunState, evidence: list[dict], messages: list[dict]) -> None:
        """Write the answer; an answer that fails the checks (agent/answers.py) is written
        once more with other sampling, and if that fails too the user gets the evidence that
        bears on the question most, quoted and labelled as such."""
        rejected: list[dict] = []
        for attempt in range(2):
            sampling = self._sampling(run, attempt)
            completion, looped, timed_out = await self._generate(run, messages, sampling)
            checked, found = judge(completion.text, evidence)
            if looped and "it repeats itself" not in found:
                found.insert(0, "it repeats itself")
            if not found:
                if timed_out:  # kept, and said: the answer stopped at the run's time limit
                    checked.verification["stopped"] = "time limit"
                checked.verification.update(kind="model", rejected=rejected, problems=[])
                self._answer(run, checked, evidence, messages, sampling, completion)
                return
            rejected.append(
                {"text": checked.text, "problems": found, "sampling": sampling.as_dict()}
            )
            last = attempt == 1 or timed_out
            self._emit(run, AnswerRejected(checked.text, found, retrying=not last))
            if last:
                break
        checked = verify(extractive_answer(run.question, evidence), evidence)
        checked.verification.update(kind="extractive", rejected=rejected, problems=[])
        self._answer(run, checked, evidence, messages, sampling, completion)

    def _sampling(self, run: RunState, attempt: int) -> Sampling:
        """The writer's sampling; a second attempt samples more widely and repeats less."""
        settings = self.settings
        return Sampling(
            temperature=settings.temperature if not attempt else max(0.7, settings.temperature),
            max_tokens=run.budget.limits.answer_tokens,
            seed=run.seed + attempt,
            repeat_penalty=settings.repeat_penalty + 0.15 * attempt,
        )

    async def _generate(self, run: RunState, messages: list[dict], sampling: Sampling):
        """One streamed answer: (completion, stopped because it looped, stopped at the time
        limit). The stream stops the moment the text loops (RepetitionGuard)."""
        loop = asyncio.get_running_loop()
        queue = self._queue
        assert queue is not None
        pieces: list[str] = []
        guard = RepetitionGuard()

        def on_token(piece: str) -> None:
            pieces.append(piece)
            guard.feed(piece)
            loop.call_soon_threadsafe(queue.put_nowait, Token(piece))

        stop = self._deadline(run, also=lambda: guard.tripped)
        try:
            completion = await self._llm(
                run,
                "write",
                lambda: self.llm.chat(messages, sampling, on_token=on_token, cancel=stop),
            )
        except asyncio.CancelledError:
            completion = None
        if completion is None or self._cancel.is_set():
            self._emit(run, AnswerCancelled("".join(pieces)))
            raise asyncio.CancelledError
        return completion, guard.tripped, stop.expired

    def _answer(self, run, checked, evidence, messages, sampling, completion) -> None:
        sources = [
            {"number": n, "title": item.get("title") or item["uri"], "uri": item["uri"]}
            for n, item in enumerate(evidence, start=1)
        ]
        self._emit(
            run,
            AnswerDone(
                text=checked.text,
                citations=checked.citations,
                verification=checked.verification,
                sources=sources,
                messages=messages,
                sampling=sampling.as_dict(),
                model_name=self.model.name,
                base_path=self.model.base_path,
                adapter_path=self.model.adapter_path,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                seconds=completion.seconds,
            ),
        )


def judge(text: str, evidence: list[dict]) -> tuple[Verified, list[str]]:
    """A written answer tidied, verified and checked: (the verified answer, its problems).
    The tidying is recorded in the verification ("recitation_cut", "attributed")."""
    text, cut = cut_recitation(text, evidence)
    checked = verify(text, evidence)
    found = problems(checked.text, checked.citations, evidence)
    attributed = 0
    if found == ["it cites no evidence"]:
        text, attributed = attribute(checked.text, evidence)
        if attributed:
            checked = verify(text, evidence)
            found = problems(checked.text, checked.citations, evidence)
    checked.verification.update(recitation_cut=cut, attributed=attributed)
    return checked, found
