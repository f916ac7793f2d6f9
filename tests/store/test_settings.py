"""Settings layering (default < file < env < flag), origins, and bad input."""

from __future__ import annotations

import tomllib
from importlib import resources

import pytest

from sleuth.store import ConfigError
from sleuth.store.settings import (
    Settings,
    env_name,
    keys,
    load_settings,
    redact_settings,
    redact_url,
    save_setting,
    template,
)


def test_layers_override_in_order_and_remember_their_origin(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[model]\nn_ctx = 4096\nthreads = 2\n[search]\nbackend = "none"\n')
    env = {"SLEUTH_MODEL_THREADS": "3", "SLEUTH_NETWORK_LOCAL_ONLY": "yes"}
    settings = load_settings(config, env=env, flags={"model.path": "/m.gguf", "model.n_ctx": None})
    assert settings.model.n_ctx == 4096
    assert settings.origins["model.n_ctx"] == f"file {config}"
    assert (
        settings.model.threads == 3
        and settings.origins["model.threads"] == "env SLEUTH_MODEL_THREADS"
    )
    assert settings.network.local_only is True
    assert settings.model.path == "/m.gguf" and settings.origins["model.path"] == "flag"
    assert settings.search.backend == "none"
    origins = {k: o for k, _, o in settings.items()}
    assert origins["research.max_rounds"] == "default"


def test_missing_file_means_defaults(tmp_path):
    settings = load_settings(tmp_path / "absent.toml", env={})
    assert settings.as_dict() == Settings().as_dict()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[model\n", "not valid TOML"),
        ("[modle]\npath = 'x'\n", "Unknown section"),
        ("[model]\npth = 'x'\n", "Unknown setting 'model.pth'"),
        ("[model]\nn_ctx = 'big'\n", "model.n_ctx must be a whole number"),
        ("[model]\nn_ctx = -5\n", "must be positive"),
        ("[search]\nbackend = 'google'\n", "must be one of ddgs, searxng, none"),
        ("[search]\nsearxng_url = 'ftp://x'\n", r"must be an http\(s\) URL"),
        ("[model]\nn_gpu_layers = 'many'\n", "'auto' or a number"),
        ("[network]\nfetch_timeout_s = nan\n", "fetch_timeout_s must be a finite number"),
        ("[network]\nfetch_timeout_s = inf\n", "must be a finite number"),
        ("[research]\nmax_rounds = 2.7\n", "research.max_rounds must be a whole number"),
    ],
)
def test_bad_files_name_the_file_and_the_problem(tmp_path, text, message):
    config = tmp_path / "config.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, env={})


def test_bad_env_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="env SLEUTH_NETWORK_LOCAL_ONLY"):
        load_settings(None, env={"SLEUTH_NETWORK_LOCAL_ONLY": "perhaps"})


def test_save_setting_keeps_comments_and_other_values(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("# my notes\n[model]\n# keep me\nn_ctx = 2048\n")
    save_setting(config, "model.threads", "4")
    save_setting(config, "network.local_only", "true")
    text = config.read_text()
    assert "# my notes" in text and "# keep me" in text
    assert config.stat().st_mode & 0o777 == 0o600  # it may name a server and its key's variable
    settings = load_settings(config, env={})
    assert (settings.model.n_ctx, settings.model.threads, settings.network.local_only) == (
        2048,
        4,
        True,
    )
    with pytest.raises(ConfigError):
        save_setting(config, "model.threads", "lots")
    assert load_settings(config, env={}).model.threads == 4


def test_shipped_template_documents_every_setting_with_its_default():
    text = resources.files("sleuth.assets").joinpath("config.toml").read_text()
    assert text == template(), "regenerate it: sleuth config --template > assets/config.toml"
    shipped = tomllib.loads(text)
    assert shipped.pop("keys") == {}  # documented, empty: no remapping by default
    assert shipped == Settings().as_dict()
    assert sorted(f"{s}.{k}" for s, values in shipped.items() for k in values) == sorted(keys())


def test_keys_section_remaps_bindings_by_id(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text('[keys]\n"rate.up" = "u"\n')
    assert load_settings(config, env={}).keys == {"rate.up": "u"}
    config.write_text("[keys]\nrate = 3\n")
    with pytest.raises(ConfigError, match=r"\[keys\]"):
        load_settings(config, env={})


def test_env_names():
    assert env_name("model.n_ctx") == "SLEUTH_MODEL_N_CTX"


def test_whole_numbers_may_be_written_as_such():
    settings = load_settings(None, env={"SLEUTH_RESEARCH_MAX_ROUNDS": "3"})
    assert settings.research.max_rounds == 3
    assert load_settings(None, env={}, flags={"research.max_rounds": 2.0}).research.max_rounds == 2
    with pytest.raises(ConfigError, match="whole number"):
        load_settings(None, env={"SLEUTH_RESEARCH_MAX_ROUNDS": "1.5"})


def test_passwords_in_urls_are_never_shown_or_recorded():
    settings = load_settings(
        None,
        env={"SLEUTH_MODEL_ENDPOINT": "http://alice:hunter2@models.lan:8080/v1"},
        flags={"search.searxng_url": "https://bob:pw@search.lan/"},
    )
    assert settings.model.endpoint == "http://alice:hunter2@models.lan:8080/v1"  # code reads it
    shown = str(settings.as_dict()) + str(settings.items())
    assert "hunter2" not in shown and "alice" not in shown and "pw@" not in shown
    assert settings.as_dict()["model"]["endpoint"] == "http://***@models.lan:8080/v1"
    assert redact_url("https://search.lan/?q=x") == "https://search.lan/?q=x"
    old = {"search": {"searxng_url": "http://u:p@h/"}, "model": {"n_ctx": 1}}
    redacted = redact_settings(old)
    assert redacted == {"search": {"searxng_url": "http://***@h/"}, "model": {"n_ctx": 1}}
