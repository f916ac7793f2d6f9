"""The reader's candidates and the reward model that picks among them: what is proposed, what
each candidate's features say, and the loop with a scripted model and a picker over a real
library (a picked answer, a not-sure one, and what the answer's record keeps)."""

from __future__ import annotations

import json

import pytest

from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.models.llm import Completion
from sleuth.agent.research.assistant import Assistant
from sleuth.agent.research.candidates import FEATURES, K, propose
from sleuth.agent.research.events import AnswerDone
from sleuth.agent.research.passages import reading
from sleuth.agent.research.picker import RewardModel, RewardModelError
from sleuth.agent.research.reader import answer_form
from sleuth.agent.tools.library import index_paths
from sleuth.store.settings import load_settings
from tests.fakes import ScriptedLLM
from tests.helpers import write_notes

EVIDENCE = [
    {
        "title": "Lena Voss",
        "text": "Lena Voss is a painter from the Bay of Kestrel. She was born in Vardholm in "
        "1931 and studied in Tarn.",
        "uri": "file:///notes/voss.md",
    },
    {
        "title": "Vardholm",
        "text": "Vardholm is a port town. Ansel Brandt founded its museum in 1950.",
        "uri": "file:///notes/vardholm.md",
    },
]


def _propose(question, reading_text, first_tokens=(), avoid=()):
    form = answer_form(question, EVIDENCE, avoid=avoid)
    return propose(
        form,
        reading_text,
        question,
        reading(question, EVIDENCE),
        first_tokens=list(first_tokens),
        token_logprobs=[-0.1, -0.3],
    )


def test_the_models_reading_comes_first_then_the_other_answers_of_the_kind_read():
    proposed = _propose("Where was Lena Voss born?", "Vardholm")
    texts = [c.text for c in proposed]
    assert texts[0] == "Vardholm" and proposed[0].features["greedy"] == 1.0
    assert "Tarn" in texts and "Bay of Kestrel" in texts  # other places it read
    assert "1931" not in texts  # a year is not a place
    assert all(c.features["greedy"] == 0.0 for c in proposed[1:])
    assert len(proposed) <= K
    assert all(set(c.features) == set(FEATURES) for c in proposed)


def test_features_say_what_the_model_believed_and_where_each_candidate_stands():
    believed = [(" Tarn", -0.2), (" Vard", -1.5), (" Bay", -4.0)]
    proposed = {c.text: c for c in _propose("Where was Lena Voss born?", "Vardholm", believed)}
    tarn, vardholm = proposed["Tarn"].features, proposed["Vardholm"].features
    assert tarn["lp_first"] == pytest.approx(-0.02) and tarn["lp_gap"] == 0.0
    assert vardholm["lp_first"] == pytest.approx(-0.15)
    assert vardholm["lp_gap"] == pytest.approx(-0.13)
    assert tarn["margin"] == pytest.approx(0.13)  # best first token over the second, / 10
    assert proposed["Lena Voss"].features["question_words"] == 1.0  # the question's own name
    assert vardholm["question_words"] == 0.0
    assert vardholm["title"] == 1.0 and tarn["title"] == 0.0
    assert vardholm["rank"] == 0.0  # the first passage read holds it
    assert vardholm["lp_path"] == pytest.approx(-0.04)  # mean of -0.1 and -0.3, / 5


def test_a_name_a_step_read_before_is_no_candidate_and_polar_questions_offer_yes_and_no():
    proposed = _propose("Where was Ansel Brandt born?", "Vardholm", avoid=("Lena Voss",))
    assert "Vardholm" in [c.text for c in proposed]
    assert "Lena Voss" not in [c.text for c in proposed]  # the answer of the step before
    polar = _propose("Was Lena Voss born in Vardholm?", "yes")
    assert [c.text for c in polar] == ["yes", "no"]
    assert polar[0].features["polar"] == 1.0


def test_the_reward_model_picks_by_its_weights_and_says_how_sure():
    proposed = _propose("Where was Lena Voss born?", "Vardholm")
    plain = RewardModel()  # the plain reader's preference: its own reading
    best, confidence = plain.pick(proposed)
    assert best.text == "Vardholm" and confidence == pytest.approx(0.5)  # bias -1, own +1
    titles_wrong = RewardModel(weights={"greedy": 1.0, "title": -3.0}, bias=0.0)
    best, confidence = titles_wrong.pick(proposed)
    assert best.text != "Vardholm" and confidence == pytest.approx(0.5)
    # a model that learned no ranking (no correction) keeps the model's own reading
    best, confidence = RewardModel(weights=titles_wrong.weights, bias=0.0, ranks=False).pick(
        proposed
    )
    assert best.text == "Vardholm" and confidence == pytest.approx(1 / (1 + 2.718281828**2))


def test_a_reward_model_file_round_trips_and_a_bad_one_is_one_clear_sentence(tmp_path):
    model = RewardModel(weights={"greedy": 1.5, "overlap": 2.0}, bias=-0.5, threshold=0.4)
    model.save(tmp_path / "reward.json")
    assert RewardModel.load(tmp_path / "reward.json") == model
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "old.json").write_text(json.dumps({"format": 99}))
    for name, says in (("missing.json", "is missing"), ("bad.json", "cannot be read")):
        with pytest.raises(RewardModelError, match=says):
            RewardModel.load(tmp_path / name)
    with pytest.raises(RewardModelError, match="another format"):
        RewardModel.load(tmp_path / "old.json")


LIBRARY = {
    "Lena Voss": "Lena Voss is a painter. She was born in Vardholm in 1931 and studied in Tarn.",
    "Tarn": "Tarn is a river town with an old academy of painting.",
}
QUESTION = "Where was Lena Voss born?"


@pytest.fixture
def ask_with(store, tmp_path):
    index_paths(store, [write_notes(tmp_path / "notes", LIBRARY)])

    async def ask(outputs, picker=None, question=QUESTION):
        settings = load_settings(
            None, env={}, flags={"search.backend": "none", "research.planner": "none"}
        )
        info = ModelInfo(name="scripted", backend="test")
        if picker is not None:  # as the catalog hands over the active reward model: its file
            picker.save(tmp_path / "reward.json")
            info.reward_path = str(tmp_path / "reward.json")
        assistant = Assistant(store, ScriptedLLM(outputs), info, settings)
        events = [e async for e in assistant.ask(question, use_web=False, seed=1)]
        await assistant.aclose()
        return next(e for e in events if isinstance(e, AnswerDone))

    return ask


def _reading(text, first_tokens):
    return Completion(text, 10, 2, 0.01, "stop", first_tokens=first_tokens, token_logprobs=[-2.0])


async def test_without_a_reward_model_the_reading_is_shown_and_its_candidates_kept(ask_with, store):
    done = await ask_with([_reading("Tarn", [(" Tarn", -0.5), (" Vard", -0.9)])])
    assert done.short_answer == "Tarn"
    v = done.verification
    assert v["picked_by"] == "reader" and "confidence" not in v
    assert v["candidates"][v["shown"]]["text"] == "Tarn"
    # the answer's record keeps them, for the reward model to learn from once it is rated
    choice = store.feedback.reader_choices()[-1]
    assert choice.candidates[choice.shown]["text"] == "Tarn"


async def test_a_reward_model_picks_another_candidate_and_says_when_it_is_not_sure(ask_with):
    # it learned that the model's first tokens say more than its own reading
    picker = RewardModel(weights={"lp_first": 20.0, "greedy": 0.0}, bias=3.0, threshold=0.2)
    done = await ask_with([_reading("Tarn", [(" Vard", -0.1), (" Tarn", -1.2)])], picker)
    assert done.short_answer == "Vardholm" and done.text.startswith("Vardholm [")
    v = done.verification
    assert v["picked_by"] == "reward model" and v["not_sure"] is False
    assert v["confidence"] == pytest.approx(1 / (1 + 2.718281828 ** -(3.0 - 0.2)), abs=1e-3)
    unsure = RewardModel(weights={"lp_first": 20.0}, bias=3.0, threshold=0.99)
    done = await ask_with([_reading("Tarn", [(" Vard", -0.1), (" Tarn", -1.2)])], unsure)
    assert done.short_answer == "Vardholm" and done.verification["not_sure"] is True


def test_a_reading_not_of_the_form_is_no_candidate_and_marks_none_as_the_models_own():
    proposed = _propose("Where was Lena Voss born?", "a painter")  # not a place
    assert proposed and all(c.features["greedy"] == 0.0 for c in proposed)
