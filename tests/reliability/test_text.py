"""Text from outside stays text: terminal escape sequences in file names, file text and
questions never reach the terminal; the CLI prints them stripped."""

from __future__ import annotations

from sleuth.store import Store
from tests.helpers import ask
from tests.reliability.conftest import run
from tests.reliability.faults import ESCAPES


def test_escape_sequences_never_reach_the_terminal(env, sleuth_home, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    name = "\x1b]0;PWNED\x07evil\x1b[2J.md"
    (notes / name).write_text(f"# {ESCAPES}\n\nLyon notes.")
    outputs = [run("index", str(notes), env=env), run("library", "--files", env=env)]
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    ask(store, f"Who founded Lyon?{ESCAPES}", f"Plancus{ESCAPES} [1].")
    store.close()
    outputs += [run("history", env=env), run("export", "--format", "md", "--session", "1", env=env)]
    for done in outputs:
        assert done.returncode == 0, done.stderr
        printed = done.stdout + done.stderr
        assert "\x1b" not in printed and "\x07" not in printed
    assert "evil.md" in outputs[1].stdout  # the name, without its escapes
    assert "[@click=app.quit]quit[/]" in outputs[2].stdout  # markup is just text here


BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "evil\u202etxt.md" is shown as "evildm.txt"
ZERO_WIDTH = "\u200b\u200d\ufeff"


def test_bidi_overrides_are_shown_and_zero_width_characters_dropped(env, sleuth_home, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / f"evil{BIDI}txt.md").write_text(f"# Pay{ZERO_WIDTH}Pal\n\nLyon notes{BIDI}.")
    outputs = [run("index", str(notes), env=env), run("library", "--files", env=env)]
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    ask(store, f"Who founded {BIDI}Lyon?", f"Planc{ZERO_WIDTH}us [1].")
    store.close()
    outputs += [run("history", env=env), run("export", "--format", "md", "--session", "1", env=env)]
    for done in outputs:
        assert done.returncode == 0, done.stderr
        printed = done.stdout + done.stderr
        assert not any(ch in printed for ch in BIDI + ZERO_WIDTH), printed
    assert "evil<U+202E>txt.md" in outputs[1].stdout  # what the name really holds, visible
    assert "Who founded <U+202E>Lyon?" in outputs[2].stdout
    assert "Plancus [1]." in outputs[3].stdout


def test_an_id_too_large_for_sqlite_is_one_sentence(env):
    huge = "99999999999999999999999"
    for args in (
        ["rate", huge, "--up"],
        ["compare", huge, "1"],
        ["export", "--format", "md", "--session", huge],
        ["ask", "--session", huge, "What?"],
        ["models", "activate", huge],
    ):
        done = run(*args, env=env)
        assert done.returncode == 2 and "Traceback" not in done.stderr, (args, done.stderr)
        assert "ids run from 1 to 9223372036854775807" in done.stderr, args


def test_a_question_of_a_document_is_refused_before_anything_loads(env, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nText.")
    words = ["why"] * 50_000  # 200 KB, as many words (one argument may hold only 128 KB)
    done = run("ask", "--library", str(notes), *words, env=env, timeout=30)
    assert done.returncode == 2 and "a question may have at most 2,000" in done.stderr
    assert "loading the model" not in done.stderr and "indexed" not in done.stderr
