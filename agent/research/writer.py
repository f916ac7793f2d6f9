"""Answering, the research loop's last step: the loop hands the `Writer` the evidence it chose,
and the writer emits the answer (AnswerDone), or why it had none to give.

Two ways, by `research.answer`:

- read (the default): the model reads the short answer off the numbered evidence, its
  decoding held to what the answer may be (agent/research/reader.py); the answer shown is that short
  answer, cited, over the quoted sentences that support it. A short answer that fails its
  check is sampled once more; if that fails too, the first line says the sources do not say,
  and the evidence that bears on the question most is quoted under it.
- write: the model writes the whole answer, streamed and stopped the moment it loops, tidied,
  verified and checked (agent/research/checks.py). An answer that fails the checks is written once
  more with other sampling, and then the user gets quoted evidence, labelled as such.

Every rejected attempt is recorded with why. The writer reaches the run only through the
run (state.py `RunState`, a `Calls`): model calls that are accounted and recorded, the run's
deadline, and the token stream.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.models.llm import LLM, Completion, Sampling
from sleuth.agent.prompts import render, template
from sleuth.agent.text import is_polar

from . import hops
from .budget import Deadline
from .candidates import Candidate, propose
from .checks import RepetitionGuard, cut_recitation, extractive_answer, problems
from .compare import asked_of_lead, compare, through
from .events import AnswerCancelled, AnswerDone, AnswerRejected, Event
from .evidence import evidence_block
from .hops import MAX_HOPS, Bridge, Hop, find_hop, names_the_question
from .passages import alternatives, reading
from .picker import RewardModel, probability
from .reader import (
    SHORT_TOKENS,
    answer_form,
    check,
    cited_passage,
    read_answer,
    reader_messages,
    whole_date_of,
)
from .verify import Verified, attribute, verify

READ_TEMPERATURE = 0.7  # a second look at the evidence, when the first answer failed its check
READ_SAMPLES = 1  # readings voted on: 1 is the greedy reading alone


class Calls(Protocol):
    """What the writer needs of the loop running it."""

    async def call(self, purpose: str, fn: Callable[[], Any]) -> Any:
        """Run one model call on the worker thread, accounted and recorded as `purpose`."""
        ...

    def deadline(self, also: Callable[[], bool] | None = None) -> Deadline:
        """The stop signal of a model call: cancel, the run's time, or `also`."""
        ...

    def emit(self, event: Event) -> None:
        """Put an event on the run's stream (from the event loop)."""
        ...

    def stream(self, piece: str) -> None:
        """Put a token of the answer on the run's stream (from any thread)."""
        ...

    def cancelled(self) -> bool: ...


@dataclass(frozen=True)
class WriterSettings:
    """How the writer answers (from LoopSettings)."""

    answer: str = "read"  # read: the short answer read off the evidence; write: free text
    temperature: float = 0.3  # the free writer's
    repeat_penalty: float = 1.1  # the free writer's
    answer_tokens: int = 512  # the free writer's longest answer


class Writer:
    """Writes one run's answer from its evidence; emits AnswerDone (or AnswerCancelled)."""

    def __init__(
        self,
        llm: LLM,
        model: ModelInfo,
        settings: WriterSettings,
        picker: RewardModel | None = None,
    ):
        """`picker`: the reward model that chooses among the reader's candidates (None: the
        model's own reading is the short answer)."""
        self.llm, self.model, self.settings, self.picker = llm, model, settings, picker

    def messages(
        self, question: str, evidence: list[dict], history: str = "", bridges=()
    ) -> list[dict]:
        """The exact prompt this writer gives the model for `question` over `evidence` (read
        through `bridges`: the prompt of the question left once they are read)."""
        if self.settings.answer == "read":
            return reader_messages(self.asked(question, list(bridges)), evidence, history)
        return writer_messages(question, evidence, history)

    async def answer(
        self,
        calls: Calls,
        question: str,
        evidence: list[dict],
        messages: list[dict],
        *,
        seed: int,
        again: bool = False,
        bridges: list[Bridge] | None = None,
    ) -> None:
        """Answer `question` from `evidence` with `messages` (`again`: a regenerate, which
        samples where a first answer would decode greedily). A two-step question is read
        through `bridges` (the loop's, read and searched for; None: read here, without
        searching), `messages` being the last step's prompt."""
        if self.settings.answer != "read":
            await self._write(calls, question, evidence, messages, seed)
            return
        if bridges is None:
            bridges = await self.follow(calls, question, evidence)
        await self._read(calls, question, evidence, messages, seed, again, bridges)

    def asked(self, question: str, bridges: list[Bridge]) -> str:
        """What is left to ask once the bridges are read ("Where was Ansel Brandt born?")."""
        if not bridges or through(question):  # a comparison asks of both sides' bridges
            return question
        return bridges[-1].hop.then(bridges[-1].name)

    async def follow(self, calls: Calls, question: str, evidence: list[dict], search=None):
        """The bridges of a two-step question, read in order (hops.py), each from the
        evidence; with `search` (async, a bridge -> the evidence after searching for it),
        the evidence grows with each (then: (bridges, evidence)). Stops at the first step
        that reads no name, only a name the question says, or a name read from a passage
        that does not name what the question describes. A comparison in time through what
        each side leads to (compare.py `through`) reads one bridge for each side instead,
        each asked of its side ("Who is the director of A?"), then searched for with what
        the comparison asks of it ("When was Ansel Brandt born?")."""
        bridges: list[Bridge] = []
        if relation := through(question):
            for side in alternatives(question):
                inner = f"Who is the {relation} of {side}?"
                hop = Hop(side, inner, asked_of_lead(question))
                bridge = await self._bridge(calls, hop, question, evidence)
                if bridge is None:
                    break
                bridges.append(bridge)
                if search is not None:
                    evidence = await search(bridge)
        asked = question
        for _ in range(0 if bridges else MAX_HOPS):
            hop = find_hop(asked)
            if hop is None:
                break
            bridge = await self._bridge(calls, hop, question, evidence)
            if bridge is None:
                break
            bridges.append(bridge)
            if search is not None:
                evidence = await search(bridges[-1])
            asked = hop.then(bridge.name)
        if search is None:
            return bridges
        return hops.cited(bridges, evidence), evidence  # numbered in the evidence searched

    async def _bridge(self, calls: Calls, hop: Hop, question: str, evidence: list[dict]):
        """The name `hop` describes, read from the evidence (None: no name, only one the
        question says, or one read from a passage that does not name what it describes)."""
        form = answer_form(hop.inner, evidence, asking="name")
        sampling = Sampling(temperature=0.0, max_tokens=SHORT_TOKENS, seed=0, stop=["\n"])
        completion, _ = await self._generate(
            calls, "hop", reader_messages(hop.inner, evidence), sampling, form=form, quiet=True
        )
        name = form.finish(completion.text)
        number = cited_passage(name, hop.inner, evidence) if name else None
        if (
            check(name, form, number, evidence)
            or names_the_question(name, question)
            or not hop.read_from(evidence[number - 1])  # a name from another passage
        ):
            return None
        return Bridge(hop, name, number)

    # -- read: the short answer, held to the evidence ----------------------------------------

    async def _read(self, calls, question, evidence, messages, seed, again, bridges) -> None:
        """The short answer: greedy first (sampled for a regenerate), then once more sampled;
        read through bridges, the question left once they are read."""
        asked = self.asked(question, bridges)
        named = tuple(b.name for b in bridges)  # an answer that only repeats one is no answer
        form = answer_form(asked, evidence, avoid=named)
        rejected: list[dict] = []
        for attempt in range(2):
            warm = again or attempt > 0
            sampling = Sampling(
                temperature=READ_TEMPERATURE if warm else 0.0,
                max_tokens=SHORT_TOKENS,
                seed=seed + attempt,
                stop=["\n"],  # one line: the answer, nothing after it
            )
            completion, _ = await self._generate(calls, "read", messages, sampling, form=form)
            read = read_answer(completion.text, asked, evidence, named)
            if not read.problems and READ_SAMPLES > 1 and not warm:
                read = await self._vote(calls, read, asked, evidence, messages, sampling, form)
            proposed = propose(
                form,
                completion.text,
                asked,
                reading(asked, evidence),
                first_tokens=completion.first_tokens,
                token_logprobs=completion.token_logprobs,
            )
            if form.whole_dates:  # a year read is shown as the whole date around it
                for candidate in proposed:
                    if number := cited_passage(candidate.text, asked, evidence):
                        candidate.shows = whole_date_of(candidate.text, asked, evidence[number - 1])
            compared = None
            if form.kind in ("choice", "polar") and not again:
                compared = compare(asked, evidence, {b.hop.described: b.name for b in bridges})
            read, picked = self._pick(read, proposed, asked, evidence, named, again, compared)
            if picked.get("picked_by") == "comparison":
                read = compared.shown(evidence, bridges)
            else:
                read = hops.shown_with(read, bridges, asked, evidence)
            last = attempt == 1 or calls.deadline().expired
            if not read.problems or last:
                checked = verify(read.text, evidence)
                if read.problems:  # both attempts failed: the not-found line over quotes
                    rejected.append({"text": completion.text, "problems": read.problems})
                    calls.emit(AnswerRejected(completion.text, read.problems, retrying=False))
                kind = "reader" if read.short else "extractive"
                checked.verification.update(
                    kind=kind, form=form.kind, rejected=rejected, problems=[]
                )
                checked.verification.update(picked)
                if bridges and read.short:
                    checked.verification["hops"] = [
                        {"question": b.hop.inner, "answer": b.name, "cited": b.cited}
                        for b in bridges
                    ]
                self._done(calls, checked, read.short, evidence, messages, sampling, completion)
                return
            rejected.append(
                {"text": completion.text, "problems": read.problems, "sampling": sampling.as_dict()}
            )
            calls.emit(AnswerRejected(completion.text, read.problems, retrying=True))

    def _pick(self, read, proposed: list[Candidate], question, evidence, named, again, compared):
        """The short answer among the reader's candidates: the one a comparison decides
        (`compared`, compare.py), else the one the reward model picks (the model's
        own reading when none is active, or for a regenerate, which shows a new reading);
        and what the verification keeps of the choice: the candidates with their features,
        which one is shown, by what, its confidence and whether it is shown as not sure."""
        if not proposed:
            return read, {"candidates": []}
        own = proposed[0] if proposed[0].features.get("greedy") else None
        shown = own if read.short else None
        decided = next((c for c in proposed if compared and c.text == compared.picked), None)
        if decided is not None:
            shown = decided  # shown as Compared.shown shows it, whatever the model read
        if self.picker is not None:
            best, _ = self.picker.pick(proposed)  # every candidate keeps its score
            if decided is None and not again and best is not own:
                chosen = read_answer(best.text, question, evidence, named)
                if not chosen.problems:
                    read, shown = chosen, best
        picked: dict[str, Any] = {"candidates": [c.as_dict() for c in proposed]}
        if shown is None:
            return read, picked
        picked["shown"] = proposed.index(shown)
        picked["picked_by"] = (
            "comparison" if decided is not None else "reader" if shown is own else "reward model"
        )
        if decided is not None:
            picked["compared"] = compared.as_dict()
        if self.picker is not None:
            confidence = probability(shown.score)
            picked["confidence"] = round(confidence, 4)
            picked["not_sure"] = confidence < self.picker.threshold
        return read, picked

    async def _vote(self, calls, greedy, question, evidence, messages, sampling, form):
        """The short answer most of READ_SAMPLES readings agree on (the greedy one and samples
        at READ_TEMPERATURE; the prompt's cache makes each a few tokens' work); ties go to
        the greedy reading."""
        reads = [greedy]
        for index in range(1, READ_SAMPLES):
            warm = replace(sampling, temperature=READ_TEMPERATURE, seed=sampling.seed + 101 * index)
            completion, _ = await self._generate(
                calls, "read", messages, warm, form=form, quiet=True
            )
            reads.append(read_answer(completion.text, question, evidence))
        votes = Counter(" ".join(r.short.lower().split()) for r in reads if not r.problems)
        best = max(votes.values())
        for read in reads:  # the first of the most agreed, the greedy one first
            if not read.problems and votes[" ".join(read.short.lower().split())] == best:
                return read
        return greedy

    # -- write: the whole answer, free ------------------------------------------------------

    async def _write(self, calls, question, evidence, messages, seed) -> None:
        rejected: list[dict] = []
        for attempt in range(2):
            sampling = self._sampling(seed, attempt)
            completion, looped = await self._generate(
                calls, "write", messages, sampling, guard=True
            )
            checked, found = judge(completion.text, evidence)
            if looped and "it repeats itself" not in found:
                found.insert(0, "it repeats itself")
            timed_out = calls.deadline().expired
            if not found:
                if timed_out:  # kept, and said: the answer stopped at the run's time limit
                    checked.verification["stopped"] = "time limit"
                checked.verification.update(kind="model", rejected=rejected, problems=[])
                self._done(calls, checked, None, evidence, messages, sampling, completion)
                return
            rejected.append(
                {"text": checked.text, "problems": found, "sampling": sampling.as_dict()}
            )
            last = attempt == 1 or timed_out
            calls.emit(AnswerRejected(checked.text, found, retrying=not last))
            if last:
                break
        checked = verify(extractive_answer(question, evidence), evidence)
        checked.verification.update(kind="extractive", rejected=rejected, problems=[])
        self._done(calls, checked, None, evidence, messages, sampling, completion)

    def _sampling(self, seed: int, attempt: int) -> Sampling:
        """The free writer's sampling; a second attempt samples more widely, repeats less."""
        settings = self.settings
        return Sampling(
            temperature=settings.temperature if not attempt else max(0.7, settings.temperature),
            max_tokens=settings.answer_tokens,
            seed=seed + attempt,
            repeat_penalty=settings.repeat_penalty + 0.15 * attempt,
        )

    # -- both --------------------------------------------------------------------------------

    async def _generate(
        self, calls: Calls, purpose: str, messages, sampling, *, form=None, guard=False, quiet=False
    ) -> tuple[Completion, bool]:
        """One streamed model call: (its completion, whether it was stopped for looping).
        With `guard`, the stream stops the moment the text loops (RepetitionGuard)."""
        watch = RepetitionGuard()
        pieces: list[str] = []

        def on_token(piece: str) -> None:
            pieces.append(piece)
            watch.feed(piece)
            if not quiet:  # a vote's extra readings are not streamed as the answer
                calls.stream(piece)

        stop = calls.deadline(also=(lambda: watch.tripped) if guard else None)
        options: dict[str, Any] = {"on_token": on_token, "cancel": stop}
        if form is not None:
            options["form"] = form
        try:
            completion = await calls.call(
                purpose, lambda: self.llm.chat(messages, sampling, **options)
            )
        except asyncio.CancelledError:
            completion = None
        if completion is None or calls.cancelled():
            calls.emit(AnswerCancelled("".join(pieces)))
            raise asyncio.CancelledError
        return completion, watch.tripped

    def _done(self, calls, checked: Verified, short, evidence, messages, sampling, completion):
        checked.verification["answer"] = self.settings.answer  # read or write: which prompt
        sources = [
            {"number": n, "title": item.get("title") or item["uri"], "uri": item["uri"]}
            for n, item in enumerate(evidence, start=1)
        ]
        calls.emit(
            AnswerDone(
                text=checked.text,
                short_answer=short,
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
            )
        )


def writer_messages(question: str, evidence: list[dict], history_text: str = "") -> list[dict]:
    """The exact messages the writer model gets (stored with the answer for training): the
    instructions, a worked example (a question and its answer, for small models that follow
    an example better than a rule; an empty write_example prompt leaves it out), and the
    question with its numbered evidence; a question that asks yes or no is told so
    (write_polar), as small models otherwise answer it with a name and never say yes or no."""
    messages = [{"role": "system", "content": render("write_system")}]
    example = template("write_example").strip()
    if example:
        asked, _, answered = example.partition("\n---\n")
        messages += [
            {"role": "user", "content": asked.strip()},
            {"role": "assistant", "content": answered.strip()},
        ]
    messages.append(
        {
            "role": "user",
            "content": render(
                "write_user",
                question=question,
                evidence=evidence_block(evidence),
                history=history_text,
                form=render("write_polar") + "\n" if is_polar(question) else "",
            ),
        }
    )
    return messages


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
