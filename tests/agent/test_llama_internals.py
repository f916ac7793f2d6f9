"""The parts of llama-cpp-python that agent/models/llama.py uses and that are not its public API.

llama-cpp-python is pinned (pyproject.toml, Makefile) to the version these were read from. A
new version that moves or renames one of them fails here, loudly and by name, instead of
silently falling back to slower decoding or, worse, loading a model without its adapter."""

from __future__ import annotations

import inspect
from importlib import metadata

import pytest

PINNED = "0.3.36"


def test_the_installed_llama_cpp_python_is_the_pinned_one():
    assert metadata.version("llama_cpp_python") == PINNED, (
        "llama-cpp-python changed: check the private parts below still hold, then move the pin "
        "in pyproject.toml and the Makefile"
    )


def test_the_sampler_hook_and_the_grammar_fields_are_where_sleuth_reaches_them():
    import llama_cpp
    from llama_cpp import Llama, LlamaGrammar

    parameters = inspect.signature(Llama._init_sampler).parameters
    assert {"grammar", "logits_processor"} <= set(parameters)
    grammar = LlamaGrammar.from_string('root ::= "yes" | "no"', verbose=False)
    assert isinstance(grammar._grammar, str) and isinstance(grammar._root, str)
    for name in (
        "llama_get_logits_ith",
        "llama_sampler_init_grammar",
        "llama_sampler_apply",
        "llama_sampler_accept",
        "llama_sampler_free",
        "llama_token_data",
        "llama_token_data_array",
        "llama_vocab_is_eog",
        "llama_log_set",
        "llama_log_callback",
    ):
        assert hasattr(llama_cpp, name), name


@pytest.mark.slow
def test_a_loaded_model_has_the_private_fields_sleuth_reads(real_llm):
    llama = real_llm.llama
    assert llama._model.vocab is not None and isinstance(llama._n_vocab, int)
    assert llama._model.token_get_text(llama.token_eos())
    assert hasattr(llama, "_input_ids") and hasattr(llama, "_lora_adapter")
    sampler = llama._init_sampler(temp=0.0)
    assert hasattr(sampler, "sampler") and callable(sampler.accept) and callable(sampler.close)
    sampler.close()
