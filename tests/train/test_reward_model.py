"""The reward model learned from feedback: what each kind of feedback labels, the fit against
hand-made data (and a naive reference), the threshold, and `sleuth train --algo reward` over a
real store, through the registry: activate, roll back."""

from __future__ import annotations

import math
import random

import pytest

from sleuth.agent.models.registry import ModelRegistry
from sleuth.agent.research.picker import PRIOR, PRIOR_BIAS, RewardModel
from sleuth.store import Dirs
from sleuth.store.rows import Comparison, ReaderChoice
from sleuth.store.settings import load_settings
from sleuth.train import reward_model as rm
from sleuth.train.reward_run import cross_check, describe, train_reward
from tests.helpers import ask


def candidate(text, **features):
    return {"text": text, "features": {"greedy": 0.0, **features}}


CANDIDATES = [
    candidate("Vardholm", greedy=1.0, overlap=0.2),
    candidate("Tarn", overlap=0.9),
    candidate("March 1931", overlap=0.1),
]


def test_each_kind_of_feedback_labels_what_it_says():
    thumb = rm.examples_of(CANDIDATES, 0, group=1, right=False)
    assert [(e.features["overlap"], e.label) for e in thumb] == [(0.2, 0.0)]
    corrected = rm.examples_of(CANDIDATES, 0, group=1, right=False, correction="the Tarn.")
    assert [e.label for e in corrected] == [0.0, 1.0, 0.0]  # articles, case, punctuation aside
    assert rm.examples_of(CANDIDATES, None, group=1, right=False) == []  # nothing was shown
    choices = [
        ReaderChoice(1, 10, CANDIDATES, shown=0, thumb=1),
        ReaderChoice(2, 10, CANDIDATES, shown=1, stars=3),  # middling: says nothing
        ReaderChoice(3, 11, CANDIDATES, shown=2),
    ]
    found = rm.examples(choices, [Comparison(1, winner_id=3, loser_id=2, tie=0, created_at="")])
    assert [(e.features["overlap"], e.label) for e in found] == [(0.2, 1.0), (0.1, 1.0), (0.9, 0.0)]


def test_with_no_feedback_the_fit_is_the_plain_readers_preference():
    model = rm.fit([])
    assert model.weights == PRIOR and model.bias == PRIOR_BIAS and not model.ranks
    assert CANDIDATES[rm.picked(model, CANDIDATES)]["text"] == "Vardholm"
    thumbs = rm.fit([rm.Example({"overlap": 0.9}, 1.0, 0), rm.Example({"overlap": 0.1}, 0.0, 1)])
    assert thumbs.weights["overlap"] > 0 and not thumbs.ranks  # sure of its own reading, or not
    assert CANDIDATES[rm.picked(thumbs, CANDIDATES)]["text"] == "Vardholm"
    corrected = rm.fit(rm.examples_of(CANDIDATES, 0, group=1, right=False, correction="Tarn"))
    assert corrected.ranks


def test_the_fit_learns_a_feature_that_predicts_right_answers_more_with_more_feedback():
    rng = random.Random(0)

    def feedback(n):  # the model's own reading is right only where the overlap is high
        out = []
        for group in range(n):
            for greedy in (1.0, 0.0):
                overlap = rng.random()
                right = float(overlap > 0.6)
                features = {"greedy": greedy, "overlap": overlap}
                out.append(rm.Example(features, right, group, ranked=True))  # as corrected
        return out

    few, many = rm.fit(feedback(5)), rm.fit(feedback(300))
    assert 0 < few.weights["overlap"] < many.weights["overlap"]
    assert many.weights["greedy"] < PRIOR["greedy"]  # its own reading is no better here
    assert CANDIDATES[rm.picked(many, CANDIDATES)]["text"] == "Tarn"
    weaker = rm.fit(feedback(300), strength=100.0)
    assert weaker.weights["overlap"] < many.weights["overlap"]


def test_the_fit_matches_a_naive_gradient_descent():
    examples = [
        rm.Example({"overlap": 1.0}, 1.0, 0),
        rm.Example({"overlap": 0.0}, 0.0, 1),
        rm.Example({"overlap": 1.0}, 0.0, 2),
        rm.Example({"overlap": 0.5}, 1.0, 3),
    ]
    model = rm.fit(examples, strength=1.0)
    # the same objective by plain gradient descent over (bias, w_greedy, w_overlap)
    bias, greedy, overlap = PRIOR_BIAS, PRIOR["greedy"], 0.0
    for _ in range(20000):
        gb = bias - PRIOR_BIAS
        gg = greedy - PRIOR["greedy"]
        go = overlap
        for e in examples:
            x = e.features["overlap"]
            p = 1 / (1 + math.exp(-(bias + overlap * x)))
            gb += p - e.label
            go += (p - e.label) * x
        bias, greedy, overlap = bias - 0.05 * gb, greedy - 0.05 * gg, overlap - 0.05 * go
    assert model.bias == pytest.approx(bias, abs=1e-4)
    assert model.weights["overlap"] == pytest.approx(overlap, abs=1e-4)


def test_the_threshold_leaves_the_unsure_share_of_the_rated_questions_below_it():
    model = RewardModel(weights={"overlap": 4.0}, bias=-2.0)
    questions = [[candidate("x", overlap=v / 10)] for v in range(10)]
    cut = rm.threshold(model, questions, unsure=0.3)
    below = sum(rm.confidence(model, q) < cut for q in questions)
    assert below == 3
    assert rm.threshold(model, [], unsure=0.3) == 0.0


def _rated_store(store, n=12):
    """Answers whose reader kept candidates; the model's own reading right half the time,
    the high-overlap candidate always right; rated with thumbs and corrections."""
    for number in range(n):
        own_right = number % 2 == 0
        cands = [
            candidate("Vardholm" if own_right else "Kestrel", greedy=1.0, overlap=0.1),
            candidate("Tarn" if not own_right else "Lowmoor", overlap=0.0 if own_right else 0.9),
        ]
        _, _, (answer_id,) = ask(
            store,
            f"Where was painter {number} born?",
            "Vardholm [1].",
            verification={"candidates": cands, "shown": 0, "answer": "read"},
        )
        if own_right:
            store.feedback.rate(answer_id, thumb=1)
        else:
            store.feedback.rate(answer_id, thumb=-1, correction="Tarn")


def test_cross_check_judges_each_fold_by_a_model_fitted_without_it(store):
    _rated_store(store)
    check = cross_check(store.feedback.reader_choices(), [])
    assert check["n"] == 12 and check["reader"] == 0.5
    assert check["picked"] >= check["reader"] and check["worse"] == 0


def test_train_registers_a_reward_model_that_activates_and_rolls_back(store, tmp_path, tiny_gguf):
    _rated_store(store)
    base = tiny_gguf
    settings = load_settings(None, env={}, flags={"model.path": str(base)})
    dirs = Dirs(data=tmp_path / "data", config=tmp_path / "config", cache=tmp_path / "cache")

    class Log:
        lines: list[str] = []

        def info(self, text):
            self.lines.append(text)

    result = train_reward(store, settings, dirs, Log())
    row = store.registry.model(result.model_id)
    assert row.kind == "reward" and not row.active and row.reward_path == result.path
    model = RewardModel.load(result.path)
    assert model.trained_on == {"questions": 12, "ratings": 12, "corrections": 6, "comparisons": 0}
    assert 0 < model.threshold < 1
    assert "fitted on 12 rated questions" in describe(result)
    registry = ModelRegistry(store)
    registry.activate(row.id, base)
    fp = row.base_fingerprint
    assert registry.active_reward(fp).id == row.id
    assert registry.active(fp) is None  # the adapter side is untouched
    second = train_reward(store, settings, dirs, Log())
    assert store.registry.model(second.model_id).parent_id == row.id
    registry.activate(second.model_id, base)
    assert registry.rollback(base, "reward").id == row.id  # back to the one it refined
    assert registry.rollback(base, "reward").kind == "model"  # then none: the plain reader
    assert registry.active_reward(fp) is None
    assert registry.rollback(base, "reward") is None


def test_grpo_rewards_a_sampled_short_answer_by_the_reward_models_confidence_in_it():
    from sleuth.train.datasets import Prompt
    from sleuth.train.steps.grpo import judged

    said = "Lena Voss was born in Vardholm. She studied in Tarn."
    evidence = [{"title": "Lena Voss", "text": said}]
    messages = [{"role": "user", "content": "Question: Where was Lena Voss born?\n\nEvidence: ..."}]
    prompt = Prompt(messages, evidence, reads=True, candidates=CANDIDATES)
    model = RewardModel(weights={"overlap": 2.0}, bias=0.0)
    assert judged(model, prompt, "Tarn") == pytest.approx(1 / (1 + math.exp(-1.8)))
    assert judged(model, prompt, "Vardholm") == pytest.approx(1 / (1 + math.exp(-0.4)))
    assert judged(model, prompt, "Lena Voss") is None  # not a candidate: the head judges it
    assert judged(None, prompt, "Tarn") is None
