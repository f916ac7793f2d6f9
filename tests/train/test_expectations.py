"""What feedback is likely to buy: the shipped learning curve read against a user's ratings,
said before training by `sleuth train` (and the Train screen)."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from sleuth.store import Dirs
from sleuth.store.settings import load_settings
from sleuth.train import cli, expectations
from sleuth.train.errors import TrainingError
from sleuth.train.expectations import expectation, load_curve, parse_curve, questions_rated
from tests.helpers import ask

ROOT = Path(__file__).resolve().parents[2]

# A made-up curve of the shipped file's shape.
CURVE = parse_curve(
    {
        "model": "qwen2.5-0.5b",
        "gguf": "qwen2.5-coder-0.5b-instruct-q4_k_m",
        "pipeline": "SFT",
        "n_questions": 50,
        "commit": "abc1234",
        "points": [
            {"ratings": 10, "f1": {"mean": 0.01, "ci95": [-0.03, 0.05]}},
            {"ratings": 20, "f1": {"mean": 0.04, "ci95": [-0.01, 0.09]}},
            {"ratings": 40, "f1": {"mean": 0.07, "ci95": [0.02, 0.12]}},
            {"ratings": 80, "f1": {"mean": 0.11, "ci95": [0.05, 0.17]}},
        ],
    }
)


def test_it_says_the_points_around_the_users_ratings():
    said = expectation(23, "qwen2.5-0.5b", CURVE)
    assert said == (
        "In Sleuth's benchmark (qwen2.5-0.5b, SFT, 50 held-out questions), training on 20 "
        "rated questions changed held-out F1 by +0.04 (95% interval -0.01 to +0.09: no clear "
        "change); on 40 rated questions by +0.07 (95% interval +0.02 to +0.12: better). "
        "You have rated 23 questions."
    )


def test_below_the_first_point_and_above_the_last_it_says_the_nearest():
    assert "training on 10 rated questions" in expectation(3, "qwen2.5-0.5b", CURVE)
    assert "on 20" not in expectation(3, "qwen2.5-0.5b", CURVE)
    many = expectation(500, "qwen2.5-0.5b", CURVE)
    assert "training on 80 rated questions changed held-out F1 by +0.11" in many
    assert "You have rated 500 questions." in many
    assert "You have rated 1 question." in expectation(1, "qwen2.5-0.5b", CURVE)


def test_a_point_whose_interval_lies_below_zero_says_worse():
    worse = dict(CURVE, points=[{"ratings": 80, "f1": {"mean": -0.11, "ci95": [-0.22, -0.03]}}])
    assert "by -0.11 (95% interval -0.22 to -0.03: worse)" in expectation(90, "", worse)
    barely = dict(CURVE, points=[{"ratings": 80, "f1": {"mean": -0.08, "ci95": [-0.17, -0.004]}}])
    assert "(95% interval -0.17 to just below 0: worse)" in expectation(90, "", barely)


def test_another_model_is_told_the_curve_is_not_its_own():
    assert "Measured with qwen2.5-0.5b" in expectation(23, "smollm2", CURVE)
    gguf = "/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"  # the same model by its path
    assert "Measured with" not in expectation(23, gguf, CURVE)


def test_no_curve_says_nothing_and_a_broken_one_is_refused():
    assert expectation(23, "", None) is None
    with pytest.raises(ValueError):
        parse_curve({"model": "m", "pipeline": "SFT", "points": [{"ratings": 10}]})
    assert parse_curve({"model": "m", "pipeline": "SFT", "n_questions": 5, "points": []}) is None


def test_questions_rated_counts_turns_rated_compared_or_corrected(store):
    _, _, (a, b) = ask(store, "Capital?", "Paris [1].", "Lyon.")
    store.feedback.rate(a, thumb=1)
    store.feedback.rate(b, stars=2)  # the same question: still one
    _, _, (c, d) = ask(store, "River?", "Seine [1].", "Loire.")
    store.feedback.compare(c, d)
    _, _, (e,) = ask(store, "Mountain?", "Alps.")
    store.feedback.rate(e, correction="Mont Blanc.")
    ask(store, "Sea?", "North Sea.")  # never rated
    assert questions_rated(store) == 3


def test_the_shipped_curve_is_the_recorded_benchmark():
    """assets/learning_curve.json is bench/results/learning_curve.json's curve, as
    `bench/report.py --write` copies it: same commit, model and points."""
    shipped = load_curve()
    recorded = json.loads((ROOT / "bench" / "results" / "learning_curve.json").read_text())
    assert shipped is not None
    assert shipped["commit"] == recorded["commit"]
    assert shipped["n_questions"] == recorded["n_questions"]
    assert shipped["gguf"] == recorded["model"]
    shipped_pipeline = recorded["pipeline"]  # a curve of several pipelines ships its own
    assert [(p["ratings"], p["f1"]) for p in shipped["points"]] == [
        (b["ratings"], b["diff_vs_base"]["f1"])
        for b in recorded["budgets"]
        if b.get("pipeline", shipped_pipeline) == shipped_pipeline
    ]
    assert len(shipped["points"]) == 6


class Kept:
    """A logger that keeps what it is told."""

    def __init__(self):
        self.said = []

    def info(self, text):
        self.said.append(("info", text))

    def step(self, step, total, metrics):
        self.said.append(("step", step))


def test_the_preface_comes_before_the_first_thing_training_says_and_only_once():
    kept = Kept()
    logger = cli.Prefaced(kept, "In Sleuth's benchmark ...")
    assert kept.said == []  # nothing yet: a refusal before any work stays one sentence
    logger.info("loading the model…")
    logger.step(1, 2, {})
    logger.info("writing the adapter…")
    assert kept.said == [
        ("info", "In Sleuth's benchmark ..."),
        ("info", "loading the model…"),
        ("step", 1),
        ("info", "writing the adapter…"),
    ]


def test_sleuth_train_says_what_feedback_buys_when_it_trains_not_when_refused(
    store, tmp_path, monkeypatch
):
    monkeypatch.setattr(expectations, "load_curve", lambda: CURVE)
    _, _, (a,) = ask(store, "Capital?", "Paris [1].")
    store.feedback.rate(a, thumb=1)
    out = io.StringIO()
    json_logger = cli.JsonLogger
    monkeypatch.setattr(cli, "JsonLogger", lambda: json_logger(out))
    prefaced = []
    monkeypatch.setattr(cli, "Prefaced", lambda logger, text: prefaced.append(text) or logger)
    settings = load_settings(None, env={}, flags={"model.path": "qwen2.5-0.5b"})
    dirs = Dirs(tmp_path / "data", tmp_path / "config", tmp_path / "cache")
    args = cli.add_arguments(argparse.ArgumentParser()).parse_args(["--progress", "json"])
    with pytest.raises(TrainingError, match="SFT needs at least"):  # one rating is too few
        cli.run(settings, dirs, store, args)
    assert out.getvalue() == ""  # the refusal alone
    assert len(prefaced) == 1
    assert prefaced[0].startswith("In Sleuth's benchmark (qwen2.5-0.5b, SFT")
    assert prefaced[0].endswith("You have rated 1 question.")


def test_a_change_that_rounds_to_zero_reads_plus_zero():
    curve = parse_curve(
        {**CURVE, "points": [{"ratings": 10, "f1": {"mean": -0.0004, "ci95": [-0.05, 0.04]}}]}
    )
    assert "changed held-out F1 by +0.00 (95% interval -0.05 to +0.04: no clear change)" in (
        expectation(10, "qwen2.5-0.5b", curve)
    )
