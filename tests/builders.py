"""Builders of real test fixtures that the product itself never needs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sleuth.train.model_io import GGUF_NAMES, ModelIOError, finish_gguf, permute_rows


def write_gguf_model(
    model: torch.nn.Module, path: Path, *, tokenizer_from: Path, name: str = "sleuth-model"
) -> Path:
    """Write a transformers llama model as an F32 GGUF that llama.cpp (and transformers) load,
    with the tokenizer (vocabulary, merges, special ids, chat template) copied from another
    GGUF of the same vocabulary. Used to build tiny real models for tests."""
    from gguf import GGUFReader, GGUFValueType, GGUFWriter

    config = model.config
    if config.model_type != "llama":
        raise ModelIOError(f"write_gguf_model writes llama models, not {config.model_type}.")
    source = GGUFReader(tokenizer_from)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    writer = GGUFWriter(str(partial), arch="llama")
    writer.add_string("general.name", name)
    writer.add_file_type(0)  # all F32
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(config.num_attention_heads)
    writer.add_head_count_kv(config.num_key_value_heads)
    writer.add_rope_dimension_count(config.hidden_size // config.num_attention_heads)
    writer.add_rope_freq_base(float(getattr(config, "rope_theta", None) or 10000.0))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    writer.add_vocab_size(config.vocab_size)
    for key, value in source.fields.items():
        if key.startswith("tokenizer."):
            sub_type = value.types[1] if value.types[0] == GGUFValueType.ARRAY else None
            writer.add_key_value(key, value.contents(), value.types[0], sub_type)
    state = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items()}
    heads, kv_heads = config.num_attention_heads, config.num_key_value_heads
    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    if not config.tie_word_embeddings:
        writer.add_tensor("output.weight", state["lm_head.weight"])
    for layer in range(config.num_hidden_layers):
        prefix = f"model.layers.{layer}."
        writer.add_tensor(f"blk.{layer}.attn_norm.weight", state[prefix + "input_layernorm.weight"])
        writer.add_tensor(
            f"blk.{layer}.ffn_norm.weight", state[prefix + "post_attention_layernorm.weight"]
        )
        for module, gguf_name in GGUF_NAMES.items():
            weight = state[f"{prefix}{module}.weight"]
            if module == "self_attn.q_proj":
                weight = permute_rows(weight, heads, heads)
            elif module == "self_attn.k_proj":
                weight = permute_rows(weight, heads, kv_heads)
            writer.add_tensor(f"blk.{layer}.{gguf_name}.weight", np.ascontiguousarray(weight))
    return finish_gguf(writer, partial, path)


def write_adapter(path: Path, *, hidden: int = 64, rank: int = 2, seed: int = 0) -> Path:
    """A small LoRA adapter GGUF (layer 0's q_proj) for a llama model of width `hidden`, such
    as the tiny test model: a real file that llama.cpp and the registry's checks read."""
    from sleuth.train.model_io import LoraFactors, write_gguf_adapter

    generator = torch.Generator().manual_seed(seed)
    a = torch.randn(rank, hidden, generator=generator) * 0.01
    b = torch.randn(hidden, rank, generator=generator) * 0.01
    factors = LoraFactors({"model.layers.0.self_attn.q_proj": (a, b, 1.0)})
    return write_gguf_adapter(
        factors, path, architecture="llama", n_head=4, n_head_kv=2, name=path.stem
    )
