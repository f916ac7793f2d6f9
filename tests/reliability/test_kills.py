"""Killed and stopped processes: kill -9 during ask, index and train; SIGTERM and SIGHUP during
ask. Each time the database stays whole, the committed steps are kept, no run is left
'running' after the next start, and a killed training run leaves the active model alone."""

from __future__ import annotations

import json
import signal
import sqlite3
import time

import pytest

from sleuth.store import Store
from tests.helpers import ask, share_converted_models
from tests.reliability.conftest import integrity, run, start

pytestmark = pytest.mark.slow


def read_until(stream, predicate, limit: int = 400) -> list[str]:
    """Lines of a child's output up to the first that satisfies `predicate`."""
    lines = []
    for line in stream:
        lines.append(line)
        if predicate(line) or len(lines) > limit:
            return lines
    return lines  # the process ended first: the caller's assertion says what it printed


def runs(home) -> list[tuple[int, str]]:
    db = sqlite3.connect(home / "data" / "sleuth.db")
    try:
        return db.execute("SELECT id, status FROM runs ORDER BY id").fetchall()
    finally:
        db.close()


def kinds(home, run_id: int) -> list[str]:
    db = sqlite3.connect(home / "data" / "sleuth.db")
    try:
        return [k for (k,) in db.execute("SELECT kind FROM steps WHERE run_id = ?", [run_id])]
    finally:
        db.close()


def test_kill_9_during_ask_keeps_its_steps_and_the_next_start_closes_it(env, sleuth_home):
    process = start("ask", "Who founded Lyon?", env=env)
    read_until(process.stderr, lambda line: line.startswith("read: "))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    ((run_id, status),) = runs(sleuth_home)
    assert status == "running"  # nobody closed it: the process had no chance
    assert {"run_started", "plan_ready", "page_fetched"} <= set(kinds(sleuth_home, run_id))
    assert run("history", env=env).returncode == 0  # the next start of any Sleuth...
    assert runs(sleuth_home) == [(run_id, "interrupted")]  # ...closes it
    assert integrity(sleuth_home) == "ok"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_and_sighup_cancel_an_ask_like_ctrl_c(env, sleuth_home, signum):
    slow = {**env, "SLEUTH_NETWORK_FETCH_TIMEOUT_S": "120"}  # the drip page never ends
    process = start("ask", "Who founded Lyon?", env=slow)
    read_until(process.stderr, lambda line: line.startswith("searched web"))
    sent = time.monotonic()
    process.send_signal(signum)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == 130 and time.monotonic() - sent < 30
    assert "cancelled" in rest and "Traceback" not in rest
    ((run_id, status),) = runs(sleuth_home)
    assert status == "cancelled" and kinds(sleuth_home, run_id)[-1] == "run_finished"
    assert integrity(sleuth_home) == "ok"


def test_kill_9_during_index_loses_nothing_finished(env, sleuth_home, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    paragraph = "The Rhône meets the Saône at Lyon, a city founded by Plancus. " * 1500
    for number in range(120):
        (notes / f"note{number:03d}.md").write_text(f"# Note {number}\n\n{paragraph}")
    process = start("index", str(notes), env=env)
    read_until(process.stderr, lambda line: " 5/120 " in line)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert integrity(sleuth_home) == "ok"
    again = run("index", str(notes), env=env)
    assert again.returncode == 0, again.stderr
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    documents = store.library.documents()
    assert len(documents) == 120 and all(d.status == "indexed" for d in documents)
    assert store.library.search_chunks(["plancus"], limit=5)
    store.close()


def test_kill_9_during_training_leaves_the_active_model_alone(
    env, sleuth_home, tiny_gguf, tiny_hf, train_cache
):
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    for number in range(12):
        _, _, (good, bad) = ask(store, f"Question {number}?", "Plancus [1].", "No idea.")
        store.feedback.rate(good, thumb=1)
        store.feedback.rate(bad, thumb=-1)
    store.close()
    train_env = {**env, "SLEUTH_MODEL_PATH": str(tiny_gguf)}
    share_converted_models(train_cache, sleuth_home / "cache")  # the tiny model, converted
    process = start("train", "--algo", "sft", "--steps", "200", "--progress", "json", env=train_env)
    lines = read_until(process.stdout, lambda line: json.loads(line).get("event") == "step")
    assert json.loads(lines[-1])["event"] == "step", process.stderr.read()
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    listing = run("models", "list", env=train_env)  # the next start
    assert listing.returncode == 0, listing.stderr
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    (training,) = store.training.runs()
    assert training.status == "failed" and "--resume" in training.error
    assert all(not m.active for m in store.registry.models())  # nothing was activated
    assert [m.adapter_path for m in store.registry.models()] == [None]  # no adapter registered
    store.close()
    assert integrity(sleuth_home) == "ok"
