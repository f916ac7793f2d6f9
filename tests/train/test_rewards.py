"""Hard checks on hand-written answers, gated aggregation, and the preference head."""

from __future__ import annotations

import torch

from sleuth.train.checks import (
    FAIL_CAP,
    cites,
    gated_reward,
    hard_checks,
    length_ok,
    well_formed,
)
from sleuth.train.rewards import train_preference_head

EVIDENCE = [
    {"uri": "a", "title": "Lyon", "text": "Lyon was founded by Lucius Munatius Plancus in 43 BC."},
    {
        "uri": "b",
        "title": "Rhône",
        "text": "The Rhône flows through Lyon to the Mediterranean Sea.",
    },
]
GOOD = "Lyon was founded by Lucius Munatius Plancus in 43 BC [1]. The Rhône flows through Lyon [2]."


def test_a_good_answer_passes_every_check():
    checked = hard_checks(GOOD, EVIDENCE)
    assert checked.checks == {"cites": True, "grounded": True, "format": True, "length": True}
    assert checked.passed and checked.citations == 2


def test_citations_must_exist_and_point_at_real_evidence():
    assert not cites("Lyon was founded in 43 BC.", 2)
    assert not cites("Lyon was founded in 43 BC [3].", 2)
    assert not cites("Lyon was founded in 43 BC [1][5].", 2)
    assert cites("Lyon was founded in 43 BC [1, 2].", 2)
    assert (
        hard_checks("Lyon was founded in 43 BC by Plancus [4].", EVIDENCE).checks["cites"] is False
    )


def test_cited_claims_must_be_grounded_in_what_they_cite():
    wrong = "Lyon hosted the Olympic Games in 1992 with great success [1]."
    assert hard_checks(wrong, EVIDENCE).checks["grounded"] is False
    swapped = "Lyon was founded by Lucius Munatius Plancus in 43 BC [2]."
    assert hard_checks(swapped, EVIDENCE).checks["grounded"] is False


def test_format_rejects_recited_evidence_prompt_echo_and_loops():
    recited = "[1] Lyon\nLyon was founded by Plancus.\n\n[2] Rhône\nThe Rhône flows."
    assert not well_formed(recited)
    assert not well_formed("Question: Who founded Lyon?\nEvidence: none")
    assert not well_formed("Lyon is old. Lyon is old. Lyon is old. Lyon is old.")
    assert not well_formed("   ")
    assert well_formed(GOOD)


def test_length_bounds():
    assert not length_ok("Plancus [1].")
    assert length_ok(GOOD)
    assert not length_ok("word " * 300)


def test_failing_a_hard_check_caps_the_reward_whatever_the_preference():
    passing = hard_checks(GOOD, EVIDENCE)
    failing = hard_checks("Lyon was founded by Plancus in 43 BC.", EVIDENCE)  # no citation
    assert gated_reward(passing, preference=0.0) == 0.5
    assert gated_reward(passing, preference=1.0) == 1.0
    assert gated_reward(passing) == 1.0
    assert gated_reward(failing, preference=1.0) <= FAIL_CAP < 0.5
    assert gated_reward(failing, preference=1.0) == gated_reward(failing, preference=0.0)
    assert gated_reward(hard_checks("", EVIDENCE)) == 0.0


def test_preference_head_learns_the_users_comparisons():
    torch.manual_seed(0)
    direction = torch.randn(16)

    def answer(good: bool) -> torch.Tensor:
        return torch.randn(16) + (1.5 if good else -1.5) * direction

    pairs = [(answer(True), answer(False)) for _ in range(20)]
    labeled = [(answer(i % 2 == 0), i % 2 == 0) for i in range(20)]
    head = train_preference_head(pairs, labeled, 16, steps=200)
    good = head.preference(torch.stack([answer(True) for _ in range(50)]))
    bad = head.preference(torch.stack([answer(False) for _ in range(50)]))
    assert good.mean() > 0.8 and bad.mean() < 0.2
    assert ((good.unsqueeze(1) > bad.unsqueeze(0)).float().mean()) > 0.95


def test_correctness_reads_the_answer_first_sentence():
    from sleuth.train.checks import answer_span, correctness

    answer = "Surveyor General [2]. Maren Holt held the post from 1976 [2]."
    assert answer_span(answer) == "Surveyor General."
    assert correctness(answer, "Surveyor General").as_dict() == {
        "em": 1.0,
        "f1": 1.0,
        "contains": 1.0,
    }
    assert answer_span("Yes, both were American [1][2].") == "yes"
    assert correctness("No [1].", "no").em == 1.0
    late = correctness("She was an actress. She became Surveyor General [2].", "Surveyor General")
    assert (late.em, late.f1, late.contains) == (0.0, 0.0, 1.0)
    quoted = "Quoted from the sources (the model's answers did not hold up): Surveyor General [2]."
    assert correctness(quoted, "Surveyor General").as_dict() == {
        "em": 0.0,
        "f1": 0.0,
        "contains": 0.0,
    }


def test_reference_f1_enters_only_after_the_gate():
    from sleuth.train.checks import Checked

    passing = Checked({c: True for c in ("cites", "grounded", "format", "length")}, {}, 1)
    failing = Checked({**passing.checks, "grounded": False}, {}, 1)
    assert gated_reward(passing, f1=0.0) == 0.5 and gated_reward(passing, f1=1.0) == 1.0
    assert gated_reward(passing, preference=1.0, f1=0.0) == 0.75
    assert gated_reward(failing, f1=1.0) == gated_reward(failing) == FAIL_CAP * 3 / 4
