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

from sleuth.agent.chat_format import ChatFormat
from sleuth.agent.llama import LlamaCppLLM
from sleuth.agent.llm import Sampling


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
        self, messages, n: int, *, max_new_tokens: int, temperature: float, seed: int
    ) -> list[Sample]:
        out = []
        for index in range(n):
            completion = self.llm.chat(
                messages,
                Sampling(
                    temperature=temperature, top_p=1.0, max_tokens=max_new_tokens, seed=seed + index
                ),
            )
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
        self, messages, n: int, *, max_new_tokens: int, temperature: float, seed: int
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
