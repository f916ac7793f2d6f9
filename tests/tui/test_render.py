"""Text for people: the Markdown report of a session, ratings in words."""

from __future__ import annotations

from sleuth.tui.render import session_markdown
from tests.helpers import ask


def test_markdown_report_has_questions_answers_ratings_and_sources(store):
    session_id, _, (a,) = ask(store, "Capital?", "Paris [1].")
    store.feedback.rate(a, thumb=1, stars=5)
    report = session_markdown(store, session_id)
    assert "## Capital?" in report
    assert "Paris [1]." in report
    assert "rated thumbs up, 5/5 stars" in report
    assert "1. [Paris](https://example.org/paris)" in report
    assert "2. [Rivers](/notes/rivers.md)" in report


def test_a_not_sure_answer_says_so_under_its_first_line_and_a_sure_one_does_not():
    from sleuth.agent.research.events import AnswerDone
    from sleuth.tui.cli.research import format_answer

    text = "Vardholm [1].\n\n> She was born in Vardholm in 1931. [1]"
    unsure = AnswerDone(text, [], {"not_sure": True, "confidence": 0.31}, answer_id=4)
    shown = format_answer(unsure).splitlines()
    assert shown[0] == "Vardholm [1]."
    assert shown[2].startswith("?? Not sure (31% confident)")
    assert "> She was born in Vardholm" in format_answer(unsure)
    sure = AnswerDone(text, [], {"not_sure": False, "confidence": 0.8}, answer_id=4)
    assert "Not sure" not in format_answer(sure)
