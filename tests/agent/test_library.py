"""Indexing the user's files: formats, incremental updates, pruning, failures, BM25 search."""

from __future__ import annotations

import os
import threading

import pytest

from sleuth.agent.text import search_terms
from sleuth.agent.tools.library import LibraryError, index_paths
from tests.webserver import make_pdf


@pytest.fixture
def library(tmp_path):
    root = tmp_path / "notes"
    (root / "sub").mkdir(parents=True)
    (root / "lyon.md").write_text("# Lyon\n\nLyon was founded as Lugdunum by Plancus in 43 BC.\n")
    (root / "rivers.txt").write_text("The Saône joins the Rhône at the Confluence in Lyon.")
    (root / "guide.rst").write_text(
        "Eiffel guide\n============\n\nThe tower was completed in 1889.\n"
    )
    (root / "sub" / "page.html").write_text(
        "<html><head><title>Bridges</title></head><body><article><p>Lyon has more than twenty "
        "bridges across its two rivers, the Rhône and the Saône.</p></article></body></html>"
    )
    (root / "sub" / "report.pdf").write_bytes(make_pdf(["Tides are caused by the Moon."], "Tides"))
    (root / "image.png").write_bytes(b"\x89PNG" + bytes(200))  # not a supported type: ignored
    (root / ".hidden.md").write_text("secret")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD.md").write_text("ref")
    return root


def find(store, text: str):
    """The library's chunks for `text`, best first."""
    return store.library.search_chunks(search_terms(text), kind="file")


def test_every_supported_format_is_indexed_with_a_title(store, library):
    events = []
    report = index_paths(
        store, [library], on_progress=lambda d, t, r: events.append((d, t, r.status))
    )
    assert (report.indexed, report.failed, report.unchanged) == (5, 0, 0)
    assert [e[0] for e in events] == [1, 2, 3, 4, 5] and events[-1][1] == 5
    titles = {store.library.source(d.source_id).title for d in store.library.documents()}
    assert titles == {"Lyon", "rivers", "Eiffel guide", "Bridges", "Tides"}
    assert report.chunks >= 5 and report.bytes > 0


def test_search_ranks_the_relevant_file_first(store, library):
    index_paths(store, [library])
    hits = find(store, "When was the tower completed?")
    assert hits[0].uri.endswith("guide.rst")
    hits = find(store, "bridges rivers Lyon")
    assert hits[0].title == "Bridges"
    assert find(store, "Moon tides")[0].uri.endswith("report.pdf")


def test_second_run_skips_unchanged_files_and_picks_up_changes(store, library):
    index_paths(store, [library])
    again = index_paths(store, [library])
    assert (again.indexed, again.unchanged) == (0, 5)

    (library / "rivers.txt").write_text("The Saône is slower than the Rhône.")
    touched = library / "lyon.md"
    os.utime(touched, (touched.stat().st_atime, touched.stat().st_mtime + 10))  # same content
    (library / "sub" / "report.pdf").unlink()
    (library / "new.md").write_text("# New\n\nVolcanoes are mountains that erupt.")
    report = index_paths(store, [library])
    assert (report.indexed, report.unchanged, report.removed) == (2, 3, 1)
    assert find(store, "slower")[0].uri.endswith("rivers.txt")
    assert find(store, "Confluence") == []  # old text gone
    assert find(store, "Moon tides") == []  # deleted file pruned
    assert find(store, "volcanoes")[0].title == "New"


def test_corrupt_and_binary_files_are_recorded_as_failed_and_the_rest_indexed(store, library):
    (library / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    (library / "binary.txt").write_bytes(b"\x00\x01\x02" * 50)
    report = index_paths(store, [library])
    assert report.indexed == 5 and report.failed == 2
    failures = dict(report.failures)
    assert "corrupt PDF" in failures[str(library / "broken.pdf")]
    assert "binary" in failures[str(library / "binary.txt")]
    assert store.library.document(str(library / "broken.pdf")).status == "failed"
    summary = store.library.summary()[0]
    assert (summary.files, summary.indexed, summary.failed) == (7, 5, 2)


def test_a_file_that_becomes_corrupt_stops_being_searched(store, library):
    index_paths(store, [library])
    (library / "sub" / "report.pdf").write_bytes(b"%PDF-1.4 truncated")
    index_paths(store, [library])
    assert find(store, "Moon tides") == []


def test_single_files_and_bad_paths(store, library, tmp_path):
    report = index_paths(store, [library / "lyon.md"])
    assert report.indexed == 1
    with pytest.raises(LibraryError, match="does not exist"):
        index_paths(store, [tmp_path / "nowhere"])
    with pytest.raises(LibraryError, match="not a supported file"):
        index_paths(store, [library / "image.png"])


def test_cancel_stops_between_files_and_keeps_what_was_done(store, library):
    cancel = threading.Event()

    def stop_after_two(done, total, result):
        if done == 2:
            cancel.set()

    report = index_paths(store, [library], on_progress=stop_after_two, cancel=cancel)
    assert report.cancelled and report.indexed == 2
    finish = index_paths(store, [library])
    assert (finish.indexed, finish.unchanged) == (3, 2)


def test_removing_a_folder_forgets_its_files_but_not_the_files(store, library):
    index_paths(store, [library])
    assert store.library.remove_root(str(library.resolve())) == 5
    assert store.library.documents() == []
    assert find(store, "Lyon") == []
    assert (library / "lyon.md").exists()
