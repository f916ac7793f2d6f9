"""A tiny real model for training tests: SmolLM2's real tokenizer, tiny random llama weights,
written to GGUF by our own writer, so llama.cpp and transformers both load it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def train_cache(tmp_path_factory) -> Path:
    """One cache for the session: converting a GGUF for training happens once."""
    return tmp_path_factory.mktemp("train-cache")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory, model_path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    from sleuth.train.model_io import write_gguf_model

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
