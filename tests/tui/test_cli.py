"""The `sleuth` command run as a user runs it: a subprocess with its own SLEUTH_HOME."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from sleuth.store import Store, app_dirs
from tests.helpers import ask

SLEUTH = str(Path(sys.executable).parent / "sleuth")


def sleuth(*args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [SLEUTH, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture
def seeded():
    """A database at SLEUTH_HOME with one session and two answers."""
    store = Store.open(app_dirs().database)
    session_id, _, answers = ask(store, "What is the capital of France?", "Paris [1].", "Lyon.")
    store.close()
    return session_id, answers


def test_version_and_help():
    assert sleuth("--version").stdout.strip() == "sleuth 0.1.0"
    help_text = sleuth("--help").stdout
    for command in ["config", "doctor", "rate", "compare", "export", "history"]:
        assert command in help_text


def test_config_shows_values_and_their_origins(sleuth_home):
    out = sleuth("config", env={"SLEUTH_MODEL_N_CTX": "2048"}).stdout
    assert "model.n_ctx" in out and "2048" in out and "(env SLEUTH_MODEL_N_CTX)" in out
    assert "(default)" in out
    written = sleuth("config", "set", "research.max_rounds", "3")
    assert written.returncode == 0
    data = json.loads(sleuth("config", "--json").stdout)
    assert data["research.max_rounds"] == {
        "value": 3,
        "origin": f"file {sleuth_home / 'config' / 'config.toml'}",
    }
    assert_one_line_error(sleuth("config", "set", "research.max_rounds", "many"), "whole number")
    assert_one_line_error(sleuth("config", "set", "research.nope", "1"), "Unknown setting")


def test_unreadable_config_is_one_sentence(sleuth_home):
    (sleuth_home / "config").mkdir(parents=True)
    (sleuth_home / "config" / "config.toml").write_text("[model\n")
    assert_one_line_error(sleuth("history"), "config.toml", "not valid TOML")


def test_history_lists_sessions_and_answer_ids(seeded):
    session_id, (a, b) = seeded
    out = sleuth("history").stdout
    assert f"session {session_id}" in out
    assert f"[answers: {a}, {b}]" in out
    data = json.loads(sleuth("history", "--json").stdout)
    assert data[0]["turns"][0]["answer_ids"] == [a, b]
    assert sleuth("history", "--search", "capital").stdout.count("session") == 1
    assert "Nothing matches" in sleuth("history", "--search", "volcano").stdout


def test_history_on_a_fresh_machine():
    assert sleuth("history").stdout.strip() == "No sessions yet."


def test_rate_and_compare_write_to_the_database(seeded):
    _, (a, b) = seeded
    result = sleuth("rate", str(a), "--up", "--comment", "cites its source")
    assert result.returncode == 0 and "thumbs up" in result.stdout
    assert sleuth("rate", str(b), "--stars", "2").returncode == 0
    assert (
        sleuth("compare", str(a), str(b)).stdout.strip() == f"answer {a} is better than answer {b}"
    )
    store = Store.open(app_dirs().database)
    assert store.feedback.rating(a).comment == "cites its source"
    assert store.feedback.rating(b).stars == 2
    (comparison,) = store.feedback.comparisons()
    assert (comparison.winner_id, comparison.loser_id) == (a, b)
    store.close()
    assert sleuth("rate", str(a), "--clear").returncode == 0


def test_a_correction_is_kept_with_the_rating_and_judges_the_run(seeded, tmp_path):
    session_id, (a, b) = seeded
    result = sleuth("rate", str(b), "--correct", "Paris is the capital [1].")
    assert result.returncode == 0 and "corrected" in result.stdout
    store = Store.open(app_dirs().database)
    assert store.feedback.rating(b).correction == "Paris is the capital [1]."
    store.close()
    runs = [
        json.loads(line)
        for line in sleuth("export", "--format", "trajectories").stdout.splitlines()
    ]
    assert [r["answer_id"] for r in runs] == [a, b]
    assert runs[1]["outcome"]["judged_by"] == "correction"
    assert runs[1]["outcome"]["correctness"]["f1"] == 0.0  # "Lyon." is not Paris
    # The correction is a reference for the question: the other answer is judged by it too.
    assert runs[0]["outcome"]["judged_by"] == "reference"
    assert runs[0]["outcome"]["correctness"]["em"] == 0.0  # "Paris" against "Paris is the capital"
    assert set(runs[0]) >= {"question", "steps", "searches", "cited", "outcome", "status"}
    report = sleuth("export", "--format", "md", "--session", str(session_id)).stdout
    assert "**Corrected by the user:** Paris is the capital [1]." in report
    questions = tmp_path / "questions.jsonl"
    questions.write_text('{"question": "What is the capital of France?", "answer": "Paris"}\n')
    out = sleuth("export", "--format", "trajectories", "--references", str(questions)).stdout
    assert json.loads(out.splitlines()[0])["outcome"]["correctness"]["contains"] == 1.0
    questions.write_text("[1, 2]\n")
    assert_one_line_error(
        sleuth("export", "--format", "trajectories", "--references", str(questions)),
        "questions.jsonl:1",
    )
    assert sleuth("rate", str(b), "--correct", "").returncode == 0
    store = Store.open(app_dirs().database)
    assert store.feedback.rating(b).correction is None
    store.close()


def test_rating_mistakes_are_one_sentence_and_change_nothing(seeded):
    _, (a, _) = seeded
    assert_one_line_error(sleuth("rate", str(a), "--stars", "9"), "1 to 5")
    assert_one_line_error(sleuth("rate", "999", "--up"), "no answer 999")
    assert_one_line_error(sleuth("rate", str(a)), "--up, --down or --stars")
    assert_one_line_error(sleuth("compare", str(a), str(a)), "two different answers")
    store = Store.open(app_dirs().database)
    assert store.feedback.rating(a) is None and store.feedback.comparisons() == []
    store.close()


def test_exports_in_trl_shapes(seeded, tmp_path):
    session_id, (a, b) = seeded
    sleuth("rate", str(a), "--up")
    sleuth("rate", str(b), "--down")
    sleuth("compare", str(a), str(b))
    out = tmp_path / "dpo.jsonl"
    result = sleuth("export", "--format", "dpo", "-o", str(out))
    assert result.returncode == 0 and "wrote 1 dpo record" in result.stderr
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(record) == {"prompt", "chosen", "rejected"}
    assert record["chosen"] == [{"role": "assistant", "content": "Paris [1]."}]
    kto = [json.loads(line) for line in sleuth("export", "--format", "kto").stdout.splitlines()]
    assert [r["label"] for r in kto] == [True, False]
    sft = [json.loads(line) for line in sleuth("export", "--format", "sft").stdout.splitlines()]
    assert len(sft) == 1 and set(sft[0]) == {"prompt", "completion"}
    runs = [json.loads(line) for line in sleuth("export", "--format", "runs").stdout.splitlines()]
    assert len(runs) == 2 and runs[0]["rating"]["thumb"] == 1
    report = sleuth("export", "--format", "md", "--session", str(session_id)).stdout
    assert "## What is the capital of France?" in report and "### Sources" in report
    assert_one_line_error(sleuth("export", "--format", "md"), "--session")
    assert_one_line_error(
        sleuth("export", "--format", "sft", "-o", str(tmp_path / "no" / "x.jsonl")),
        "does not exist",
    )


def test_locked_database_is_one_sentence_and_loses_nothing(seeded):
    _, (a, _) = seeded
    holder = sqlite3.connect(app_dirs().database, timeout=0)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert_one_line_error(sleuth("rate", str(a), "--up", timeout=60), "is locked")
    finally:
        holder.rollback()
        holder.close()
    assert sleuth("rate", str(a), "--up").returncode == 0


def test_corrupt_database_is_one_sentence_and_untouched():
    path = app_dirs().database
    path.parent.mkdir(parents=True)
    path.write_bytes(b"garbage" * 1000)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    assert_one_line_error(sleuth("history"), str(path), "corrupt")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_newer_database_is_refused():
    store = Store.open(app_dirs().database)
    store.db.execute("INSERT INTO _migrations (id, name, applied_at) VALUES (50, 'm050_x', 'x')")
    store.close()
    assert_one_line_error(sleuth("history"), "newer Sleuth")


@pytest.mark.slow
def test_doctor_loads_the_real_model(model_path):
    result = sleuth("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[ok ] model" in result.stdout and model_path.name in result.stdout
    assert "schema" in result.stdout and "torch" in result.stdout
    quick = sleuth("doctor", "--quick")
    assert quick.returncode == 0 and "98 MB" in quick.stdout


@pytest.mark.slow
def test_doctor_names_a_bad_model_file(tmp_path):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"nope" * 100)
    result = sleuth("doctor", "--model", str(bad))
    assert result.returncode == 2
    assert f"[BAD] model            {bad} is not a GGUF model file" in result.stdout
    missing = sleuth("--model", str(tmp_path / "absent.gguf"), "doctor", "--quick")
    assert missing.returncode == 2 and "does not exist" in missing.stdout
