"""A model server that misbehaves never hangs Sleuth: the caller's stop signal and a total
deadline hold on the wire, a response is capped in size, and every shape that is not a chat
completion ends in one sentence. Against real servers on 127.0.0.1 (model_servers.py), with
the backend itself and with `sleuth ask` run as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time

import httpx
import pytest

from sleuth.agent.errors import ModelError
from sleuth.agent.models.http_llm import OpenAILLM
from sleuth.agent.models.llm import Sampling
from tests.reliability import model_servers
from tests.reliability.conftest import run, start

HELLO = [{"role": "user", "content": "Capital of France?"}]


@pytest.fixture
def bad_server(request):
    server = model_servers.start(request.param)
    yield server
    server.close()


class Deadline:
    """A stop signal set `seconds` from now, as a run's deadline is."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds

    def is_set(self) -> bool:
        return time.monotonic() >= self.at


@pytest.mark.parametrize("bad_server", ["pings", "no-newline", "silent"], indirect=True)
def test_a_stream_that_never_finishes_stops_at_the_callers_signal(bad_server):
    llm = OpenAILLM(bad_server.endpoint)
    started = time.monotonic()
    completion = llm.chat(HELLO, Sampling(max_tokens=8), cancel=Deadline(0.5))
    assert time.monotonic() - started < 3
    assert completion.finish_reason == "cancelled" and completion.text == ""
    llm.close()


@pytest.mark.parametrize("bad_server", ["pings", "silent"], indirect=True)
def test_a_call_has_a_total_deadline_without_a_stop_signal(bad_server):
    llm = OpenAILLM(bad_server.endpoint, call_seconds=1.0)
    started = time.monotonic()
    with pytest.raises(ModelError, match="did not finish an answer within 1 s"):
        llm.chat(HELLO, Sampling(max_tokens=8))
    assert time.monotonic() - started < 4
    llm.close()


@pytest.mark.parametrize(
    "bad_server", ["list", "choice-number", "delta-string", "not-json"], indirect=True
)
def test_a_malformed_stream_is_one_sentence(bad_server):
    llm = OpenAILLM(bad_server.endpoint)
    with pytest.raises(ModelError, match="not a chat completion|malformed") as raised:
        llm.chat(HELLO, Sampling(max_tokens=8))
    assert "\n" not in str(raised.value)
    llm.close()


@pytest.mark.parametrize("bad_server", ["huge"], indirect=True)
def test_a_response_past_the_size_cap_is_refused_not_held(bad_server):
    llm = OpenAILLM(bad_server.endpoint, max_bytes=2 << 20)
    with pytest.raises(ModelError, match="more than 2 MB"):
        llm.chat(HELLO, Sampling(max_tokens=8))
    llm.close()


@pytest.mark.parametrize("bad_server", ["good"], indirect=True)
def test_a_well_formed_stream_still_answers(bad_server):
    llm = OpenAILLM(bad_server.endpoint)
    assert llm.chat(HELLO, Sampling(max_tokens=8)).text == "Paris"
    llm.close()


def _library(tmp_path):
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "france.md").write_text("# France\n\nThe capital of France is Paris.\n")
    return folder


def _server_env(sleuth_home, server) -> dict[str, str]:
    return {
        **os.environ,
        "SLEUTH_HOME": str(sleuth_home),
        "SLEUTH_MODEL_BACKEND": "openai",
        "SLEUTH_MODEL_ENDPOINT": server.endpoint,
        "SLEUTH_SEARCH_BACKEND": "none",
    }


def _statuses(sleuth_home) -> list[str]:
    db = sqlite3.connect(sleuth_home / "data" / "sleuth.db")
    try:
        return [s for (s,) in db.execute("SELECT status FROM runs")]
    finally:
        db.close()


@pytest.mark.parametrize("bad_server", ["pings"], indirect=True)
def test_ask_against_a_keepalive_stream_ends_at_its_time_budget(bad_server, sleuth_home, tmp_path):
    env = _server_env(sleuth_home, bad_server)
    library = str(_library(tmp_path))
    started = time.monotonic()
    done = run(
        "ask",
        "--json",
        "--no-web",
        "--library",
        library,
        "--budget",
        "seconds=4",
        "What is the capital of France?",
        env=env,
        timeout=60,
    )
    assert time.monotonic() - started < 30, "the run outlived its budget"
    assert "Traceback" not in done.stderr
    assert json.loads(done.stdout)["status"] in {"no_evidence", "failed", "done", "cancelled"}
    assert "running" not in _statuses(sleuth_home)


@pytest.mark.parametrize("bad_server", ["no-newline"], indirect=True)
def test_sigterm_during_a_call_to_a_stuck_server_exits_within_two_seconds(
    bad_server, sleuth_home, tmp_path
):
    env = _server_env(sleuth_home, bad_server)
    process = start(
        "ask",
        "--no-web",
        "--library",
        str(_library(tmp_path)),
        "What is the capital of France?",
        env=env,
    )
    threading.Thread(target=process.communicate, daemon=True).start()  # keep pipes drained
    assert bad_server.asked.wait(60), "the model server was never asked"
    time.sleep(0.3)  # the call is now reading the endless line
    process.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    process.wait(timeout=30)
    assert time.monotonic() - stopped < 2, "SIGTERM took more than 2 s to end the process"
    assert _statuses(sleuth_home) == ["cancelled"]


def test_a_server_that_refuses_a_grammar_is_asked_without_it_once():
    from sleuth.agent.research.reader import AnswerForm

    bodies: list[dict] = []

    def answer(request):
        body = json.loads(request.content)
        bodies.append(body)
        if "grammar" in body:
            return httpx.Response(400, text="Unrecognized request argument: grammar")
        return httpx.Response(
            200, headers={"content-type": "text/event-stream"}, content=model_servers.GOOD
        )

    llm = OpenAILLM("http://127.0.0.1:9/v1", transport=httpx.MockTransport(answer))
    polar = AnswerForm("polar", options=("yes", "no"))
    assert llm.chat(HELLO, Sampling(max_tokens=4), form=polar).text == "Paris"
    assert llm.chat(HELLO, Sampling(max_tokens=4), form=polar).text == "Paris"
    assert ["grammar" in b for b in bodies] == [True, False, False]  # refused once, remembered
