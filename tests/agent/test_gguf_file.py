"""Model files read in one place: the header walk finds keys in any order, skips arrays,
and says in one sentence what is wrong with a file that is not a model."""

from __future__ import annotations

import pytest

from sleuth.agent.errors import ModelError
from sleuth.agent.models import files as gguf_file


def write_gguf(path, *, first_key: str = "general.name", arch: str = "llama"):
    """A tensor-less GGUF with an array, and general.architecture last (GGUFWriter puts it
    first; the format does not)."""
    from gguf import GGUFWriter

    writer = GGUFWriter(str(path), arch=arch)
    writer.add_string(first_key, "made up")
    writer.add_array("tokenizer.ggml.tokens", ["a", "bb", "ccc"] * 1000)
    writer.add_context_length(4096)
    writer.add_string("tokenizer.chat_template", "{{ messages }}")
    keys = writer.kv_data[0]
    keys["general.architecture"] = keys.pop("general.architecture")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path


def test_the_default_model_says_what_it_is(model_path):
    assert gguf_file.architecture(model_path) == "llama"
    assert gguf_file.training_context(model_path) == 8192
    found = gguf_file.metadata(model_path)
    assert "tokenizer.chat_template" in found and "tokenizer.ggml.tokens" not in found


def test_keys_are_found_wherever_they_stand(tmp_path):
    path = write_gguf(tmp_path / "m.gguf")
    from gguf import GGUFReader

    assert list(GGUFReader(path).fields)[-1] == "general.architecture"
    assert gguf_file.architecture(path) == "llama"
    found = gguf_file.metadata(path)
    assert found["general.name"] == "made up" and found["llama.context_length"] == 4096
    assert found["tokenizer.chat_template"] == "{{ messages }}"
    assert gguf_file.metadata(path, {"general.name"}) == {"general.name": "made up"}


def test_a_cut_header_is_one_sentence(tmp_path):
    whole = write_gguf(tmp_path / "m.gguf").read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole[:200])  # inside the token array
    with pytest.raises(ModelError, match="corrupt GGUF header"):
        gguf_file.metadata(cut)
    not_gguf = tmp_path / "x.gguf"
    not_gguf.write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(ModelError, match="is not a GGUF model file"):
        gguf_file.architecture(not_gguf)


def test_only_a_lora_adapter_passes_as_one(tmp_path, model_path):
    from tests.builders import write_adapter

    gguf_file.check_adapter(write_adapter(tmp_path / "a.gguf"))
    with pytest.raises(ModelError, match="not a LoRA adapter"):
        gguf_file.check_adapter(model_path)
