"""The chat format: the exact prompt text a model is given for a list of messages, and the
text that ends an assistant's turn. Shared by llama.cpp inference and the trainer, so both see
one format: the GGUF's own template, or for template-less base models the turn format they
were built for (Gemma's), or ChatML."""

from __future__ import annotations

from importlib import resources

Message = dict[str, str]


def bundled_template(name: str) -> str:
    """The text of a bundled chat template (assets/templates/NAME)."""
    return resources.files("sleuth.assets").joinpath("templates", name).read_text("utf-8")


class ChatFormat:
    """Renders messages to the exact prompt text a model is given, and an answer to the text
    that ends its turn."""

    def __init__(self, template: str, bos: str, eos: str, end_of_turn: list[str]):
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.prompt_formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self.full_formatter = Jinja2ChatFormatter(
            template=template, eos_token=eos, bos_token=bos, add_generation_prompt=False
        )
        self.eos = eos
        self.stops = [s for s in [eos, *end_of_turn] if s]

    def prompt(self, messages: list[Message]) -> str:
        """The prompt, ending where the assistant starts writing."""
        return self.prompt_formatter(messages=messages).prompt

    def completion(self, messages: list[Message], answer: str) -> str:
        """What follows the prompt when the assistant says `answer`, end-of-turn included."""
        prompt = self.prompt(messages)
        full = self.full_formatter(
            messages=[*messages, {"role": "assistant", "content": answer}]
        ).prompt
        if full.startswith(prompt):
            return full[len(prompt) :]
        return answer + self.stops[-1] if self.stops else answer


def chat_formatter(template: str | None, architecture: str, *, bos: str, eos: str) -> ChatFormat:
    """The GGUF's own template, or for template-less base models the turn format they were
    built for (Gemma's), or ChatML."""
    end_of_turn: list[str] = []
    if not template:
        if architecture.startswith("gemma"):
            template, end_of_turn = bundled_template("gemma.jinja"), ["<end_of_turn>"]
        else:
            template, end_of_turn = bundled_template("chatml.jinja"), ["<|im_end|>"]
    return ChatFormat(template, bos, eos, end_of_turn)
