"""`sleuth ask`, `sleuth index` and `sleuth library` as a user runs them."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import pytest

from sleuth.store import Store, app_dirs
from tests.helpers import write_notes
from tests.tui.test_cli import SLEUTH, assert_one_line_error, sleuth


@pytest.fixture
def notes(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "tides.md").write_text(
        "# Tides\n\nTides are caused mainly by the gravity of the Moon."
    )
    (folder / "bread.md").write_text("# Bread\n\nBread is made from flour, water and yeast.")
    return folder


def test_index_is_incremental_and_library_lists_and_forgets(notes):
    first = sleuth("index", str(notes))
    assert first.returncode == 0
    assert "indexed 2, unchanged 0, failed 0, removed 0" in first.stderr
    assert "2/2" in first.stderr  # the progress bar
    second = sleuth("index", str(notes))
    assert "indexed 0, unchanged 2" in second.stderr
    listing = sleuth("library", "--files").stdout
    assert f"{notes}: 2 file(s) indexed" in listing and "tides.md" in listing
    forgot = sleuth("library", "--remove", str(notes))
    assert forgot.returncode == 0 and "forgot 2 file(s)" in forgot.stdout
    assert "The library is empty" in sleuth("library").stdout
    assert (notes / "tides.md").exists()


def test_index_and_library_mistakes_are_one_sentence(tmp_path):
    assert_one_line_error(sleuth("index", str(tmp_path / "missing")), "does not exist")
    assert_one_line_error(sleuth("library", "--remove", str(tmp_path)), "not an indexed folder")


def test_ask_mistakes_are_one_sentence(tmp_path):
    assert_one_line_error(sleuth("ask", "--no-web", "What?"), "Nothing to search")
    assert_one_line_error(sleuth("ask", "--budget", "laps=3", "What?"), "Bad --budget item")
    assert_one_line_error(
        sleuth("ask", "--library", str(tmp_path / "x"), "What?"), "does not exist"
    )
    assert_one_line_error(sleuth("ask", "--session", "77", "What?"), "no session 77")


@pytest.mark.slow
def test_ask_json_over_a_library_then_a_follow_up(notes):
    result = sleuth(
        "ask", "--json", "--no-web", "--library", str(notes), "--seed", "1", "What causes tides?"
    )
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()  # exactly one JSON object on stdout
    data = json.loads(line)
    assert data["status"] == "done" and data["answer"]
    assert data["sources"][0]["uri"].endswith("tides.md")
    assert data["timings"]["llm_calls"] >= 2 and data["answer_id"] and data["run_id"]
    assert "evidence:" in result.stderr and "plan:" in result.stderr  # progress on stderr

    follow = sleuth(
        "ask",
        "--no-web",
        "--session",
        str(data["session_id"]),
        "--seed",
        "2",
        "And what is bread made of?",
    )
    assert follow.returncode == 0, follow.stderr
    assert "Sources:" in follow.stdout and "sleuth rate" in follow.stdout
    store = Store.open(app_dirs().database)
    turns = store.runs.turns(data["session_id"])
    assert [t.question for t in turns] == ["What causes tides?", "And what is bread made of?"]
    store.close()


@pytest.mark.slow
def test_ctrl_c_cancels_cleanly_and_keeps_what_was_found(web):
    web.delays["/articles/rhone.html"] = 60  # one page never arrives in time
    env = {
        **os.environ,
        "SLEUTH_SEARCH_BACKEND": "searxng",
        "SLEUTH_SEARCH_SEARXNG_URL": web.base,
        "SLEUTH_NETWORK_ALLOW_PRIVATE_HOSTS": "true",
        "SLEUTH_NETWORK_FETCH_TIMEOUT_S": "120",
        "SLEUTH_NETWORK_CONCURRENCY": "1",
    }
    process = subprocess.Popen(
        [SLEUTH, "ask", "Where does the Rhône river flow?"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith(("read:", "searched web")):
            break
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    out, rest = process.communicate(timeout=60)
    assert process.returncode == 130, "".join(lines) + rest
    assert time.monotonic() - sent < 20
    assert "cancelled" in rest and "Traceback" not in rest
    store = Store.open(app_dirs().database)
    run = store.runs.runs(store.runs.turns(store.runs.history()[0].id)[0].id)[0]
    assert run.status == "cancelled"
    assert store.runs.steps(run.id)  # the steps before Ctrl-C were kept
    store.close()


@pytest.fixture
def painters(tmp_path):
    return write_notes(
        tmp_path / "painters",
        {
            "Lena Voss": "Lena Voss is a painter. She was born in Vardholm in 1931 and studied "
            "in Tarn.",
            "Tarn": "Tarn is a river town with an academy of painting.",
        },
    )


@pytest.mark.slow
def test_rate_then_train_a_reward_model_activate_it_and_answers_are_picked(painters):
    question = ["ask", "--json", "--no-web", "--library", str(painters), "--seed", "1"]
    first = json.loads(sleuth(*question, "Where was Lena Voss born?").stdout)
    v = first["verification"]
    assert v["candidates"] and v["picked_by"] == "reader"
    assert first["confidence"] is None and first["not_sure"] is False
    refused = sleuth("train", "--algo", "reward")
    assert_one_line_error(refused, "No rated short answers")
    rated = sleuth("rate", str(first["answer_id"]), "--down", "--correct", "Vardholm")
    assert rated.returncode == 0, rated.stderr
    trained = sleuth("train", "--algo", "reward")
    assert trained.returncode == 0, trained.stderr
    assert "fitted on 1 rated questions" in trained.stderr
    model_id = re.search(r"reward model (\d+) fitted", trained.stderr).group(1)
    listing = sleuth("models").stdout
    assert f"{model_id}  reward-1" in listing and "reward model" in listing
    active = sleuth("models", "activate", model_id)
    assert active.returncode == 0 and "active: model" in active.stdout
    second = json.loads(sleuth(*question, "Where was Lena Voss born?").stdout)
    assert 0 < second["confidence"] < 1 and isinstance(second["not_sure"], bool)
    assert second["verification"]["picked_by"] in ("reader", "reward model")
    back = sleuth("models", "rollback", "--reward")
    assert "the reader picks alone" in back.stdout
    third = json.loads(sleuth(*question, "Where was Lena Voss born?").stdout)
    assert third["confidence"] is None
