"""Sampling groups of answers for GRPO and evaluation.

llama.cpp is the fast path: the current adapter is exported to GGUF (cheap) and loaded over
the untouched base each iteration, then G answers are sampled with distinct seeds. The
transformers sampler is the fallback (no llama.cpp, or a model llama.cpp cannot run); both
return text, and log-probabilities are always recomputed in torch by the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from sleuth.agent.models.chat_format import ChatFormat
from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.agent.models.llm import OutputForm, Sampling


@dataclass
class Sample:
    text: str
    finished: bool  # the model ended its turn (not cut off by the token limit)


class LlamaRollouts:
    """Samples with llama.cpp over the base GGUF with the current adapter."""

    name = "llama.cpp"

    def __init__(self, base_path: Path, n_ctx: int):
        self.llm = LlamaCppLLM(base_path, n_ctx=n_ctx)

    def set_adapter(self, adapter: Path | None) -> None:
        self.llm.set_adapter(adapter)

    def sample(
        self,
        messages,
        n: int,
        *,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        form: OutputForm | None = None,
    ) -> list[Sample]:
        """`n` samples; with `form` (the reader's prompt), each held to it as the app holds
        its short answers."""
        out = []
        for index in range(n):
            sampling = Sampling(
                temperature=temperature,
                top_p=1.0,
                max_tokens=max_new_tokens,
                seed=seed + index,
                stop=["\n"] if form is not None else [],
            )
            completion = self.llm.chat(messages, sampling, form=form)
            out.append(Sample(completion.text, completion.finish_reason == "stop"))
        return out

    def close(self) -> None:
        self.llm.close()


class TransformersRollouts:
    """Samples with transformers `generate` from the model being trained (the fallback)."""

    name = "transformers"

    def __init__(self, model, tokenizer, chat: ChatFormat):
        self.model, self.tokenizer, self.chat = model, tokenizer, chat

    def set_adapter(self, adapter: Path | None) -> None:
        """The model in memory already carries the current adapter."""

    @torch.no_grad()
    def sample(
        self,
        messages,
        n: int,
        *,
        max_new_tokens: int,
        temperature: float,
        seed: int,
        form: OutputForm | None = None,  # not enforced here: the reward reads what comes back
    ) -> list[Sample]:
        ids = self.tokenizer(
            self.chat.prompt(messages), add_special_tokens=False, return_tensors="pt"
        )
        ids = ids.input_ids.to(self.model.device)
        stop_ids = [self.tokenizer.convert_tokens_to_ids(s) for s in self.chat.stops]
        stop_ids = [i for i in stop_ids if isinstance(i, int) and i >= 0]
        out = []
        was_training = self.model.training
        self.model.eval()
        for index in range(n):
            torch.manual_seed(seed + index)
            generated = self.model.generate(
                ids,
                do_sample=temperature > 0,
                temperature=max(temperature, 1e-5),
                top_p=1.0,
                max_new_tokens=max_new_tokens,
                eos_token_id=stop_ids or None,
                pad_token_id=self.tokenizer.pad_token_id or (stop_ids[0] if stop_ids else 0),
            )[0, ids.shape[1] :]
            finished = bool(len(generated)) and int(generated[-1]) in stop_ids
            text = self.tokenizer.decode(generated, skip_special_tokens=True)
            out.append(Sample(text.strip(), finished))
        self.model.train(was_training)
        return out

    def close(self) -> None:
        pass


# -- whole runs ---------------------------------------------------------------------------------


@dataclass
class Call:
    """One model call of a sampled run: its exact messages and what the model wrote."""

    purpose: str  # plan, reflect or write
    messages: list[dict[str, str]]
    text: str
    finished: bool


@dataclass
class RunSample:
    """One run of the whole agent: its calls in order, the answer (None when it found
    nothing, failed, or every answer was rejected) and the evidence the answer cites. When
    every answer was rejected (the user got quoted evidence), `attempt` is the model's last
    one, and its write is among the calls: what it wrote is what it is to learn from."""

    calls: list[Call]
    answer: str | None
    evidence: list[dict]
    attempt: str | None = None


class _Tempered:
    """The rollout model as the loop sees it: every call sampled at the rollout temperature
    with its own seed; the writer's answer also capped at the rollout's token budget."""

    def __init__(self, llm, temperature: float, seed: int, max_new_tokens: int):
        self.llm, self.temperature, self.seed, self.max_new_tokens = (
            llm,
            temperature,
            seed,
            max_new_tokens,
        )
        self.calls = 0

    def chat(self, messages, sampling: Sampling, **kwargs):
        from dataclasses import replace

        self.calls += 1
        changes = {"temperature": self.temperature, "seed": self.seed + 7919 * self.calls}
        if kwargs.get("schema") is None:
            changes["max_tokens"] = min(sampling.max_tokens, self.max_new_tokens)
        return self.llm.chat(messages, replace(sampling, **changes), **kwargs)

    def __getattr__(self, name):
        return getattr(self.llm, name)


class RunRollouts:
    """Samples whole research runs (plan, search the library, reflect, write) with llama.cpp
    and the current adapter, for GRPO over runs. Runs search the user's library only (no web:
    rollouts must not depend on pages that change) and are not recorded."""

    name = "llama.cpp"

    def __init__(self, base_path: Path, n_ctx: int, store, limits):
        from sleuth.agent.models.catalog import ModelInfo

        self.llm = LlamaCppLLM(base_path, n_ctx=n_ctx)
        self.store, self.limits = store, limits
        self.model = ModelInfo(name=base_path.name, backend="llama.cpp", base_path=str(base_path))

    def set_adapter(self, adapter: Path | None) -> None:
        self.llm.set_adapter(adapter)

    def sample_runs(
        self, question: str, n: int, *, max_new_tokens: int, temperature: float, seed: int
    ) -> list[RunSample]:
        import asyncio

        return [
            asyncio.run(self._run(question, max_new_tokens, temperature, seed + 104_729 * index))
            for index in range(n)
        ]

    async def _run(self, question: str, max_new_tokens: int, temperature: float, seed: int):
        from sleuth.agent.research.events import AnswerDone, AnswerRejected, EvidenceChosen, LLMCall
        from sleuth.agent.research.loop import LoopSettings, Researcher
        from sleuth.agent.tools.fetch import Fetcher
        from sleuth.store.settings import NetworkSettings

        llm = _Tempered(self.llm, temperature, seed, max_new_tokens)
        researcher = Researcher(
            self.store.library,
            llm,
            self.model,
            LoopSettings(limits=self.limits, temperature=temperature, local_only=True),
            search=None,
            fetcher=Fetcher(NetworkSettings(local_only=True)),
        )
        calls, writes, answer, evidence, rejected, attempt = [], [], None, [], 0, None
        try:
            async for event in researcher.ask(question, use_web=False, seed=seed):
                if isinstance(event, LLMCall) and event.purpose != "write" and event.messages:
                    calls.append(Call(event.purpose, event.messages, event.output, True))
                elif isinstance(event, LLMCall):  # cut off by the budget: no end of turn
                    writes.append((event.output, event.completion_tokens < max_new_tokens))
                elif isinstance(event, AnswerRejected):
                    rejected += 1
                elif isinstance(event, EvidenceChosen):
                    evidence = event.items
                elif isinstance(event, AnswerDone) and writes:
                    # The write the loop kept (after any it rejected), with its exact prompt;
                    # or, when it kept none, the last one it rejected.
                    calls.append(Call("write", event.messages, *writes[-1]))
                    if rejected < len(writes):
                        answer = event.text
                    else:
                        attempt = writes[-1][0]
        finally:
            await researcher.aclose()
        return RunSample(calls, answer, evidence, attempt)

    def close(self) -> None:
        self.llm.close()
