"""Model I/O: the GGUF that llama.cpp runs, loaded into transformers; LoRA adapters as GGUF.

- `load_base` dequantises the GGUF through transformers (`gguf_file=`), so the trainer
  optimises exactly the weights inference uses, and caches the result (model and tokenizer)
  on disk keyed by the file's fingerprint: the second load takes seconds, not minutes.
- An adapter's weights are kept as `LoraFactors` in the HF layout: per module, A (r, in),
  B (out, r) and a scale. A child adapter trained over a parent is the concatenation of both
  along the rank (scales folded into B), so it is still one exact LoRA over the untouched base.
- `write_gguf_adapter` writes what llama.cpp loads: general.type=adapter, adapter.type=lora,
  adapter.lora.alpha, tensors `<base tensor>.lora_a` (r, in) and `.lora_b` (out, r). For the
  llama architecture the rows of q_proj/k_proj's B are permuted the way llama.cpp's converter
  permutes q/k weights (by n_head / n_head_kv); gemma3 and qwen2/3 need no permutation.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sleuth.agent.models.files import architecture as gguf_architecture
from sleuth.agent.models.files import fingerprint
from sleuth.store.paths import private_dir, private_file

from .errors import ModelIOError

log = logging.getLogger(__name__)

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
SUPPORTED_ARCHITECTURES = {
    "llama": True,
    "gemma3": False,
    "qwen2": False,
    "qwen3": False,
}  # -> permute q/k


@dataclass
class BaseModel:
    """The base model in torch, with what adapters need to know about it."""

    model: torch.nn.Module
    tokenizer: object
    gguf_path: Path
    architecture: str
    n_head: int
    n_head_kv: int
    chat_template: str | None


def _quiet_transformers() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def load_base(
    gguf_path: Path, cache_dir: Path, *, dtype: torch.dtype = torch.float32, device: str = "cpu"
) -> BaseModel:
    """The GGUF's weights, dequantised into a transformers model, cached by fingerprint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    architecture = gguf_architecture(gguf_path)
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ModelIOError(
            f"Training supports {', '.join(SUPPORTED_ARCHITECTURES)} models; {gguf_path.name} is "
            f"{architecture}."
        )
    cached = cache_dir / "hf" / fingerprint(gguf_path)
    if not (cached / "config.json").exists():
        log.info("converting %s for training (once; cached in %s)", gguf_path.name, cached)
        try:
            tokenizer = AutoTokenizer.from_pretrained(
                str(gguf_path.parent), gguf_file=gguf_path.name
            )
            model = AutoModelForCausalLM.from_pretrained(
                str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ModelIOError(f"transformers could not load {gguf_path}: {exc}") from exc
        # The GGUF "quantizer" only marks how the weights were read: they are dequantised
        # already, so the model can be saved as plain float32 once the marker is cleared.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        partial = cached.with_name(cached.name + ".partial")
        cached.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        os.replace(partial, cached) if not cached.exists() else shutil.rmtree(partial)
    tokenizer = AutoTokenizer.from_pretrained(str(cached))
    model = AutoModelForCausalLM.from_pretrained(str(cached), dtype=dtype).to(device)
    model.config.use_cache = False
    config = model.config
    return BaseModel(
        model=model,
        tokenizer=tokenizer,
        gguf_path=gguf_path,
        architecture=architecture,
        n_head=config.num_attention_heads,
        n_head_kv=getattr(config, "num_key_value_heads", None) or config.num_attention_heads,
        chat_template=getattr(tokenizer, "chat_template", None),
    )


# -- LoRA factors ------------------------------------------------------------------------------


@dataclass
class LoraFactors:
    """Per module (e.g. "model.layers.0.self_attn.q_proj"): A (r, in), B (out, r), scale.
    The module's weight change is scale * B @ A."""

    modules: dict[str, tuple[torch.Tensor, torch.Tensor, float]] = field(default_factory=dict)

    @property
    def rank(self) -> int:
        return max((a.shape[0] for a, _, _ in self.modules.values()), default=0)

    def combined_with(self, child: LoraFactors) -> LoraFactors:
        """One LoRA equal to self followed by child: ranks concatenated, scales folded."""
        out = LoraFactors()
        for name in sorted(set(self.modules) | set(child.modules)):
            parts = [f for f in (self.modules.get(name), child.modules.get(name)) if f is not None]
            a = torch.cat([p[0] for p in parts], dim=0)
            b = torch.cat([p[1] * p[2] for p in parts], dim=1)
            out.modules[name] = (a, b, 1.0)
        return out

    def delta(self, name: str) -> torch.Tensor:
        a, b, scale = self.modules[name]
        return scale * (b.float() @ a.float())

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        private_dir(path.parent)
        tensors, scales = {}, {}
        for name, (a, b, scale) in self.modules.items():
            tensors[f"{name}.lora_A"] = a.detach().float().contiguous().cpu()
            tensors[f"{name}.lora_B"] = b.detach().float().contiguous().cpu()
            scales[name] = scale
        save_file(tensors, str(path), metadata={"scales": json.dumps(scales)})
        private_file(path)

    @classmethod
    def load(cls, path: Path) -> LoraFactors:
        from safetensors import safe_open

        out = cls()
        with safe_open(str(path), framework="pt") as handle:
            scales = json.loads(handle.metadata()["scales"])
            for name, scale in scales.items():
                out.modules[name] = (
                    handle.get_tensor(f"{name}.lora_A"),
                    handle.get_tensor(f"{name}.lora_B"),
                    float(scale),
                )
        return out


def attach_lora(model: torch.nn.Module, r: int, alpha: float, dropout: float = 0.0):
    """A fresh peft LoRA on attention and MLP projections (never embeddings or lm_head)."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=r,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules=LORA_TARGETS,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


_PEFT_PREFIX = "base_model.model."  # what peft puts before the base model's module names


def _scale(peft_model) -> float:
    """The LoRA's scale, alpha / r (or / sqrt(r) with rsLoRA), from the adapter's config."""
    config = peft_model.active_peft_config
    return config.lora_alpha / (config.r**0.5 if config.use_rslora else config.r)


def factors_from_peft(peft_model) -> LoraFactors:
    """The trained LoRA of a peft model (peft's own state dict) as factors keyed by the base
    module name."""
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(peft_model)
    scale = _scale(peft_model)
    out = LoraFactors()
    for key, a in state.items():
        if key.endswith(".lora_A.weight"):
            name = key.removeprefix(_PEFT_PREFIX).removesuffix(".lora_A.weight")
            b = state[key.replace(".lora_A.", ".lora_B.")]
            out.modules[name] = (a.detach().clone(), b.detach().clone(), scale)
    return out


def load_factors_into_peft(peft_model, factors: LoraFactors) -> None:
    """Put saved factors back into a peft model of the same rank (resuming a checkpoint),
    through peft's own state-dict loader; a factor the model has no place for is an error."""
    from peft import set_peft_model_state_dict

    state = {}
    for name, (a, b, _) in factors.modules.items():
        state[f"{_PEFT_PREFIX}{name}.lora_A.weight"] = a
        state[f"{_PEFT_PREFIX}{name}.lora_B.weight"] = b
    result = set_peft_model_state_dict(peft_model, state)
    if result.unexpected_keys:
        raise ModelIOError(f"The saved LoRA does not fit this model: {result.unexpected_keys[:3]}")


@torch.no_grad()
def merge_factors(model: torch.nn.Module, factors: LoraFactors) -> None:
    """Add an adapter's change into the model's weights (training a child over its parent)."""
    modules = dict(model.named_modules())
    for name in factors.modules:
        layer = modules[name]
        layer.weight += factors.delta(name).to(layer.weight.dtype).to(layer.weight.device)


# -- GGUF --------------------------------------------------------------------------------------


def permute_rows(weights: np.ndarray, n_head: int, n_head_kv: int | None = None) -> np.ndarray:
    """llama.cpp's q/k row order (convert_hf_to_gguf.py's permute), applied to (out, ...)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def gguf_tensor_name(module: str) -> str:
    """model.layers.3.self_attn.q_proj -> blk.3.attn_q.weight"""
    parts = module.split(".")
    if len(parts) < 5 or parts[0] != "model" or parts[1] != "layers":
        raise ModelIOError(f"No GGUF name for module {module}")
    suffix = ".".join(parts[3:])
    if suffix not in GGUF_NAMES:
        raise ModelIOError(f"No GGUF name for module {module}")
    return f"blk.{parts[2]}.{GGUF_NAMES[suffix]}.weight"


def write_gguf_adapter(
    factors: LoraFactors,
    path: Path,
    *,
    architecture: str,
    n_head: int,
    n_head_kv: int,
    name: str = "sleuth-adapter",
) -> Path:
    """Write `factors` as a llama.cpp LoRA adapter GGUF (atomically)."""
    from gguf import GGUFWriter

    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ModelIOError(f"Cannot export adapters for {architecture} models.")
    permute = SUPPORTED_ARCHITECTURES[architecture]
    # alpha equal to the rank makes llama.cpp's scale (alpha / rank) 1; scales live in B.
    single = LoraFactors().combined_with(factors)
    rank = single.rank
    private_dir(path.parent)
    partial = path.with_name(path.name + ".partial")
    writer = GGUFWriter(str(partial), arch=architecture)
    writer.add_string("general.type", "adapter")
    writer.add_string("general.name", name)
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", float(rank))
    for module in sorted(single.modules):
        a, b, _ = single.modules[module]
        if a.shape[0] != rank:  # pad a smaller rank with zeros: the product is unchanged
            a = torch.cat([a, a.new_zeros(rank - a.shape[0], a.shape[1])], dim=0)
            b = torch.cat([b, b.new_zeros(b.shape[0], rank - b.shape[1])], dim=1)
        a_np = a.detach().float().cpu().numpy()
        b_np = b.detach().float().cpu().numpy()
        if permute and module.endswith("self_attn.q_proj"):
            b_np = permute_rows(b_np, n_head, n_head)
        elif permute and module.endswith("self_attn.k_proj"):
            b_np = permute_rows(b_np, n_head, n_head_kv)
        tensor = gguf_tensor_name(module)
        writer.add_tensor(f"{tensor}.lora_a", np.ascontiguousarray(a_np, dtype=np.float32))
        writer.add_tensor(f"{tensor}.lora_b", np.ascontiguousarray(b_np, dtype=np.float32))
    return finish_gguf(writer, partial, path)


def finish_gguf(writer, partial: Path, path: Path) -> Path:
    """Write out a GGUFWriter's file and move it into place (readers never see half a file)."""
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(private_file(partial), path)
    return path
