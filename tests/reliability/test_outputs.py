"""What Sleuth writes for the user stays where and what it should be: `export -o` never
replaces a link, a pipe or a device; a Markdown report carries no live HTML or script link;
a database, a lock and a line of output are what they say. Real processes, real files."""

from __future__ import annotations

import os
import stat
import subprocess
import threading

import pytest
from markdown_it import MarkdownIt

from sleuth.agent.errors import ModelError
from sleuth.agent.models.turns import ModelTurns
from sleuth.store import Store, app_dirs
from tests.helpers import add_run_with_answer, ask
from tests.tui.test_cli import SLEUTH, assert_one_line_error, sleuth


@pytest.fixture
def seeded():
    store = Store.open(app_dirs().database)
    session_id, _, answers = ask(store, "What is the capital of France?", "Paris [1].")
    store.close()
    return session_id, answers


# -- export -o ------------------------------------------------------------------------------


def test_export_follows_a_symlink_to_the_file_it_names(seeded, tmp_path):
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    done = sleuth("export", "--format", "runs", "-o", str(link))
    assert done.returncode == 0, done.stderr
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert '"question": "What is the capital of France?"' in target.read_text()


def test_export_writes_into_a_fifo_in_place(seeded, tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    done = sleuth("export", "--format", "runs", "-o", str(fifo))
    reader.join(timeout=30)
    assert done.returncode == 0, done.stderr
    assert stat.S_ISFIFO(fifo.lstat().st_mode)  # still a pipe, not a file in its place
    assert b"capital of France" in got[0]


def test_export_dash_is_stdout(seeded, tmp_path):
    done = subprocess.run(
        [SLEUTH, "export", "--format", "runs", "-o", "-"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0 and "capital of France" in done.stdout
    assert not (tmp_path / "-").exists()


def _is_device(path: str) -> bool:
    return os.path.exists(path) and stat.S_ISCHR(os.stat(path).st_mode)


@pytest.mark.skipif(not _is_device("/dev/full"), reason="needs Linux's /dev/full device")
def test_export_to_a_full_device_is_one_sentence_and_the_device_stays(seeded):
    before = os.stat("/dev/full")
    done = sleuth("export", "--format", "runs", "-o", "/dev/full")
    assert_one_line_error(done, "/dev/full", "no space left")
    after = os.stat("/dev/full")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_export_to_a_folder_is_one_sentence(seeded, tmp_path):
    assert_one_line_error(sleuth("export", "--format", "runs", "-o", str(tmp_path)), "folder")


# -- the Markdown report ----------------------------------------------------------------------

HOSTILE = (
    "Deploy guide](javascript:alert(1)) <img src=x onerror=alert(1)> "
    "<script>alert(2)</script> [click](javascript:alert(3)) ![x](http://evil.example/p.png)"
)


def test_a_markdown_report_carries_no_live_html_or_script_link():
    store = Store.open(app_dirs().database)
    session_id = store.runs.new_session(HOSTILE)
    turn_id = store.runs.add_turn(session_id, HOSTILE)
    evidence = [
        {"uri": "javascript:alert(4)", "title": HOSTILE, "text": "<b>bold</b> & more"},
        {"uri": "https://example.org/a page(1)", "title": "A [page]", "text": "Fine."},
        {"uri": "/notes/deploy.md", "title": "# Deploy", "text": "Notes."},
    ]
    add_run_with_answer(
        store, turn_id, f"> {HOSTILE} [1]\n1. <iframe src=x>", question=HOSTILE, evidence=evidence
    )
    store.close()
    done = sleuth("export", "--format", "md", "--session", str(session_id))
    assert done.returncode == 0, done.stderr
    html = MarkdownIt("commonmark").render(done.stdout)
    for live in ("<script", "<img", "<iframe", 'href="javascript:', "<b>"):
        assert live not in html, (live, html)
    assert "&lt;script&gt;" in html  # shown as text, not dropped
    assert 'href="https://example.org/a%20page%281%29"' in html  # a web link still links
    assert "<blockquote>" in html  # Sleuth's own quote marks still quote


# -- the model lock -------------------------------------------------------------------------


def test_the_model_lock_lives_in_the_users_own_cache_folder():
    turns = ModelTurns()
    with turns.turn():
        pass
    lock = app_dirs().cache / "model.lock"
    assert turns.path == lock and stat.S_ISREG(lock.lstat().st_mode)
    assert stat.S_IMODE(lock.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_a_link_or_pipe_in_the_locks_place_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    (folder / "model.lock").symlink_to(target)
    with pytest.raises(ModelError, match="remove it"):
        with ModelTurns(folder / "model.lock").turn():
            pass
    assert not target.exists()  # nothing created where the link pointed
    (folder / "model.lock").unlink()
    os.mkfifo(folder / "model.lock")
    with pytest.raises(ModelError, match="not a file"):
        with ModelTurns(folder / "model.lock").turn():
            pass


@pytest.mark.skipif(os.getuid() != 0, reason="giving a folder to another user takes root")
def test_a_lock_folder_of_another_user_is_refused(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(ModelError, match="not the user's alone"):
        with ModelTurns(folder / "model.lock").turn():
            pass


# -- smaller things -------------------------------------------------------------------------


def test_an_empty_database_file_is_made_private_like_a_new_one():
    path = app_dirs().database
    path.parent.mkdir(parents=True, mode=0o700)
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    assert sleuth("history").returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_newline_in_a_file_name_cannot_fake_a_line(tmp_path):
    library = tmp_path / "lib"
    library.mkdir()
    (library / "notes.md\n  indexed  shadow.md").write_text("# Notes\n\nSome text here.\n")
    indexed = sleuth("index", str(library))
    assert indexed.returncode == 0, indexed.stderr
    assert not any(
        line.strip().startswith("indexed  shadow") for line in indexed.stderr.splitlines()
    )
    listed = sleuth("library", "--files")
    assert "notes.md\\n  indexed  shadow.md" in listed.stdout
    assert not any(
        line.strip().startswith("indexed  shadow") for line in listed.stdout.splitlines()
    )


@pytest.mark.parametrize("question", ["   \t  ", "\x01\x02\x7f", " ?! "])
def test_a_question_without_words_is_refused_and_nothing_is_saved(question):
    assert_one_line_error(sleuth("ask", "--no-web", question), "Ask a question")
    assert sleuth("history").stdout.strip() == "No sessions yet."


def test_an_unknown_model_id_points_to_sleuth_models():
    assert_one_line_error(sleuth("models", "activate", "999999"), "`sleuth models` lists")


def test_listing_models_does_not_join_the_default_model():
    done = sleuth("models", env={"SLEUTH_MODEL_PATH": "qwen2.5-0.5b"})  # the product's default
    assert done.returncode == 0, done.stderr
    assert "not prepared yet" in done.stdout
    models = app_dirs().cache / "models"
    assert not models.exists() or not any(models.iterdir())
