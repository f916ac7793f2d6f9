"""The OpenAI-compatible backend against a real llama-cpp-python server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sleuth.agent.errors import ModelError
from sleuth.agent.models.http_llm import OpenAILLM
from sleuth.agent.models.llm import Sampling, chat_json
from tests.agent.test_llm import PLAN_SCHEMA

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(model_path, tmp_path_factory):
    port = free_port()
    # The server logs verbosely; a pipe would fill up and stall it, so log to a file.
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"llama_cpp.server exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/models", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)  # waiting for another process to bind its port
    else:
        process.kill()
        pytest.fail("llama_cpp.server did not start within 60 s")
    yield url
    process.terminate()
    process.wait(timeout=10)
    log.close()


def test_streams_a_chat_answer(server):
    llm = OpenAILLM(server)
    pieces: list[str] = []
    completion = llm.chat(
        [{"role": "user", "content": "Write one sentence about rivers."}],
        Sampling(max_tokens=20, seed=1, temperature=0.0),
        on_token=pieces.append,
    )
    assert completion.text.strip()
    assert "".join(pieces) == completion.text
    assert len(pieces) > 1  # it really streamed
    assert 0 < completion.completion_tokens <= 20
    llm.close()


def test_schema_output_is_valid_json_and_the_working_style_is_remembered(server):
    llm = OpenAILLM(server)
    messages = [{"role": "user", "content": "Plan research on: who built the Eiffel Tower?"}]
    plan, _ = chat_json(llm, messages, PLAN_SCHEMA, Sampling(max_tokens=200, seed=2))
    assert plan["subquestions"][0]["tool"] in {"web_search", "search_library"}
    # llama-cpp-python's server ignores "json_schema" and honours "json_object" + schema.
    assert llm._schema_style == "json_object"
    plan, _ = chat_json(llm, messages, PLAN_SCHEMA, Sampling(max_tokens=200, seed=3))
    assert plan["subquestions"]
    llm.close()


def test_counts_tokens_with_the_servers_tokenizer(server, real_llm):
    llm = OpenAILLM(server)
    text = "Counting tokens the way the model does."
    assert llm.count_tokens(text) == real_llm.count_tokens(text)
    llm.close()


def test_unreachable_server_is_one_clear_error():
    llm = OpenAILLM(f"http://127.0.0.1:{free_port()}/v1", timeout=2)
    with pytest.raises(ModelError, match="Cannot reach the model server"):
        llm.chat([{"role": "user", "content": "hi"}], Sampling(max_tokens=2))


def test_server_errors_are_reported_with_the_status(server):
    llm = OpenAILLM(server.removesuffix("/v1") + "/nowhere")
    with pytest.raises(ModelError, match="answered 404"):
        llm.chat([{"role": "user", "content": "hi"}], Sampling(max_tokens=2))


def test_endpoint_must_be_http():
    with pytest.raises(ModelError, match="not an http"):
        OpenAILLM("file:///etc/passwd")


@pytest.mark.parametrize(
    ("endpoint", "local_only", "key", "allowed", "refusal"),
    [
        ("http://127.0.0.1:8080/v1", True, True, False, None),  # this machine: fine either way
        ("http://localhost:8080/v1", True, False, False, None),
        ("https://models.example.org/v1", True, False, False, "local-only mode is on"),
        ("http://models.example.org/v1", False, True, False, "over plain http"),
        ("http://models.example.org/v1", False, True, True, None),  # the user said so
        ("http://models.example.org/v1", False, False, False, None),  # no key to leak
        ("https://models.example.org/v1", False, True, False, None),
    ],
)
def test_local_only_and_keys_over_plain_http(endpoint, local_only, key, allowed, refusal):
    from sleuth.agent.models.catalog import check_endpoint

    if refusal is None:
        check_endpoint(endpoint, local_only=local_only, key=key, key_over_http=allowed)
    else:
        with pytest.raises(ModelError, match=refusal):
            check_endpoint(endpoint, local_only=local_only, key=key, key_over_http=allowed)


def test_local_only_refuses_a_remote_model_server_before_any_request(monkeypatch):
    from sleuth.agent.models.catalog import open_llm
    from sleuth.store import app_dirs
    from sleuth.store.settings import load_settings

    settings = load_settings(
        None,
        env={},
        flags={
            "model.backend": "openai",
            "model.endpoint": "http://user:secret@10.1.2.3:8080/v1",
            "network.local_only": True,
        },
    )
    with pytest.raises(ModelError, match="local-only") as refused:
        open_llm(settings, app_dirs())
    assert "secret" not in str(refused.value) and "***@10.1.2.3" in str(refused.value)


def test_a_busy_model_server_is_retried_and_the_retry_is_reported():
    answers = iter(
        [
            httpx.Response(503, headers={"Retry-After": "0"}, text="loading the model"),
            httpx.Response(
                200,
                headers={"Content-Type": "text/event-stream"},
                text='data: {"choices": [{"delta": {"content": "Paris"}}]}\n\n'
                'data: {"choices": [{"delta": {}, "finish_reason": "stop"}]}\n\ndata: [DONE]\n\n',
            ),
        ]
    )
    llm = OpenAILLM(
        "http://127.0.0.1:9/v1", transport=httpx.MockTransport(lambda request: next(answers))
    )
    completion = llm.chat([{"role": "user", "content": "Capital?"}], Sampling(max_tokens=5))
    assert completion.text == "Paris"
    (retry,) = completion.retries
    assert retry["attempt"] == 1 and retry["wait_s"] == 0 and "503" in retry["error"]
    refused = OpenAILLM(
        "http://127.0.0.1:9/v1",
        transport=httpx.MockTransport(lambda request: httpx.Response(404, text="no such model")),
    )
    with pytest.raises(ModelError, match="answered 404"):  # not transient: no retry
        refused.chat([{"role": "user", "content": "Capital?"}], Sampling(max_tokens=5))


def test_the_default_ask_works_over_a_model_server(server, tmp_path, sleuth_home):
    """`sleuth ask --json` with every setting at its default but the backend: the reader's
    form goes to the server (a grammar for yes/no) or is applied after (a span)."""

    library = tmp_path / "lib"
    library.mkdir()
    (library / "rivers.md").write_text(
        "# Rivers\n\nThe Seine flows through Paris. The Rhone flows through Lyon.\n"
    )
    env = {
        **os.environ,
        "SLEUTH_HOME": str(sleuth_home),
        "SLEUTH_MODEL_BACKEND": "openai",
        "SLEUTH_MODEL_ENDPOINT": server,
        "SLEUTH_MODEL_N_CTX": "2048",
    }
    for question in ("Which river flows through Lyon?", "Does the Seine flow through Paris?"):
        done = subprocess.run(
            [
                str(Path(sys.executable).parent / "sleuth"),
                "ask",
                "--json",
                "--no-web",
                "--library",
                str(library),
                "--seed",
                "1",
                question,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        assert "Traceback" not in done.stderr, done.stderr
        result = json.loads(done.stdout)
        assert result["status"] == "done", (result, done.stderr)
        assert result["verification"]["answer"] == "read"  # the default, not the free writer
        if question.startswith("Does"):
            assert result["short_answer"].lower() in {"yes", "no"}


def test_a_yes_no_form_is_held_by_the_servers_grammar(server):
    from sleuth.agent.research.reader import AnswerForm

    llm = OpenAILLM(server)
    completion = llm.chat(
        [{"role": "user", "content": "Is water wet? Explain at length."}],
        Sampling(max_tokens=8, seed=1, temperature=0.0),
        form=AnswerForm("polar", options=("yes", "no")),
    )
    assert completion.text.strip().lower() in {"yes", "no"}
    assert llm._grammar_ok  # this server took the grammar
    llm.close()


def test_a_span_answer_from_a_server_is_cut_to_what_the_evidence_holds():
    from sleuth.agent.models.grammars import held_to
    from sleuth.agent.research.reader import AnswerForm

    form = AnswerForm("span", sources=("Rivers . The Vilnia flows through Kaunas to the sea.",))
    assert held_to(form, "Kaunas to the s") == "Kaunas to the s"  # permitted: run on later
    assert held_to(form, "Kaunas to the sea, because it is") == "Kaunas to the sea"
    assert held_to(form, "a river, the Vilnia flows") == "the Vilnia flows"  # from a word on
    assert held_to(form, "Paris") == "Paris"  # nowhere in it: left for the reader to refuse
    polar = AnswerForm("polar", options=("yes", "no"))
    assert held_to(polar, "Yes.") == "Yes" and held_to(polar, "No, it is not") == "No"


def test_a_span_form_becomes_a_grammar_of_the_evidences_word_runs():
    import llama_cpp

    from sleuth.agent.models.grammars import form_grammar
    from sleuth.agent.research.reader import AnswerForm

    grammar = form_grammar(AnswerForm("span", sources=("Rivers . The Vilnia flows to Kaunas.",)))
    llama_cpp.LlamaGrammar.from_string(grammar, verbose=False)  # llama.cpp parses it
    root = grammar.splitlines()[0]
    assert '"Vilnia"' in grammar and '"vilnia"' in grammar  # a word, and lower-cased to start
    assert grammar.count("root ::=") == 1 and "n0" in grammar
    assert '"."' not in root.replace("|", " ").split()  # no span starts at punctuation
    assert form_grammar(AnswerForm("polar", options=("yes", "no"))) == (
        'root ::= "yes" | "Yes" | "no" | "No"'
    )
    # a place is asked: runs of a name's words only (capitalised, or joining ones)
    place = form_grammar(
        AnswerForm("span", sources=("The Vilnia flows to Kaunas in 1927.",), expects="place")
    )
    llama_cpp.LlamaGrammar.from_string(place, verbose=False)
    assert '"Kaunas"' in place and '"Vilnia"' in place
    assert '"flows"' not in place and '"1927"' not in place


def test_a_span_answer_over_the_server_is_a_run_of_the_evidence(server):
    from sleuth.agent.research.reader import AnswerForm

    source = "Rivers . The Vilnia flows through Kaunas, a city of bridges."
    llm = OpenAILLM(server)
    completion = llm.chat(
        [{"role": "user", "content": f"{source}\nWhich city does the Vilnia flow through?"}],
        Sampling(max_tokens=12, seed=1, temperature=0.0, stop=["\n"]),
        form=AnswerForm("span", sources=(source,)),
    )
    answer = " ".join(completion.text.split())
    assert answer and answer.lower() in source.lower(), answer
    llm.close()
