"""GRPO over whole runs: one step on the tiny model moves the planner's tokens toward the run
that earned more, and the writer's with them."""

from __future__ import annotations

import pytest
import torch

from sleuth.agent.models.chat_format import chat_formatter
from sleuth.train import losses
from sleuth.train.checks import FAIL_CAP
from sleuth.train.config import TrainConfig
from sleuth.train.datasets import Prompt, encode
from sleuth.train.distributed import World
from sleuth.train.model_io import load_base
from sleuth.train.rollouts import Call, RunSample
from sleuth.train.steps import GRPO_OVER_RUNS, Context, grpo_runs, run_reward, trainable
from sleuth.train.steps import context as step_context
from tests.train.test_trajectories import EVIDENCE, GOOD, QUESTION, plan_of

PLAN = [{"role": "user", "content": f"Plan the searches.\nQuestion: {QUESTION}"}]
WRITE = [{"role": "user", "content": f"Evidence: ...\nQuestion: {QUESTION}"}]
GOOD_PLAN, BAD_PLAN = plan_of("Maren Holt"), plan_of("Nell Farrow Salt and Ember")
BAD = "I do not know who that was."


class TwoRuns:
    """A rollout sampler that returns the same two runs: one that found the answer and wrote
    it with a citation, one that did not."""

    name = "scripted"

    def __init__(self):
        self.asked: list[str] = []

    def set_adapter(self, adapter):
        self.adapter = adapter

    def sample_runs(self, question, n, *, max_new_tokens, temperature, seed):
        self.asked.append(question)
        good = RunSample(
            [Call("plan", PLAN, GOOD_PLAN, True), Call("write", WRITE, GOOD, True)], GOOD, EVIDENCE
        )
        bad = RunSample(
            [Call("plan", PLAN, BAD_PLAN, True), Call("write", WRITE, BAD, True)], BAD, EVIDENCE
        )
        return [good, bad]


def test_a_step_over_runs_moves_planner_tokens_toward_the_better_run(
    tiny_gguf, train_cache, tmp_path
):
    config = TrainConfig(
        algo="grpo", group_size=2, lr=1e-2, beta=0.0, max_length=512, grpo_over="runs"
    )
    torch.manual_seed(0)
    base = load_base(tiny_gguf, train_cache, device="cpu", dtype=torch.float32)
    tokenizer = base.tokenizer
    chat = chat_formatter(
        base.chat_template, base.architecture, bos=tokenizer.bos_token or "", eos=""
    )
    model = trainable(base.model, config)
    context = Context(model, tokenizer, chat, config, World.from_env("cpu"), "cpu", None)
    sampler = TwoRuns()
    context.attach_rollouts(sampler, None, None, tmp_path / "rollouts")
    context.step = 1

    def logprob(messages, text) -> float:
        batch = context.batch([encode(tokenizer, chat, messages, text)])
        with torch.no_grad():
            return float(losses.sequence_logprob(context.logprobs(batch), batch["mask"])[0])

    good, bad = TwoRuns().sample_runs(QUESTION, 2, max_new_tokens=0, temperature=1, seed=0)
    assert run_reward(good, None) == 1.0 and run_reward(bad, None) < 0.5
    before = {text: logprob(PLAN, text) for text in (GOOD_PLAN, BAD_PLAN)}
    before_write = {text: logprob(WRITE, text) for text in (GOOD, BAD)}

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss, metrics = GRPO_OVER_RUNS(context, [Prompt(WRITE, EVIDENCE)])
    loss.backward()
    optimizer.step()

    assert sampler.asked == [QUESTION] and sampler.adapter.exists()  # sampled with the policy
    assert metrics["calls_per_run"] == 2 and metrics["answered"] == 1.0
    assert metrics["collapsed_groups"] == 0
    after = {text: logprob(PLAN, text) for text in (GOOD_PLAN, BAD_PLAN)}
    assert after[GOOD_PLAN] > before[GOOD_PLAN] and after[BAD_PLAN] < before[BAD_PLAN]
    after_write = {text: logprob(WRITE, text) for text in (GOOD, BAD)}
    assert after_write[GOOD] > before_write[GOOD] and after_write[BAD] < before_write[BAD]


class SameRuns(TwoRuns):
    """Two runs that both failed: a group with nothing to tell apart."""

    def sample_runs(self, question, n, *, max_new_tokens, temperature, seed):
        self.asked.append(question)
        bad = RunSample(
            [Call("plan", PLAN, BAD_PLAN, True), Call("write", WRITE, BAD, True)], BAD, EVIDENCE
        )
        return [bad, bad]


@pytest.fixture
def context_with(tiny_gguf, train_cache, tmp_path):
    """A GRPO-over-runs context on the tiny model, sampling from the given scripted sampler."""
    config = TrainConfig(algo="grpo", group_size=2, beta=0.1, max_length=512, grpo_over="runs")
    torch.manual_seed(0)
    base = load_base(tiny_gguf, train_cache, device="cpu", dtype=torch.float32)
    chat = chat_formatter(
        base.chat_template, base.architecture, bos=base.tokenizer.bos_token or "", eos=""
    )
    model = trainable(base.model, config)

    def make(sampler):
        context = Context(model, base.tokenizer, chat, config, World.from_env("cpu"), "cpu", None)
        context.attach_rollouts(sampler, None, None, tmp_path / "rollouts")
        context.step = 1
        return context

    return make


def test_calls_run_in_length_groups_change_the_cost_not_the_loss(context_with, monkeypatch):
    context = context_with(TwoRuns())
    lora = [p for p in context.model.parameters() if p.requires_grad]

    def loss_and_grads():
        for p in lora:
            p.grad = None
        loss, _ = GRPO_OVER_RUNS(context, [Prompt(WRITE, EVIDENCE)])
        loss.backward()
        return float(loss.detach()), [p.grad.clone() for p in lora]

    grouped, grouped_grads = loss_and_grads()

    def grouping(rule):  # the reference pass and the policy pass group the same way
        for module in (step_context, grpo_runs):
            monkeypatch.setattr(module, "length_groups", rule)

    grouping(lambda lengths: [list(range(len(lengths)))])
    padded, padded_grads = loss_and_grads()
    grouping(lambda lengths: [[i] for i in range(len(lengths))])
    alone, alone_grads = loss_and_grads()
    assert grouped == pytest.approx(padded, abs=1e-6) and alone == pytest.approx(padded, abs=1e-6)
    for a, b, c in zip(grouped_grads, padded_grads, alone_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6) and torch.allclose(c, b, atol=1e-6)
    assert any(g.abs().sum() > 0 for g in padded_grads)


def test_a_group_with_nothing_to_tell_apart_costs_its_rollouts_only(context_with, monkeypatch):
    context = context_with(SameRuns())
    passes = []
    real = Context.logprobs
    monkeypatch.setattr(
        Context, "logprobs", lambda self, *a, **k: passes.append(1) or real(self, *a, **k)
    )
    loss, metrics = GRPO_OVER_RUNS(context, [Prompt(WRITE, EVIDENCE)])
    assert metrics["collapsed_groups"] == 1 and metrics["loss"] == 0.0
    assert passes == []  # no preference head, nothing to learn: not one forward pass
    loss.backward()
    assert all(not p.grad.any() for p in context.model.parameters() if p.requires_grad)


def test_a_run_without_an_answer_of_the_model_earns_nothing():
    assert run_reward(RunSample([Call("plan", PLAN, GOOD_PLAN, True)], None, []), "x") == 0.0
    right = RunSample([], GOOD, EVIDENCE)
    wrong = RunSample([], "Maren Holt was an American actress [2].", EVIDENCE)
    # Both pass the hard checks; the reference's F1 orders them after the gate.
    assert run_reward(right, "Surveyor General") > run_reward(wrong, "Surveyor General") >= 0.5


def test_a_rejected_answer_earns_less_than_any_accepted_one_but_not_all_alike():
    write = [Call("write", WRITE, "x", True)]
    cited = RunSample(write, None, EVIDENCE, attempt="Lyon is made of cheese [2].")
    markers = RunSample(write, None, EVIDENCE, attempt="[7] [7] [7] [7] [7] [7]")
    nothing = RunSample([Call("plan", PLAN, GOOD_PLAN, True)], None, EVIDENCE)
    assert 0 < run_reward(markers, None) < run_reward(cited, None) <= FAIL_CAP < 0.5
    assert run_reward(nothing, None) == 0.0


def test_a_sampled_run_keeps_to_the_step_budget_and_never_above_the_users_limits():
    from sleuth.store.settings import ResearchSettings
    from sleuth.train.trainer import rollout_limits

    research = ResearchSettings(max_rounds=3, evidence_tokens=1500, evidence_k=6)
    limits = rollout_limits(TrainConfig(algo="grpo"), research)
    assert (limits.max_rounds, limits.evidence_tokens) == (1, 800)
    assert limits.evidence_k == 6  # what the config does not cut stays the user's
    wide = TrainConfig(algo="grpo", rollout_rounds=5, rollout_evidence_tokens=4000)
    limits = rollout_limits(wide, research)
    assert (limits.max_rounds, limits.evidence_tokens) == (3, 1500)


def test_the_preference_heads_features_are_computed_once_for_each_distinct_answer(
    context_with,
):
    context = context_with(TwoRuns())  # its sampler is never asked: features use the base
    passes = []
    forward = context.logprobs
    context.logprobs = lambda *a, **k: passes.append(1) or forward(*a, **k)
    first = context.features(WRITE, GOOD)
    again = context.features([dict(m) for m in WRITE], GOOD)  # equal messages, another list
    other = context.features(WRITE, BAD)
    assert len(passes) == 2
    assert torch.equal(first, again) and not torch.equal(first, other)
