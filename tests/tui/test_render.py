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
