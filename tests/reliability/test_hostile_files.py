"""Hostile files are one failed file, never a crash: a crafted PDF that sends pypdf into deep
recursion or past its limits fails alone, is said in one line, and the files after it are
indexed, by `sleuth index` and by `sleuth ask --library` alike."""

from __future__ import annotations

import os

from sleuth.store import Store
from tests.reliability import faults
from tests.reliability.conftest import run


def hostile_folder(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a-first.md").write_text("# First\n\nThe Saône meets the Rhône at Lyon.")
    (folder / "b-nested.pdf").write_bytes(faults.nested_arrays_pdf())  # 50,000 arrays deep
    (folder / "c-tree.pdf").write_bytes(faults.deep_page_tree_pdf())  # 3,000 levels of pages
    (folder / "d-last.md").write_text("# Last\n\nPlancus founded Lugdunum in 43 BC.")
    return folder


def test_a_crafted_pdf_fails_alone_and_indexing_goes_on(sleuth_home, tmp_path):
    folder = hostile_folder(tmp_path)
    env = {**os.environ, "SLEUTH_HOME": str(sleuth_home)}
    done = run("index", str(folder), env=env, timeout=120)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert "indexed 2, unchanged 0, failed 2" in done.stderr
    assert f"failed: {folder / 'b-nested.pdf'}: the PDF nests its objects too deeply" in (
        done.stderr
    )
    assert f"failed: {folder / 'c-tree.pdf'}: corrupt PDF (LimitReachedError)" in done.stderr
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    try:
        statuses = {d.path: d.status for d in store.library.documents()}
        assert statuses[str(folder / "d-last.md")] == "indexed"  # the file after them
        assert store.library.search_chunks(["Plancus"])
    finally:
        store.close()


def test_ask_over_a_folder_with_a_crafted_pdf_still_answers_from_the_rest(sleuth_home, tmp_path):
    folder = hostile_folder(tmp_path)
    env = {**os.environ, "SLEUTH_HOME": str(sleuth_home), "SLEUTH_SEARCH_BACKEND": "none"}
    done = run(
        "ask",
        "--no-web",
        "--library",
        str(folder),
        "--budget",
        "rounds=1",
        "Who founded Lugdunum?",
        env=env,
        timeout=300,
    )
    assert "Traceback" not in done.stderr and done.returncode == 0, done.stderr
    assert "failed 2" in done.stderr and "Plancus" in done.stdout
