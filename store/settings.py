"""Settings: defaults, then the TOML file, then `SLEUTH_*` environment variables, then flags.

Every value remembers where it came from, so `sleuth config` can say why it is what it is.
The file is `config.toml` in the config folder (see `sleuth.store.paths`); `assets/config.toml`
is the documented template, checked against these defaults by a test.
"""

from __future__ import annotations

import contextlib
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import tomlkit

from .errors import ConfigError
from .paths import private_dir, write_private
from .schema import check, option


@dataclass
class ModelSettings:
    path: str = option(
        "",
        "GGUF file to run. Empty: the default, Qwen2.5 0.5B (from its PyPI parts). "
        "'qwen2.5-0.5b', 'smollm2' (SmolLM2-135M, 98 MB) and 'gemma3-270m' name the "
        "installed models.",
    )
    backend: str = option(
        "llama.cpp",
        "llama.cpp runs the GGUF in this process; openai talks to an OpenAI-compatible server "
        "(llama-server, vLLM, Ollama) at `endpoint`.",
        ("llama.cpp", "openai"),
    )
    n_gpu_layers: str = option(
        "auto", "Layers to offload: auto (all when llama.cpp was built with a GPU), or a number."
    )
    n_ctx: int = option(
        8192,
        "Context window in tokens (capped at what the model was trained on, from its GGUF).",
        at_most=1 << 20,
    )
    threads: int = option(
        0,
        "CPU threads for llama.cpp; 0 means one per core. Sleuths on one machine take turns "
        "at the model, so each may use every core.",
        at_most=1024,
    )
    endpoint: str = option("", "Base URL of an OpenAI-compatible server, e.g. http://host:8080/v1.")
    endpoint_model: str = option("", "Model name to ask the server for (empty: its default).")
    api_key_env: str = option(
        "SLEUTH_API_KEY",
        "Environment variable that holds the server's API key (keys never live here).",
    )
    key_over_http: bool = option(
        False,
        "Send the API key to a server on another machine over plain http, where anyone on the "
        "network between can read it (off: refused; use https).",
    )


@dataclass
class SearchSettings:
    backend: str = option(
        "ddgs",
        "Web search: ddgs (keyless), searxng (at searxng_url), or none.",
        ("ddgs", "searxng", "none"),
    )
    searxng_url: str = option("", "Base URL of a SearXNG instance (it must allow format=json).")
    max_results: int = option(6, "Results to read per web query.", at_most=100)


@dataclass
class NetworkSettings:
    local_only: bool = option(
        False, "Send nothing off this machine: no web search, no fetching (library and model only)."
    )
    allow_private_hosts: bool = option(
        False,
        "Allow fetching private and loopback addresses (off: refused). Link-local, cloud "
        "metadata and other special-purpose addresses are refused always.",
    )
    allowed_hosts: str = option(
        "",
        "Hosts fetched even though private or loopback, comma-separated: 'wiki.lan' or "
        "'127.0.0.1:8080' (metadata and link-local addresses stay refused).",
    )
    max_page_bytes: int = option(
        5_000_000, "Largest page or PDF to download, in bytes.", at_most=500_000_000
    )
    fetch_timeout_s: float = option(15.0, "Seconds before a fetch is abandoned.", at_most=600)
    max_redirects: int = option(5, "Redirects to follow per fetch.", at_most=30)
    concurrency: int = option(8, "Fetches in flight at once.", at_most=64)


@dataclass
class ResearchSettings:
    planner: str = option(
        "model",
        "How searches are chosen: model (the model plans sub-questions and, after each round, "
        "what to search next), or none (the question itself is searched once: quicker, for "
        "simple questions).",
        ("model", "none"),
    )
    answer: str = option(
        "read",
        "How the answer is made: read (the model reads a short answer off the evidence, held "
        "to its words, and the sentences that support it are quoted under it), or write (the "
        "model writes the whole answer: slower, and small models get it right less often).",
        ("read", "write"),
    )
    max_rounds: int = option(2, "Plan/execute/reflect rounds at most.", at_most=10)
    max_subquestions: int = option(4, "Sub-questions per plan at most.", at_most=16)
    max_steps: int = option(60, "Searches, fetches and reads per run at most.", at_most=2000)
    max_pages: int = option(12, "Pages and files read per run at most.", at_most=500)
    max_seconds: float = option(300.0, "Wall-clock budget of one run, in seconds.", at_most=86_400)
    max_llm_tokens: int = option(
        30_000, "Tokens the model may read and write in one run.", at_most=10_000_000
    )
    pages_per_query: int = option(3, "Search results to read per web query at most.", at_most=100)
    evidence_k: int = option(8, "Evidence passages given to the writer at most.", at_most=64)
    evidence_tokens: int = option(
        1500,
        "Tokens of evidence given to the writer at most (prefill time grows with it).",
        at_most=1 << 20,
    )
    answer_tokens: int = option(512, "Longest answer, in tokens.", at_most=32_768)
    temperature: float = option(0.3, "Sampling temperature of the writer.", at_least=0, at_most=2)
    repeat_penalty: float = option(
        1.1,
        "The writer's repetition penalty (1: none): above 1, tokens it wrote in the last 64 are "
        "less likely again, which keeps small models out of loops.",
        at_least=1,
        at_most=2,
    )
    review_plan: bool = option(False, "In the app, pause after planning so you can edit the plan.")
    library_to_web: bool = option(
        False,
        "Let web searches use names and words found in your library files (off: a web query "
        "that holds a word seen only in your files is never sent; it stays on this machine).",
    )


SECTIONS: dict[str, type] = {
    "model": ModelSettings,
    "search": SearchSettings,
    "network": NetworkSettings,
    "research": ResearchSettings,
}


@dataclass
class Settings:
    """The effective settings, with where each value came from."""

    model: ModelSettings = field(default_factory=ModelSettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    research: ResearchSettings = field(default_factory=ResearchSettings)
    origins: dict[str, str] = field(default_factory=dict)
    config_file: Path | None = None
    # [keys]: the app's key bindings remapped by id, e.g. rate.up = "ctrl+u" (checked by the app)
    keys: dict[str, str] = field(default_factory=dict)

    def get(self, key: str) -> Any:
        """A value by dotted key, e.g. `settings.get("model.n_ctx")`."""
        section, name = _split(key)
        return getattr(getattr(self, section), name)

    def items(self) -> list[tuple[str, Any, str]]:
        """(key, value, origin) for every setting, in declaration order, for showing: a
        password in a URL is redacted."""
        out = []
        for section, cls in SECTIONS.items():
            for f in fields(cls):
                key = f"{section}.{f.name}"
                out.append((key, _shown(key, self.get(key)), self.origins.get(key, "default")))
        return out

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """Plain nested dict, for recording (what a run stores as its settings) and showing:
        credentials in URLs are redacted. Code reads the attributes, which are not."""
        return {
            section: {
                f.name: _shown(f"{section}.{f.name}", getattr(getattr(self, section), f.name))
                for f in fields(cls)
            }
            for section, cls in SECTIONS.items()
        }


URL_SETTINGS = ("model.endpoint", "search.searxng_url")


def redact_url(url: str) -> str:
    """`url` without the user name and password it may carry: http://u:p@host -> http://***@host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def redact_settings(record: dict[str, Any]) -> dict[str, Any]:
    """A recorded settings dict with credentials in its URLs redacted (for rows written
    before Sleuth redacted them)."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in record.items()}
    for key in URL_SETTINGS:
        section, name = key.split(".")
        if isinstance(out.get(section), dict) and isinstance(out[section].get(name), str):
            out[section][name] = redact_url(out[section][name])
    return out


def _shown(key: str, value: Any) -> Any:
    return redact_url(value) if key in URL_SETTINGS and isinstance(value, str) else value


def env_name(key: str) -> str:
    """The environment variable that sets a key: model.n_ctx -> SLEUTH_MODEL_N_CTX."""
    return "SLEUTH_" + key.replace(".", "_").upper()


def setting_help(key: str) -> str:
    """The help text of one setting."""
    return _field(key).metadata["help"]


def setting_choices(key: str) -> tuple:
    """The values a setting with a fixed set of them may take."""
    return _field(key).metadata.get("choices") or ()


def keys() -> list[str]:
    """Every setting's dotted key."""
    return [f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in fields(cls)]


_TEMPLATE_HEAD = """\
# Sleuth settings. Copy to the config folder (`sleuth config` shows where) and edit,
# or use `sleuth config set KEY VALUE`. Every key can also be set with an environment
# variable SLEUTH_<SECTION>_<KEY>, e.g. SLEUTH_MODEL_N_CTX=4096, and flags override both.
# The values below are the defaults.
"""
_TEMPLATE_KEYS = """\
[keys]
# Remap the app's keys by binding id (the command palette, ctrl+p, lists the ids), e.g.
# rate.up = "u"
"""


def template() -> str:
    """config.toml's documented template, written from the settings themselves: each one's
    help as a comment over its default (assets/config.toml is this text; a test keeps it so,
    and `sleuth config --template` prints it)."""
    import textwrap

    parts = [_TEMPLATE_HEAD]
    for section, cls in SECTIONS.items():
        lines = [f"[{section}]"]
        for f in fields(cls):
            lines += ["# " + line for line in textwrap.wrap(f.metadata["help"], 93)]
            lines.append(f"{f.name} = {tomlkit.item(f.default).as_string()}")
        parts.append("\n".join(lines) + "\n")
    parts.append(_TEMPLATE_KEYS)
    return "\n".join(parts)


def load_settings(
    config_file: Path | None = None,
    env: Mapping[str, str] | None = None,
    flags: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the layers. Raises ConfigError naming the file or variable that is wrong."""
    env = os.environ if env is None else env
    settings = Settings(config_file=config_file)
    if config_file is not None and config_file.exists():
        try:
            data = tomllib.loads(config_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"Cannot read the config file {config_file}: {exc}.") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(
                f"The config file {config_file} is not valid TOML ({exc}): fix it or delete it "
                "to use the defaults."
            ) from exc
        key_map = data.pop("keys", {})
        if not isinstance(key_map, dict) or not all(isinstance(v, str) for v in key_map.values()):
            raise ConfigError(
                f'[keys] in {config_file} maps binding ids to key names, e.g. rate.up = "u".'
            )
        settings.keys = dict(key_map)
        for section, values in data.items():
            if section not in SECTIONS or not isinstance(values, dict):
                raise ConfigError(
                    f"Unknown section [{section}] in {config_file}; known sections: "
                    f"{', '.join(SECTIONS)}, keys."
                )
            for name, value in values.items():
                _apply(settings, f"{section}.{name}", value, f"file {config_file}")
    for key in keys():
        name = env_name(key)
        if env.get(name, "") != "":
            _apply(settings, key, env[name], f"env {name}")
    for key, value in (flags or {}).items():
        if value is not None:
            _apply(settings, key, value, "flag")
    return settings


def save_setting(config_file: Path, key: str, value: Any) -> None:
    """Write one setting to the TOML file, keeping the user's comments and other values."""
    coerced = _coerce(key, value, "the new value")
    try:
        text = config_file.read_text(encoding="utf-8") if config_file.exists() else ""
        document = tomlkit.parse(text)
    except (OSError, tomlkit.exceptions.ParseError) as exc:
        raise ConfigError(f"Cannot update {config_file}: {exc}.") from exc
    section, name = _split(key)
    if section not in document:
        document[section] = tomlkit.table()
    document[section][name] = coerced
    tmp = config_file.with_suffix(".toml.tmp")
    try:
        private_dir(config_file.parent)
        write_private(tmp, tomlkit.dumps(document)).replace(config_file)
    except OSError as exc:
        with contextlib.suppress(OSError):  # a read-only folder: there is no tmp to remove
            tmp.unlink(missing_ok=True)
        raise ConfigError(
            f"Cannot write the config file {config_file} ({exc.strerror or exc}): check that "
            "the disk has space and the folder is yours to write; nothing was changed."
        ) from exc


def _split(key: str) -> tuple[str, str]:
    section, _, name = key.partition(".")
    if section not in SECTIONS or name not in {f.name for f in fields(SECTIONS[section])}:
        raise ConfigError(f"Unknown setting '{key}'; `sleuth config` lists them all.")
    return section, name


def _field(key: str):
    section, name = _split(key)
    return next(f for f in fields(SECTIONS[section]) if f.name == name)


def _apply(settings: Settings, key: str, value: Any, origin: str) -> None:
    section, name = _split(key)
    setattr(getattr(settings, section), name, _coerce(key, value, origin))
    settings.origins[key] = origin


def _coerce(key: str, value: Any, origin: str) -> Any:
    """Convert a value from TOML, an env var or a flag to the setting's type, or explain."""
    f = _field(key)
    kind = type(f.default)
    problem = None
    try:
        if kind is bool:
            if isinstance(value, str):
                lowered = value.strip().lower()
                if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                    raise ValueError
                value = lowered in {"1", "true", "yes", "on"}
            elif not isinstance(value, bool):
                raise ValueError
        elif kind is int:
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if isinstance(value, (str, float)) else value
            if isinstance(number, float) and not number.is_integer():
                raise ValueError  # 2.7 rounds are not 2 rounds: say so rather than guess
            value = int(number)
        elif kind is float:
            if isinstance(value, bool):
                raise ValueError
            value = float(value)
            if not math.isfinite(value):
                raise ValueError
        else:
            value = str(value)
    except (TypeError, ValueError):
        wanted = {bool: "true or false", int: "a whole number", float: "a finite number"}
        problem = f"{key} must be {wanted.get(kind, 'text')}, not {value!r}"
    if problem is None:
        problem = _check(key, value)
    if problem:
        raise ConfigError(f"Bad setting from {origin}: {problem}.")
    return value


def _check(key: str, value: Any) -> str | None:
    """Why `value` may not be setting `key` (None: it may): its schema (store/schema.py),
    then what a schema cannot say."""
    problem = check(key, value, _field(key))
    if problem:
        return problem
    if key == "model.n_gpu_layers" and value != "auto":
        try:
            if not -1 <= int(value) <= 100_000:
                raise ValueError
        except ValueError:
            return f"model.n_gpu_layers must be 'auto' or a number of layers, not {value!r}"
    if key in {"model.endpoint", "search.searxng_url"} and value:
        if not value.startswith(("http://", "https://")):
            return f"{key} must be an http(s) URL, not {value!r}"
    return None
