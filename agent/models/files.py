"""Model files, read and checked in one place: what a GGUF says about itself (architecture,
training context, chat template, whether it is a LoRA adapter), whether every tensor it
declares is there, and the fingerprint adapters are keyed by. The loader (agent/models/llama.py),
the model registry (agent/models/registry.py) and the trainer (train/model_io.py) all ask here.

Two readers, for two costs. `metadata` walks the key-value header with the `gguf` package's
type table and stops as soon as it has the keys asked for: a few milliseconds, so every model
load can afford it. `check_complete` opens the file with `gguf.GGUFReader`, which maps every
tensor (and turns each of a 262k vocabulary's tokens into an array): seconds, so it runs when a
model or adapter is registered, not on every load.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import struct
from pathlib import Path
from typing import Any

from sleuth.agent.errors import ModelError

MAGIC = b"GGUF"

# Scalars by GGUF value type (gguf.GGUFValueType): struct format, little-endian.
_SCALARS = {
    0: "B",
    1: "b",
    2: "H",
    3: "h",
    4: "I",
    5: "i",
    6: "f",
    7: "?",
    10: "Q",
    11: "q",
    12: "d",
}
_STRING, _ARRAY = 8, 9


def check_gguf(path: Path) -> None:
    """Fail with one sentence if `path` is not a readable GGUF file (by its first bytes)."""
    if not path.exists():
        raise ModelError(f"Model file {path} does not exist: check the path or `sleuth config`.")
    if path.is_dir():
        raise ModelError(f"Model path {path} is a folder: point it at a .gguf file.")
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ModelError(f"Cannot read the model file {path}: {exc.strerror}.") from exc
    if magic != MAGIC:
        raise ModelError(
            f"{path} is not a GGUF model file (corrupt, truncated or another format): "
            "download it again or pick another file."
        )


def metadata(path: Path, keys: set[str] | None = None) -> dict[str, Any]:
    """The header's scalar and string values (arrays are skipped), all of them or only `keys`
    (the walk stops once it has them). ModelError for a file that is not a readable GGUF."""
    check_gguf(path)
    found: dict[str, Any] = {}
    try:
        with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as m:
            reader = _Reader(m)
            version = reader.unpack("I")
            if version < 2:
                raise ModelError(f"{path} is GGUF version {version}: corrupt, or older than 2.")
            reader.unpack("Q")  # tensors
            for _ in range(reader.unpack("Q")):
                key = reader.string()
                kind = reader.unpack("I")
                if kind == _ARRAY:
                    reader.skip_array()
                    continue
                value = reader.value(kind)
                if keys is None or key in keys:
                    found[key] = value
                    if keys is not None and len(found) == len(keys):
                        break
    except (struct.error, ValueError, IndexError, UnicodeDecodeError, OSError) as exc:
        raise ModelError(
            f"{path} has a corrupt GGUF header ({exc.__class__.__name__}): download it again."
        ) from exc
    return found


class _Reader:
    """Little-endian values from a mapped file, at a moving offset."""

    def __init__(self, data: mmap.mmap):
        self.data, self.at = data, 4  # after the magic

    def unpack(self, form: str) -> Any:
        (value,) = struct.unpack_from("<" + form, self.data, self.at)
        self.at += struct.calcsize(form)
        return value

    def string(self) -> str:
        size = self.unpack("Q")
        if self.at + size > len(self.data):
            raise ValueError("a string runs past the end of the file")
        text = self.data[self.at : self.at + size].decode("utf-8")
        self.at += size
        return text

    def value(self, kind: int) -> Any:
        if kind == _STRING:
            return self.string()
        if kind not in _SCALARS:
            raise ValueError(f"unknown value type {kind}")
        return self.unpack(_SCALARS[kind])

    def skip_array(self) -> None:
        kind, count = self.unpack("I"), self.unpack("Q")
        if kind in _SCALARS:
            self.at += count * struct.calcsize(_SCALARS[kind])
        elif kind == _STRING:
            for _ in range(count):
                self.at += 8 + struct.unpack_from("<Q", self.data, self.at)[0]
        elif kind == _ARRAY:
            for _ in range(count):
                self.skip_array()
        else:
            raise ValueError(f"unknown array type {kind}")
        if self.at > len(self.data):
            raise ValueError("an array runs past the end of the file")


def architecture(path: Path) -> str:
    """general.architecture ("llama", "qwen2", "gemma3"); ModelError when it names none."""
    found = metadata(path, {"general.architecture"}).get("general.architecture")
    if not isinstance(found, str) or not found:
        raise ModelError(f"{path} does not say its architecture; it is not a model.")
    return found


def training_context(path: Path) -> int | None:
    """The context length the model was trained on (`<architecture>.context_length`)."""
    name = architecture(path)
    found = metadata(path, {f"{name}.context_length"}).get(f"{name}.context_length")
    return int(found) if isinstance(found, int) and found > 0 else None


def check_adapter(path: Path) -> None:
    """Fail with one sentence if `path` is not a LoRA adapter GGUF."""
    try:
        found = metadata(path, {"general.type", "adapter.type"})
    except ModelError as exc:
        raise ModelError(f"The adapter {path} is corrupt ({exc}): retrain or roll back.") from exc
    kind, adapter = found.get("general.type"), found.get("adapter.type")
    if kind != "adapter" or adapter != "lora":
        raise ModelError(f"{path} is not a LoRA adapter GGUF (general.type={kind!r}).")


def check_complete(path: Path) -> None:
    """Fail with one sentence unless every tensor `path` declares is in the file (a truncated
    download has the right magic and header but not its tensors). Takes seconds: for
    registering a model, not for every load."""
    check_gguf(path)
    from gguf import GGUFReader

    try:
        GGUFReader(path)
    except (ValueError, KeyError, IndexError, OSError) as exc:
        raise ModelError(
            f"{path} is truncated or corrupt ({exc.__class__.__name__}): download it again."
        ) from exc


def fingerprint(path: Path) -> str:
    """A fast identity for a model file: its size and a hash of its first and last MiB.

    Adapters only fit the base they were trained on; the registry keys them by this."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as handle:
        digest.update(handle.read(1 << 20))
        if size > 2 << 20:
            handle.seek(-(1 << 20), os.SEEK_END)
            digest.update(handle.read(1 << 20))
    return f"{size}-{digest.hexdigest()[:16]}"
