"""Evaluation of a new adapter against its parent on held-out prompts.

Both answer every held-out prompt with greedy decoding in llama.cpp (the way the app runs
them). Each answer is scored apart on: correctness against the prompt's reference answer
where one exists (the user's correction of an answer to that question, or a question file),
citation validity, support of cited sentences, and the gated reward used in training. The new
adapter is offered as better only when the paired bootstrap's 95% interval says so
(train/verdict.py).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path

from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.agent.models.llm import Sampling
from sleuth.agent.research.reader import SHORT_TOKENS, Read, answer_form, read_answer

from .checks import CHECKS, correctness, gated_reward, hard_checks
from .datasets import Prompt, question_of
from .verdict import METRICS, Evaluation, Scores, decide, paired_bootstrap

Scorer = Callable[[list[dict], str], float | None]  # (messages, answer) -> preference in 0..1


def answer_all(
    base_path: Path,
    adapter: Path | None,
    prompts: list[Prompt],
    *,
    n_ctx: int,
    max_new_tokens: int,
    seed: int,
) -> list[str]:
    llm = LlamaCppLLM(base_path, adapter_path=adapter, n_ctx=n_ctx)
    try:
        return [answer_one(llm, p, max_new_tokens=max_new_tokens, seed=seed) for p in prompts]
    finally:
        llm.close()


def answer_one(llm, prompt: Prompt, *, max_new_tokens: int, seed: int) -> str:
    """The answer the app would show for a stored prompt, decoded greedily: for the reader's
    prompt, the short answer held to its form and read as the app reads it."""
    if not prompt.reads:
        sampling = Sampling(temperature=0.0, max_tokens=max_new_tokens, seed=seed)
        return llm.chat(prompt.messages, sampling).text
    return read_one(llm, prompt, seed=seed).text


def read_one(llm, prompt: Prompt, *, seed: int) -> Read:
    """The reader's answer to a stored reader prompt, greedy and held to its form, read as
    the app reads it (the short answer, and the text shown for it)."""
    question = question_of(prompt.messages)
    form = answer_form(question, prompt.evidence)
    sampling = Sampling(temperature=0.0, max_tokens=SHORT_TOKENS, seed=seed, stop=["\n"])
    raw = llm.chat(prompt.messages, sampling, form=form).text
    return read_answer(raw, question, prompt.evidence)


def score(prompts: list[Prompt], answers: list[str], preference: Scorer | None) -> dict:
    """Mean reward, hard-check pass rates, per-prompt rewards, and each metric's per-prompt
    (numerator, denominator) for the paired bootstrap."""
    rewards, passed, per_check = [], 0, {name: 0 for name in CHECKS}
    parts: dict[str, list[tuple[float, float]]] = {name: [] for name in METRICS}
    for prompt, answer in zip(prompts, answers, strict=True):
        checked = hard_checks(answer, prompt.evidence)
        right = correctness(answer, prompt.reference) if prompt.reference else None
        pref = preference(prompt.messages, answer) if preference is not None else None
        reward = gated_reward(checked, pref, right.f1 if right else None)
        rewards.append(reward)
        passed += checked.passed
        for name, ok in checked.checks.items():
            per_check[name] += ok
        parts["reward"].append((reward, 1))
        parts["pass_rate"].append((float(checked.passed), 1))
        parts["citation_validity"].append(checked.validity)
        parts["support"].append(checked.support)
        for name in ("f1", "contains", "em"):
            parts[name].append((getattr(right, name), 1) if right else (0.0, 0))
    n = max(len(prompts), 1)
    return {
        "reward": statistics.mean(rewards) if rewards else 0.0,
        "pass_rate": passed / n,
        "check_rates": {name: count / n for name, count in per_check.items()},
        "rewards": rewards,
        "parts": parts,
    }


def compare(
    base_path: Path,
    parent_adapter: Path | None,
    new_adapter: Path,
    prompts: list[Prompt],
    *,
    preference: Scorer | None,
    n_ctx: int,
    max_new_tokens: int,
    seed: int = 0,
) -> Evaluation:
    """Parent vs new on the same prompts; the result is stored with the training run."""
    if not prompts:
        return Evaluation(
            n=0,
            improved=False,
            note="no held-out prompts yet: ask more questions to measure improvement",
        )
    kwargs = dict(n_ctx=n_ctx, max_new_tokens=max_new_tokens, seed=seed)
    parent_answers = answer_all(base_path, parent_adapter, prompts, **kwargs)
    new_answers = answer_all(base_path, new_adapter, prompts, **kwargs)
    parent = score(prompts, parent_answers, preference)
    new = score(prompts, new_answers, preference)
    wins = sum(
        1.0 if b > a else 0.5 if b == a else 0.0
        for a, b in zip(parent["rewards"], new["rewards"], strict=True)
    )
    win_rate = wins / len(prompts)
    differences = {
        name: diff
        for name in METRICS
        if (diff := paired_bootstrap(parent["parts"][name], new["parts"][name], seed=seed))
    }
    decided_by, improved = decide(differences)
    return Evaluation(
        n=len(prompts),
        parent=Scores(parent["reward"], parent["pass_rate"], parent["check_rates"]),
        new=Scores(new["reward"], new["pass_rate"], new["check_rates"]),
        win_rate=win_rate,
        improved=improved,
        differences=differences,
        decided_by=decided_by,
        references=sum(bool(p.reference) for p in prompts),
        examples=[
            {"question": _question(p), "parent": a[:400], "new": b[:400]}
            for p, a, b in list(zip(prompts, parent_answers, new_answers, strict=True))[:3]
        ],
    )


def _question(prompt: Prompt) -> str:
    from .datasets import question_of

    return question_of(prompt.messages)
