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
