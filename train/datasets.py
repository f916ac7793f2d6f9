"""Training data from the store, and the stable held-out split.

- SFT: answers rated well (thumb up, 4+ stars), and the user's corrections.
- DPO: preference pairs (corrections over what they correct, comparisons, rating gaps between
  answers to the same turn), and with `calls = "all"` planner and reflection calls paired by
  credit (train/feedback.py, train/credit.py).
- KTO: answers labelled desirable or undesirable, and with `calls = "all"` planner and
  reflection calls labelled by credit.
- GRPO: stored writer prompts (the exact messages) with the evidence they numbered.

Each example is kept once however often it was given (`distinct`).

A prompt is held out for evaluation when the hash of its question falls in the held-out
fraction: the split depends only on the text, so it is the same in every run and every
database, and all answers to one question stay on the same side.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

import torch

from sleuth.agent.models.chat_format import ChatFormat
from sleuth.store import Store
from sleuth.store.rows import RatedAnswer

from .checks import answer_span
from .feedback import (
    Example,
    call_examples,
    call_pairs,
    corrections,
    label,
    label_of,
    preference_pairs,
    question_of,
)
from .trajectories import known_references, question_key, trajectories

HELDOUT_FRACTION = 0.2

# Least data worth a run, per algorithm (counted on the training side of the split).
MINIMUM = {"sft": 4, "dpo": 4, "kto": 4, "grpo": 4}
WHAT = {
    "sft": "answers rated well (thumbs up or 4+ stars) or corrected",
    "dpo": "preference pairs (comparisons, or differently rated answers to one question)",
    "kto": "rated answers (thumbs, or clear star ratings), both good and bad",
    "grpo": "stored questions with evidence (any answered question counts)",
}


def is_heldout(messages: list[dict[str, str]], fraction: float = HELDOUT_FRACTION) -> bool:
    """Whether this prompt belongs to the evaluation split (stable across runs)."""
    digest = hashlib.sha256(" ".join(question_of(messages).lower().split()).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


@dataclass
class Prompt:
    """A stored writer prompt with the evidence it numbered (GRPO and evaluation use these)."""

    messages: list[dict[str, str]]
    evidence: list[dict]
    answer_ids: list[int] = field(default_factory=list)
    reference: str | None = None  # the right answer, where one is known (evaluation)
    reads: bool = False  # the reader's prompt: completions are short answers, read as the app
    # reads them (agent/research/reader.py `read_answer`) before they are judged
    candidates: list[dict] = field(default_factory=list)  # the reader's, with their features


@dataclass
class Feedback:
    """Everything the trainer can learn from, split into train and held-out."""

    sft: list[RatedAnswer]
    dpo: list[tuple[RatedAnswer, RatedAnswer] | tuple[Example, Example]]
    kto: list[RatedAnswer | Example]
    prompts: list[Prompt]
    heldout_prompts: list[Prompt]
    heldout_counts: dict[str, int]

    def count(self, algo: str) -> int:
        return {
            "sft": len(self.sft),
            "dpo": len(self.dpo),
            "kto": len(self.kto),
            "grpo": len(self.prompts),
        }[algo]

    def shortfall(self, algo: str) -> str | None:
        """Why there is too little data for `algo`, or None when there is enough."""
        have, need = self.count(algo), MINIMUM[algo]
        if algo == "kto" and have >= need:
            labels = {label_of(a) for a in self.kto}
            if labels != {True, False}:
                return "KTO needs both good and bad answers; all rated answers have one label."
        if have >= need:
            return None
        held = self.heldout_counts.get(algo, 0)
        return (
            f"{algo.upper()} needs at least {need} {WHAT[algo]} for training; there are {have}"
            f" (plus {held} held out for evaluation). Rate more answers, then try again."
        )


def load_feedback(
    store: Store,
    fraction: float = HELDOUT_FRACTION,
    calls: str = "all",
    references: dict[str, str] | None = None,
) -> Feedback:
    """Read all feedback and split it. `calls`: "all" adds planner and reflection calls from
    whole runs to DPO and KTO; "writer" keeps to answers. Prompts get the reference answer of
    their question: a correction of an answer to it, or `references` (a question file), else an
    answer to the same prompt the user rated well (they said it is right)."""
    answers = store.feedback.rated_answers()
    pairs, _ = preference_pairs(store)
    fixes = corrections(answers)
    sft_all = [a for a in answers if label(a) is True] + fixes
    kto_all: list = [a for a in answers if label(a) is not None] + fixes
    pair_all: list = [(p.chosen, p.rejected) for p in pairs]
    if calls == "all":
        runs = list(trajectories(store, references))
        pair_all += call_pairs(runs)
        kto_all += call_examples(runs)
    sft_all = distinct(sft_all, lambda a: (a.messages, a.text))
    kto_all = distinct(kto_all, lambda a: (a.messages, a.text, label_of(a)))
    pair_all = distinct(pair_all, lambda p: (p[0].messages, p[0].text, p[1].text))
    known = known_references(store, references)
    candidates = {c.answer_id: c.candidates for c in store.feedback.reader_choices()}
    prompts: dict[str, Prompt] = {}
    for answer in answers:
        key = json.dumps(answer.messages, sort_keys=True)
        if key not in prompts:
            evidence = [asdict(row) for row in store.runs.evidence(answer.run_id)]
            reference = known.get(question_key(question_of(answer.messages)))
            prompts[key] = Prompt(
                answer.messages,
                evidence,
                reference=reference,
                reads=bool(answer.reads),
                candidates=candidates.get(answer.answer_id, []),
            )
        prompts[key].answer_ids.append(answer.answer_id)
        if prompts[key].reference is None and label(answer) is True:
            # no correction: the first answer to it the user rated well is right
            prompts[key].reference = answer_span(answer.text) or answer.text

    def split(items, messages_of):
        train = [i for i in items if not is_heldout(messages_of(i), fraction)]
        return train, len(items) - len(train)

    sft, sft_held = split(sft_all, lambda a: a.messages)
    kto, kto_held = split(kto_all, lambda a: a.messages)
    dpo, dpo_held = split(pair_all, lambda p: p[0].messages)
    all_prompts = list(prompts.values())
    train_prompts = [p for p in all_prompts if not is_heldout(p.messages, fraction)]
    heldout = [p for p in all_prompts if is_heldout(p.messages, fraction)]
    return Feedback(
        sft=sft,
        dpo=dpo,
        kto=kto,
        prompts=train_prompts,
        heldout_prompts=heldout,
        heldout_counts={"sft": sft_held, "kto": kto_held, "dpo": dpo_held, "grpo": len(heldout)},
    )


def distinct(items: list, key) -> list:
    """The first of each example that says the same thing (`key`: its prompt and completion):
    a question asked again, or regenerated, whose answers were rated or corrected alike, is
    one lesson, not one per rating."""
    seen: set[str] = set()
    out = []
    for item in items:
        mark = json.dumps(key(item), sort_keys=True)
        if mark not in seen:
            seen.add(mark)
            out.append(item)
    return out


# -- tokenisation ------------------------------------------------------------------------------


@dataclass
class Encoded:
    """prompt + completion token ids, with a mask over the completion."""

    ids: list[int]
    completion_start: int

    def __len__(self) -> int:
        return len(self.ids)


def encode(tokenizer, chat: ChatFormat, messages: list[dict[str, str]], answer: str) -> Encoded:
    """Token ids of the prompt as llama.cpp renders it, then the answer and its end of turn."""
    prompt_ids = tokenizer(chat.prompt(messages), add_special_tokens=False).input_ids
    completion_ids = tokenizer(
        chat.completion(messages, answer), add_special_tokens=False
    ).input_ids
    return Encoded(prompt_ids + completion_ids, len(prompt_ids))


def length_groups(lengths: list[int], slack: float = 1.25) -> list[list[int]]:
    """Indices into `lengths`, grouped so that padding each group to its longest member costs
    at most `slack` times its real tokens: a run's short plan calls are not padded to its
    writer's evidence-long prompt. Shortest first; every index in exactly one group."""
    groups: list[list[int]] = []
    for index in sorted(range(len(lengths)), key=lambda i: lengths[i]):
        group = groups[-1] if groups else None
        if group is not None:
            real = sum(lengths[i] for i in group) + lengths[index]
            if lengths[index] * (len(group) + 1) <= slack * real:
                group.append(index)
                continue
        groups.append([index])
    return groups


def collate(items: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch. `targets[t]` is the token that position t predicts; `mask` marks
    the positions whose target is a completion token."""
    width = max(len(item) for item in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(items), width), dtype=torch.long)
    mask = torch.zeros((len(items), width - 1), dtype=torch.float32)
    for row, item in enumerate(items):
        ids[row, : len(item)] = torch.tensor(item.ids)
        attention[row, : len(item)] = 1
        mask[row, item.completion_start - 1 : len(item) - 1] = 1.0
    return {"input_ids": ids, "attention_mask": attention, "targets": ids[:, 1:], "mask": mask}
