"""Model I/O: GGUF names, the q/k permutation, adapter files, and parity between
transformers(+LoRA) and llama.cpp(+adapter) for every supported architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gguf import GGUFReader

from sleuth.agent.models.catalog import gemma_model_path, qwen_model_path
from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.store import Dirs
from sleuth.train.model_io import (
    LoraFactors,
    ModelIOError,
    attach_lora,
    factors_from_peft,
    gguf_tensor_name,
    load_base,
    merge_factors,
    permute_rows,
    write_gguf_adapter,
)


def test_permutation_matches_llama_cpp_converter_by_hand():
    # 2 heads of dim 4: rows [a0 a1 a2 a3 | b0 b1 b2 b3] -> interleave each head's halves.
    rows = np.arange(8).reshape(8, 1)
    assert permute_rows(rows, n_head=2).ravel().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]
    # With fewer KV heads, k is permuted by n_head_kv.
    assert permute_rows(rows, n_head=4, n_head_kv=2).ravel().tolist() == [0, 2, 1, 3, 4, 6, 5, 7]


def test_gguf_tensor_names():
    assert gguf_tensor_name("model.layers.3.self_attn.q_proj") == "blk.3.attn_q.weight"
    assert gguf_tensor_name("model.layers.0.mlp.down_proj") == "blk.0.ffn_down.weight"
    with pytest.raises(ModelIOError, match="No GGUF name"):
        gguf_tensor_name("model.embed_tokens")


def test_combined_factors_are_exactly_parent_then_child(tmp_path):
    torch.manual_seed(0)
    parent = LoraFactors({"m.q": (torch.randn(4, 10), torch.randn(6, 4), 2.0)})
    child = LoraFactors(
        {
            "m.q": (torch.randn(8, 10), torch.randn(6, 8), 0.5),
            "m.v": (torch.randn(8, 10), torch.randn(6, 8), 0.5),
        }
    )
    combined = parent.combined_with(child)
    assert combined.rank == 12
    assert torch.allclose(
        combined.delta("m.q"), parent.delta("m.q") + child.delta("m.q"), atol=1e-5
    )
    assert torch.allclose(combined.delta("m.v"), child.delta("m.v"), atol=1e-6)
    combined.save(tmp_path / "f.safetensors")
    again = LoraFactors.load(tmp_path / "f.safetensors")
    assert torch.allclose(again.delta("m.q"), combined.delta("m.q"))


def test_adapter_gguf_has_the_layout_llama_cpp_expects(tiny_hf, tmp_path):
    peft = attach_lora(_fresh(tiny_hf), r=4, alpha=8)
    path = write_gguf_adapter(
        factors_from_peft(peft),
        tmp_path / "a.gguf",
        architecture="llama",
        n_head=tiny_hf.n_head,
        n_head_kv=tiny_hf.n_head_kv,
    )
    reader = GGUFReader(path)
    fields = reader.fields
    assert fields["general.type"].contents() == "adapter"
    assert fields["adapter.type"].contents() == "lora"
    assert fields["general.architecture"].contents() == "llama"
    assert fields["adapter.lora.alpha"].contents() == pytest.approx(4.0)
    shapes = {t.name: tuple(int(x) for x in t.shape) for t in reader.tensors}
    # ggml lists dimensions innermost first: lora_a is (r, in) in torch, (in, r) here.
    assert shapes["blk.0.attn_q.weight.lora_a"] == (64, 4)
    assert shapes["blk.0.attn_q.weight.lora_b"] == (4, 64)
    assert shapes["blk.1.ffn_down.weight.lora_a"] == (128, 4)
    assert len(shapes) == 2 * 7 * 2  # 7 projections x 2 layers x (a, b)


def _fresh(base):
    """A copy of the base model (attach_lora modifies the module in place)."""
    import copy

    return copy.deepcopy(base.model)


def _cpp_logits(path, ids, adapter=None):
    llm = LlamaCppLLM(path, adapter_path=adapter, n_ctx=512, logits_all=True)
    llama = llm.llama
    llama.reset()
    llama.eval(ids)
    out = torch.tensor(np.array(llama.scores[: len(ids)]))
    llm.close()
    return out


def _corr(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten() - a.mean(), b.flatten() - b.mean()
    return float(a @ b / (a.norm() * b.norm()))


def check_parity(base, ids: list[int], tmp_path) -> dict:
    """Base logits and the adapter's effect, transformers vs llama.cpp, on the same ids."""
    x = torch.tensor([ids])
    with torch.no_grad():
        torch_base = base.model(x).logits[0].float()
    cpp_base = _cpp_logits(base.gguf_path, ids)
    torch.manual_seed(0)
    peft = attach_lora(_fresh(base), r=8, alpha=16)
    # Scale a random adapter until its effect is about half the logits' norm: well above the
    # quantisation noise (about 4% here), not so large that it saturates the softmaxes.
    std = 0.005
    while True:
        with torch.no_grad():
            generator = torch.Generator().manual_seed(0)  # the same direction at every scale
            for name, param in peft.named_parameters():
                if "lora_A" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * 0.05)
                if "lora_B" in name:
                    param.copy_(torch.randn(param.shape, generator=generator) * std)
            torch_lora = peft(x).logits[0].float()
        if (torch_lora - torch_base).norm() / torch_base.norm() >= 0.4 or std > 1:
            break
        std *= 1.5
    adapter = write_gguf_adapter(
        factors_from_peft(peft),
        tmp_path / "parity.gguf",
        architecture=base.architecture,
        n_head=base.n_head,
        n_head_kv=base.n_head_kv,
    )
    cpp_lora = _cpp_logits(base.gguf_path, ids, adapter)
    torch_effect, cpp_effect = torch_lora - torch_base, cpp_lora - cpp_base
    return {
        "base_corr": _corr(torch_base, cpp_base),
        "top1": float((torch_base.argmax(-1) == cpp_base.argmax(-1)).float().mean()),
        "effect_corr": _corr(torch_effect, cpp_effect),
        "norm_ratio": float(cpp_effect.norm() / torch_effect.norm()),
    }


def test_tiny_model_written_by_our_gguf_writer_matches_in_both_runtimes(tiny_hf, tmp_path):
    ids = tiny_hf.tokenizer("The Rhône flows through Lyon", add_special_tokens=False).input_ids
    result = check_parity(tiny_hf, ids, tmp_path)
    assert result["base_corr"] > 0.9999 and result["top1"] == 1  # F32: no quantisation at all
    assert result["effect_corr"] > 0.999 and 0.98 < result["norm_ratio"] < 1.02


@pytest.mark.slow
def test_parity_llama_smollm2(model_path, train_cache, tmp_path):
    base = load_base(model_path, train_cache)
    ids = base.tokenizer(
        "The capital of France is Paris. The river that flows through Paris is the",
        add_special_tokens=False,
    ).input_ids
    result = check_parity(base, ids, tmp_path)
    assert result["base_corr"] > 0.99 and result["top1"] == 1, result
    assert result["effect_corr"] > 0.95, result
    assert 0.8 < result["norm_ratio"] < 1.25, result


@pytest.mark.slow
def test_parity_gemma3(tmp_path):
    # Its own cache, deleted when the test passes: the converted model is about 1 GB.
    cache = tmp_path / "cache"
    path = gemma_model_path(Dirs(cache, cache, cache))
    base = load_base(path, cache)  # about 90 s: the tokenizer conversion
    ids = [2] + base.tokenizer(
        "The capital of France is Paris. The river that flows through Paris is the",
        add_special_tokens=False,
    ).input_ids
    result = check_parity(base, ids, tmp_path)
    assert result["base_corr"] > 0.99 and result["top1"] == 1, result
    assert result["effect_corr"] > 0.95, result
    assert 0.8 < result["norm_ratio"] < 1.25, result


@pytest.mark.slow
def test_parity_qwen2(tmp_path):
    # Its own cache, deleted when the test passes: the joined GGUF and the converted model
    # are about 3 GB together.
    cache = tmp_path / "cache"
    path = qwen_model_path(Dirs(cache, cache, cache))  # six parts, joined
    base = load_base(path, cache)
    assert base.architecture == "qwen2"
    ids = base.tokenizer(
        "The capital of France is Paris. The river that flows through Paris is the",
        add_special_tokens=False,
    ).input_ids
    result = check_parity(base, ids, tmp_path)
    # Q4_K_M leaves near-ties that llama.cpp's quantised dot products (activations in Q8)
    # break the other way at a position or two; the logits themselves agree closely.
    assert result["base_corr"] > 0.99 and result["top1"] >= 0.85, result
    assert result["effect_corr"] > 0.95, result
    assert 0.8 < result["norm_ratio"] < 1.25, result


def test_merging_factors_adds_the_adapter_into_the_weights(tiny_hf):
    model = _fresh(tiny_hf)
    name = "model.layers.0.self_attn.v_proj"
    weight = dict(model.named_modules())[name].weight
    before = weight.detach().clone()
    a, b = torch.randn(2, weight.shape[1]), torch.randn(weight.shape[0], 2)
    merge_factors(model, LoraFactors({name: (a, b, 0.5)}))
    assert torch.allclose(weight.detach() - before, 0.5 * b @ a, atol=1e-5)
