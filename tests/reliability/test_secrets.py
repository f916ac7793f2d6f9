"""Secrets stay secret and local-only means local, as a user meets them on the command line."""

from __future__ import annotations

import time

import pytest

from tests.reliability.conftest import run


def test_passwords_in_urls_are_not_shown(env):
    secret = {**env, "SLEUTH_MODEL_ENDPOINT": "http://alice:hunter2@models.lan:8080/v1"}
    for args in (["config"], ["config", "--json"], ["doctor", "--quick"]):
        done = run(*args, env=secret)
        assert "hunter2" not in done.stdout + done.stderr, args


@pytest.mark.slow
def test_a_run_records_its_settings_without_passwords(env, sleuth_home, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lyon.md").write_text("# Lyon\n\nLyon was founded by Plancus in 43 BC.")
    secret = {**env, "SLEUTH_SEARCH_SEARXNG_URL": "http://bob:hunter2@127.0.0.1:9/"}
    done = run("ask", "--no-web", "--library", str(notes), "Who founded Lyon?", env=secret)
    assert done.returncode in (0, 1), done.stderr
    exported = run("export", "--format", "runs", env=secret)
    assert "hunter2" not in exported.stdout and "***@127.0.0.1:9" in exported.stdout
    assert b"hunter2" not in (sleuth_home / "data" / "sleuth.db").read_bytes()


def test_local_only_refuses_a_model_server_elsewhere_before_any_request(env, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nText.")
    remote = {
        **env,
        "SLEUTH_MODEL_BACKEND": "openai",
        "SLEUTH_MODEL_ENDPOINT": "http://10.255.255.1:8080/v1",  # not routable: any try hangs
    }
    assert run("index", str(notes), env=env).returncode == 0
    started = time.monotonic()
    done = run("ask", "--local-only", "What?", env=remote)
    assert done.returncode == 2 and time.monotonic() - started < 20
    error = done.stderr.strip().splitlines()[-1]  # after the "loading the model…" progress
    assert error.startswith("sleuth: local-only mode is on") and "Traceback" not in done.stderr


def test_an_api_key_is_not_sent_over_plain_http_to_another_machine(env, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nText.")
    remote = {
        **env,
        "SLEUTH_MODEL_BACKEND": "openai",
        "SLEUTH_MODEL_ENDPOINT": "http://10.255.255.1:8080/v1",
        "SLEUTH_API_KEY": "sk-secret",
    }
    done = run("ask", "--no-web", "--library", str(notes), "What?", env=remote)
    assert done.returncode == 2 and "over plain http" in done.stderr
    assert "sk-secret" not in done.stderr


def test_an_export_is_private_from_its_first_byte(tmp_path, monkeypatch):
    """A file killed half-written must not be left readable by others: it is created 0600,
    and a file that was already there is made 0600 before anything is written to it."""
    import os
    import stat

    from sleuth.store import paths

    modes = []
    real_fdopen = os.fdopen

    def watching(fd, *args, **kwargs):
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))  # before the first byte
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(paths.os, "fdopen", watching)
    old_umask = os.umask(0o022)
    try:
        fresh = tmp_path / "x.jsonl.partial"
        paths.write_private(fresh, "history\n")
        there = tmp_path / "y.jsonl.partial"
        there.write_text("old")
        there.chmod(0o644)
        paths.write_private(there, "history\n")
    finally:
        os.umask(old_umask)
    assert modes == [0o600, 0o600]
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(there.stat().st_mode) == 0o600


def test_sleuth_export_writes_a_private_file(env, tmp_path):
    import stat

    out = tmp_path / "runs.jsonl"
    done = run("export", "--format", "runs", "-o", str(out), env=env)
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not (tmp_path / "runs.jsonl.partial").exists()
