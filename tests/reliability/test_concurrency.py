"""Several Sleuths at once on one home: a new database opened by many processes, two asks,
and a big file indexed while another process writes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from sleuth.store import SCHEMA_VERSION, Store
from tests.reliability.conftest import integrity, run, start


def test_any_number_of_processes_may_open_a_new_database_at_once(env, sleuth_home, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nThe Saône meets the Rhône at Lyon.")
    processes = [start("history", env=env) for _ in range(8)]
    processes += [start("index", str(notes), env=env) for _ in range(2)]
    outcomes = [(p.args[1], p.wait(timeout=120), p.stderr.read()) for p in processes]
    failed = [outcome for outcome in outcomes if outcome[1] != 0]
    assert not failed, failed
    assert not any("already exists" in err or "locked" in err for _, _, err in outcomes)
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    assert store.schema_version == SCHEMA_VERSION
    assert [d.status for d in store.library.documents()] == ["indexed"]
    store.close()
    assert integrity(sleuth_home) == "ok"


@pytest.mark.slow
def test_two_asks_at_once_both_finish_and_both_are_recorded(env, sleuth_home, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lyon.md").write_text("# Lyon\n\nLyon was founded in 43 BC by Lucius Plancus.")
    (notes / "rhone.md").write_text("# Rhône\n\nThe Rhône flows through Lyon to the sea.")
    assert run("index", str(notes), env=env).returncode == 0
    questions = ["Who founded Lyon?", "Where does the Rhône flow?"]
    processes = [start("ask", "--no-web", "--json", q, env=env) for q in questions]
    outcomes = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in processes]
    for code, _, err in outcomes:
        assert code in (0, 1) and "locked" not in err and "Traceback" not in err, err
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    statuses = [
        run.status
        for session in store.runs.history()
        for turn in session.turns
        for run in store.runs.runs(turn.id)
    ]
    assert len(statuses) == 2
    assert all(status in ("done", "no_evidence") for status in statuses)
    store.close()


WRITER = textwrap.dedent(
    """
    import sys, time
    from sleuth.store import Store, StoreError
    # Sleuth's own busy timeout (5 s), as a research run beside the indexer has it. With a
    # fifth of it one write failed once in CI: the 49 MB file's source row is one write (0.2 s
    # here, longer on a slower disk). That chunks go in bounded batches is tests/store's check.
    store = Store.open(sys.argv[1])
    session = store.runs.new_session("beside the indexer")
    turn = store.runs.add_turn(session, "q?")
    run = store.runs.start_run(turn, {})
    failures, steps, longest, stop = 0, 0, 0.0, time.monotonic() + float(sys.argv[2])
    while time.monotonic() < stop:
        started = time.monotonic()
        try:
            store.runs.add_step(run, "search_issued", {"n": steps})
            steps += 1
        except StoreError as exc:
            failures += 1
            print(exc, file=sys.stderr)
        longest = max(longest, time.monotonic() - started)
        time.sleep(0.05)  # a research run writes a step every so often
    print(steps, failures, f"{longest:.2f}")
    """
)


@pytest.mark.slow
def test_indexing_a_49_mb_file_never_locks_out_another_writer(env, sleuth_home, tmp_path):
    big = tmp_path / "big"
    big.mkdir()
    sentence = "The Rhone and the Saone meet at Lyon, which Plancus founded in 43 BC. "
    (big / "huge.txt").write_text(sentence * (49_000_000 // len(sentence)))  # under the cap
    run("history", env=env)  # the database exists before both start
    indexer = start("index", str(big), env=env)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(sleuth_home / "data" / "sleuth.db"), "15"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = writer.communicate(timeout=120)
    assert indexer.wait(timeout=600) == 0, indexer.stderr.read()
    steps, failures, longest = out.split()
    # No write waited out the busy timeout; the message says the longest wait.
    assert int(failures) == 0 and int(steps) > 50, f"{err} (longest write {longest} s)"
    store = Store.open(sleuth_home / "data" / "sleuth.db")
    (document,) = store.library.documents()
    assert document.status == "indexed"
    assert store.library.chunk_count(document.source_id) > 50_000
    store.close()
    assert integrity(sleuth_home) == "ok"


@pytest.mark.slow
def test_four_asks_at_once_on_a_small_machine_all_answer(env, sleuth_home, tmp_path):
    """Each process would take every core; they take turns at the model instead, so none
    runs out of its 60 s (before, all four ended no_evidence, blaming the model)."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lyon.md").write_text("# Lyon\n\nLyon was founded in 43 BC by Lucius Plancus.")
    (notes / "rhone.md").write_text("# Rhône\n\nThe Rhône flows through Lyon to the sea.")
    assert run("index", str(notes), env=env).returncode == 0
    questions = ["Who founded Lyon?", "Where does the Rhône flow?"] * 2
    budget = ["--budget", "rounds=1,seconds=60"]
    processes = [
        start("ask", "--no-web", "--json", "--library", str(notes), *budget, q, env=env)
        for q in questions
    ]
    outcomes = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in processes]
    for code, out, err in outcomes:
        assert code == 0 and "Traceback" not in err, err
        assert json.loads(out)["status"] == "done"
        assert "larger model" not in err


def test_a_call_waiting_for_another_sleuths_turn_stops_at_its_deadline(tmp_path):
    """While another process holds the model, a waiting call gives up when its stop signal
    comes, and the message says it waited, not that the model is too small."""
    import threading

    from sleuth.agent.models.llm import Completion, UnusableOutput, chat_json
    from sleuth.agent.models.turns import ModelTurns, TurnCancelled

    path = tmp_path / "model.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT);"
            "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        turns = ModelTurns(path)
        stop = threading.Event()
        threading.Timer(1.2, stop.set).start()
        with pytest.raises(TurnCancelled) as waited:
            with turns.turn(stop):
                pass
        assert waited.value.waited >= 1.0
    finally:
        holder.kill()
        holder.wait()
    with turns.turn(threading.Event()) as waited_s:  # the holder died: its turn is free
        assert waited_s < 1.0

    class Waited:
        def chat(self, messages, sampling, **kwargs):
            return Completion("", 10, 0, 0.0, "cancelled", waited_s=12.0)

    with pytest.raises(UnusableOutput) as unusable:
        chat_json(Waited(), [], {"type": "object"}, None)
    message = str(unusable.value)
    assert "after waiting 12 s while other Sleuths used the model" in message
    assert "time budget" in message and "larger model" not in message
