"""The model registry service: what may be activated over which base, and rolling back."""

from __future__ import annotations

import pytest

from sleuth.agent.errors import ModelError
from sleuth.agent.models.files import fingerprint
from sleuth.agent.models.registry import ModelRegistry, RegistryError
from tests.builders import write_adapter


@pytest.fixture
def registry(store):
    return ModelRegistry(store)


def adapter_over(registry, base_path, adapter_path, parent_id, name="sft-1"):
    return registry.register_adapter(
        name=name,
        base_path=base_path,
        adapter_path=adapter_path,
        parent_id=parent_id,
        training_run_id=None,
    )


def test_activate_then_roll_back_over_the_same_base(registry, store, tiny_gguf, tmp_path):
    base = registry.ensure_base(tiny_gguf)
    assert registry.ensure_base(tiny_gguf) == base  # registered once
    first = adapter_over(registry, tiny_gguf, write_adapter(tmp_path / "a.gguf"), base.id)
    child = adapter_over(
        registry, tiny_gguf, write_adapter(tmp_path / "b.gguf", seed=1), first.id, "dpo-2"
    )
    assert registry.current(tiny_gguf) == base  # nothing activated: the base runs
    registry.activate(child.id, tiny_gguf)
    assert registry.active(fingerprint(tiny_gguf)).id == child.id
    assert registry.rollback(tiny_gguf).id == first.id  # the parent, not the base
    assert registry.rollback(tiny_gguf).id == base.id
    assert registry.rollback(tiny_gguf) is None  # the base is already active
    assert sum(m.active for m in store.registry.models()) == 1


def test_an_adapter_for_another_base_model_is_refused(registry, store, tiny_gguf, model_path):
    # Trained over the tiny model; the configured base is SmolLM2.
    adapter = adapter_over(
        registry,
        tiny_gguf,
        write_adapter(tiny_gguf.parent / "other.gguf"),
        registry.ensure_base(tiny_gguf).id,
    )
    with pytest.raises(RegistryError, match="was trained on .*tiny.gguf, not the configured"):
        registry.activate(adapter.id, model_path)
    assert store.registry.active(fingerprint(model_path)) is None
    assert store.registry.active(fingerprint(tiny_gguf)) is None  # nothing changed


def test_a_missing_or_corrupt_adapter_file_is_refused(registry, store, tiny_gguf, tmp_path):
    base = registry.ensure_base(tiny_gguf)
    gone = adapter_over(registry, tiny_gguf, tmp_path / "deleted.gguf", base.id)
    with pytest.raises(RegistryError, match="is missing"):
        registry.activate(gone.id, tiny_gguf)
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(b"GGUF" + b"\0" * 64)
    broken = adapter_over(registry, tiny_gguf, corrupt, base.id, "broken")
    with pytest.raises(RegistryError, match="cannot be used"):
        registry.activate(broken.id, tiny_gguf)
    not_adapter = adapter_over(registry, tiny_gguf, tiny_gguf, base.id, "a base, not an adapter")
    with pytest.raises(RegistryError, match="not a LoRA adapter"):
        registry.activate(not_adapter.id, tiny_gguf)
    assert store.registry.active(fingerprint(tiny_gguf)) is None


def test_a_truncated_model_file_never_becomes_a_registry_row(registry, store, model_path, tmp_path):
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(model_path.read_bytes()[:50_000_000])  # the header survives
    with pytest.raises(ModelError, match="truncated or corrupt"):
        registry.ensure_base(truncated)
    assert store.registry.models() == []
