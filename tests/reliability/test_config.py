"""Settings a user can get wrong, and homes that cannot be written: one sentence, exit 2, and
nothing they had is changed."""

from __future__ import annotations

import pytest

from tests.reliability.conftest import GIB, run


def test_config_set_on_a_home_that_cannot_be_written_is_one_sentence(env, tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the home's folders would go")
    for home in (blocked, blocked / "home"):  # not a folder; inside something that is not one
        done = run(
            "config", "set", "research.max_rounds", "3", env={**env, "SLEUTH_HOME": str(home)}
        )
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert (
            line.startswith("sleuth: Cannot write the config file")
            and "nothing was changed" in line
        )
    assert blocked.read_text() == "a file where the home's folders would go"


@pytest.mark.parametrize(
    ("key", "value", "limit"),
    [
        ("model.n_ctx", "1000000000", "1,048,576"),
        ("research.max_rounds", "1000", "10"),
        ("network.max_page_bytes", "99999999999", "500,000,000"),
        ("research.answer_tokens", "10000000", "32,768"),
    ],
)
def test_a_value_past_its_limit_is_refused_naming_the_limit(env, sleuth_home, key, value, limit):
    done = run("config", "set", key, value, env=env)
    assert done.returncode == 2 and f"{key} must be at most {limit}" in done.stderr
    assert not (sleuth_home / "config" / "config.toml").exists()


@pytest.mark.slow
def test_a_context_beyond_the_models_training_is_capped_with_a_warning(env, tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "lyon.md").write_text("# Lyon\n\nLyon was founded in 43 BC by Lucius Plancus.")
    assert run("config", "set", "model.n_ctx", "1000000", env=env).returncode == 0
    done = run(
        "ask",
        "--no-web",
        "--library",
        str(notes),
        "--budget",
        "rounds=1",
        "Who founded Lyon?",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert "model.n_ctx is 1,000,000 but" in done.stderr and "using 8,192" in done.stderr
    assert done.max_rss < 2 * GIB  # a million-token KV cache would have taken ~23 GB
