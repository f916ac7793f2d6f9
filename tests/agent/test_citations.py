"""Citation markers: one definition, read the same way by verification, rewards and the app."""

from __future__ import annotations

from sleuth.agent.citations import cited_numbers, repair, strip_citations
from sleuth.agent.text import sentences
from sleuth.tui.widgets.answer_view import linked


def test_markers_lists_and_years():
    text = "Paris [1]. The Seine [2, 3]. Founded in [1889]. See [ 4 ]."
    assert cited_numbers(text) == [1, 2, 3]  # a year in brackets and a padded shape are not
    assert strip_citations("A [1] b [2,3].") == "A   b  ."


def test_odd_shapes_are_repaired():
    assert repair("A [Source 1] b [doc: 2] c 【3】.") == ("A [1] b [2] c [3].", 3)


def test_sentences_keep_their_citations_and_links_cover_every_number():
    assert sentences("Paris is big [1, 2]. The Seine flows [3].") == [
        "Paris is big [1, 2].",
        "The Seine flows [3].",
    ]
    assert linked("x [1, 2]") == "x [\\[1\\]](source:1)[\\[2\\]](source:2)"
