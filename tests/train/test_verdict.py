"""The verdict on a new adapter: paired bootstrap intervals of each metric's difference, and
"better" only when the interval says so."""

from __future__ import annotations

import pytest

from sleuth.train.verdict import (
    Difference,
    Evaluation,
    Scores,
    decide,
    details,
    paired_bootstrap,
    summary,
    verdict,
)


def means(values):
    return [(float(v), 1) for v in values]


def test_a_clear_gain_has_an_interval_above_zero_and_a_coin_flip_does_not():
    parent, new = means([0] * 20), means([1] * 15 + [0] * 5)
    gain = paired_bootstrap(parent, new, seed=1)
    assert gain.mean == pytest.approx(0.75) and gain.parent == 0 and gain.new == 0.75
    assert 0 < gain.ci95[0] <= 0.75 <= gain.ci95[1] <= 1
    noise = paired_bootstrap(means([1, 0] * 10), means([0, 1] * 10), seed=1)
    assert noise.mean == 0 and noise.ci95[0] < 0 < noise.ci95[1]
    assert paired_bootstrap(parent, new, seed=1) == gain  # seeded: the same every time


def test_ratios_are_sums_over_what_they_count():
    # Citation validity: valid citations over citations written, not a mean of per-prompt rates.
    parent = [(1, 4), (0, 0), (3, 4)]
    new = [(2, 2), (1, 1), (4, 4)]
    diff = paired_bootstrap(parent, new)
    assert diff.parent == pytest.approx(4 / 8) and diff.new == 1.0 and diff.n == 15
    assert paired_bootstrap([(0, 0)], [(1, 1)]) is None  # nothing to compare against


def d(mean, lo, hi):
    return Difference(20, 0.3, 0.3 + mean, mean, (lo, hi))


def test_correctness_decides_where_there_are_references_and_validity_may_not_fall():
    assert decide({"reward": d(0.2, 0.1, 0.3)}) == ("reward", True)
    assert decide({"reward": d(0.2, 0.1, 0.3), "f1": d(0.1, -0.05, 0.2)}) == ("f1", False)
    assert decide({"f1": d(0.1, 0.02, 0.2), "citation_validity": d(-0.02, -0.1, 0.05)}) == (
        "f1",
        True,
    )
    assert decide({"f1": d(0.1, 0.02, 0.2), "citation_validity": d(-0.2, -0.3, -0.1)}) == (
        "f1",
        False,
    )
    assert decide({}) == ("reward", False)


def test_an_evaluation_is_stored_and_read_back_and_reads_as_text():
    evaluation = Evaluation(
        n=12,
        improved=True,
        parent=Scores(0.4, 0.5),
        new=Scores(0.6, 0.7),
        win_rate=0.7,
        differences={"f1": d(0.2, 0.05, 0.35), "reward": d(0.2, -0.01, 0.4)},
        decided_by="f1",
        references=10,
    )
    again = Evaluation.from_dict(evaluation.as_dict())
    assert again == evaluation
    text = "\n".join(details(again))
    assert "12 (10 with a reference answer)" in text
    assert "f1                parent 0.300 -> new 0.500  diff +0.200 [+0.050, +0.350]" in text
    assert summary(again) == "f1 0.300→0.500 [+0.05, +0.35], better"
    assert "95% interval of the difference is above zero" in verdict(again, 7)
    # An evaluation stored before intervals existed still reads.
    old = Evaluation.from_dict(
        {
            "n": 2,
            "improved": False,
            "parent": {"reward": 0.1, "pass_rate": 0},
            "new": {"reward": 0.2, "pass_rate": 0},
        }
    )
    assert summary(old) == "reward 0.100→0.200, win 0.00"
