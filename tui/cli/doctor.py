"""`sleuth doctor`: what is installed, whether the model loads, where the data lives."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from sleuth.agent.errors import AgentError
from sleuth.agent.models.catalog import open_llm, resolve_model_path
from sleuth.agent.models.llm import Sampling
from sleuth.store import SCHEMA_VERSION, Dirs, Store, StoreError
from sleuth.store.settings import Settings, redact_url

from ..render import plain
from .context import EXIT_USER_ERROR, Context

PACKAGES = (
    "sleuth",
    "llama-cpp-python",
    "torch",
    "transformers",
    "peft",
    "textual",
    "httpx",
    "trafilatura",
)


def add_commands(command) -> None:
    p = command(
        "doctor", cmd_doctor, "Check the installation: versions, model, GPU, database.", True
    )
    p.add_argument("--quick", action="store_true", help="only find the model file, do not load it")


def cmd_doctor(ctx: Context) -> int:
    checks = [find_model_check(ctx.settings, ctx.dirs)] if ctx.args.quick else None
    ok = True
    for check in checks or run_checks(ctx.settings, ctx.dirs):
        mark = "ok " if check.ok else "BAD"
        print(f"[{mark}] {check.name:<16} {plain(check.detail)}")
        ok = ok and check.ok
    return 0 if ok else EXIT_USER_ERROR


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def run_checks(settings: Settings, dirs: Dirs) -> list[Check]:
    """Every check, in order; a failed one says what to do."""
    checks = [Check("python", True, platform.python_version())]
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} missing")
    checks.append(Check("packages", all("missing" not in v for v in versions), ", ".join(versions)))

    store = None
    try:
        store = Store.open(dirs.database)
        checks.append(
            Check(
                "database",
                True,
                f"{dirs.database} (schema {store.schema_version}/{SCHEMA_VERSION})",
            )
        )
    except StoreError as exc:
        checks.append(Check("database", False, str(exc)))

    checks.append(_model_check(settings, dirs, store))
    checks.append(_torch_check())
    checks.append(_search_check(settings))
    if store is not None:
        store.close()
    return checks


def find_model_check(settings: Settings, dirs: Dirs) -> Check:
    """Where the model file is, without loading it (the status line of `make run`)."""
    if settings.model.backend == "openai":
        endpoint = redact_url(settings.model.endpoint) or "(no endpoint set)"
        return Check("model", True, f"served at {endpoint}")
    try:
        path = resolve_model_path(settings.model.path, dirs)
    except AgentError as exc:
        return Check("model", False, str(exc))
    return Check(
        "model", True, f"{path.name} ({path.stat().st_size / 1e6:.0f} MB) at {path.parent}"
    )


def _model_check(settings: Settings, dirs: Dirs, store: Store | None) -> Check:
    try:
        started = time.perf_counter()
        llm, info = open_llm(settings, dirs, store)
        loaded = time.perf_counter() - started
        completion = llm.chat(
            [{"role": "user", "content": "Say OK."}], Sampling(max_tokens=8, seed=0)
        )
    except AgentError as exc:
        return Check("model", False, str(exc))
    if info.backend == "openai":
        return Check("model", True, f"{info.name} over HTTP, answered in {completion.seconds:.1f}s")
    size = Path(info.base_path).stat().st_size / 1e6 if info.base_path else 0
    where = f"GPU ({info.n_gpu_layers} layers)" if info.gpu and info.n_gpu_layers else "CPU"
    if not info.gpu:
        where += " (this llama.cpp build has no GPU offload)"
    adapter = f", adapter {info.adapter_path}" if info.adapter_path else ", no adapter"
    warnings = "; " + "; ".join(info.warnings) if info.warnings else ""
    return Check(
        "model",
        True,
        f"{info.base_path} ({size:.0f} MB{adapter}), loaded in {loaded:.1f}s on {where}, "
        f"{completion.tokens_per_second:.0f} tok/s{warnings}",
    )


def _torch_check() -> Check:
    try:
        import torch
    except ImportError:
        return Check("torch", False, "torch is not installed: training is unavailable.")
    if torch.cuda.is_available():
        return Check("torch", True, f"{torch.__version__}, CUDA: {torch.cuda.get_device_name(0)}")
    return Check("torch", True, f"{torch.__version__}, no CUDA (training runs on the CPU)")


def _search_check(settings: Settings) -> Check:
    backend = settings.search.backend
    if settings.network.local_only:
        return Check("search", True, "local-only mode: no web search or fetching")
    if backend == "searxng" and not settings.search.searxng_url:
        return Check("search", False, "search.backend is searxng but search.searxng_url is empty.")
    detail = {"ddgs": "ddgs (keyless web search)", "none": "none (library only)"}.get(
        backend, f"searxng at {redact_url(settings.search.searxng_url)}"
    )
    return Check("search", True, detail)
