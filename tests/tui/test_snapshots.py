"""Snapshots of the main screens (pytest-textual-snapshot). Volatile values are pinned: the
clock, the library's path, speeds and timings. Update with `pytest --snapshot-update` after
a deliberate change, and look at the SVGs before committing them."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Markdown

from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.tools.library import index_paths
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings
from sleuth.tui.app import build_app
from sleuth.tui.screens.compare import CompareScreen
from sleuth.tui.widgets.status_bar import StatusBar
from tests.fakes import ScriptedLLM
from tests.helpers import ask
from tests.tui.test_app import until

SIZE = (140, 40)
NOTES = Path("/tmp/sleuth-snapshot-notes")  # a fixed path: it is shown on screen
# The model's plan only rephrases the question, so the run makes one search: two would finish
# in either order (each on its own worker thread) and the activity log would differ.
PLAN = {
    "subquestions": [
        {"question": "Who founded Lyon?", "tool": "search_library", "query": "founded Lyon"}
    ]
}


@pytest.fixture
def snap_env(tmp_path, monkeypatch):
    shutil.rmtree(NOTES, ignore_errors=True)
    NOTES.mkdir(parents=True)
    (NOTES / "lyon.md").write_text(
        "# Lyon\n\nLyon was founded as Lugdunum in 43 BC by Lucius Munatius Plancus, "
        "a Roman senator."
    )
    (NOTES / "rhone.md").write_text(
        "# Rhône\n\nThe Rhône flows through Lyon to the Mediterranean Sea."
    )
    dirs = Dirs(tmp_path / "data", tmp_path / "config", tmp_path / "cache")
    store = Store.open(dirs.database)
    store.database.clock = lambda: "2026-11-22T10:00:00.000+00:00"  # stable screenshots
    index_paths(store, [NOTES])
    settings = load_settings(
        None, env={}, flags={"search.backend": "none", "research.max_rounds": 1}
    )
    yield store, settings, dirs
    store.close()
    shutil.rmtree(NOTES, ignore_errors=True)


def app_for(env, llm=None):
    store, settings, dirs = env
    info = ModelInfo(
        "SmolLM2-135M-Instruct.Q4_1",
        "llama.cpp",
        base_path="/models/base.gguf",
        base_fingerprint="fp",
    )
    return build_app(
        settings, dirs, store, model_loader=lambda s, d, st: (llm or ScriptedLLM([]), info)
    )


async def pin(pilot) -> None:
    await until(pilot, lambda: pilot.app.llm is not None)
    for bar in pilot.app.screen.query(StatusBar):
        bar.speed, bar.elapsed = "", ""
    # A focused input's cursor blinks on a timer: a busy machine took the snapshot in the half
    # second it was off. Held steady, it is drawn as the stored snapshots show it.
    for field in pilot.app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


def test_research_screen_with_a_cited_answer(snap_compare, snap_env):
    """The reader's answer: the short answer first, cited, the evidence quoted under it."""
    llm = ScriptedLLM([PLAN, "Lucius Munatius Plancus"])
    app = app_for(snap_env, llm)

    async def run_before(pilot):
        await until(pilot, lambda: app.llm is not None)
        app.screen.query_one("#question", Input).focus()
        await pilot.press(*"Who founded Lyon?", "enter")
        await until(pilot, lambda: app.screen.answer is not None and not app.screen.running)
        await pilot.press("plus", "4")
        app.clear_notifications()
        await pin(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_compare_screen(snap_compare, snap_env):
    llm = ScriptedLLM([PLAN, "Lucius Munatius Plancus", "Munatius Plancus"])
    app = app_for(snap_env, llm)

    async def run_before(pilot):
        await until(pilot, lambda: app.llm is not None)
        app.screen.query_one("#question", Input).focus()
        await pilot.press(*"Who founded Lyon?", "enter")
        await until(pilot, lambda: app.screen.answer is not None and not app.screen.running)
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        app.clear_notifications()
        await pilot.pause()

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_history_screen(snap_compare, snap_env):
    store = snap_env[0]
    _, _, (a, b) = ask(store, "Who founded Lyon?", "Plancus founded Lyon [1].", "Nobody knows.")
    store.feedback.rate(a, thumb=1, stars=5)
    ask(store, "Where does the Rhône flow?", "To the Mediterranean [2].")
    app = app_for(snap_env)

    async def run_before(pilot):
        await pilot.press("f2")
        await until(
            pilot,
            lambda: (
                app.screen.__class__.__name__ == "HistoryScreen"
                and app.screen.query_one(DataTable).row_count == 2
                # The highlighted session's report is drawn after the rows (a busy machine
                # showed the snapshot before it).
                and "Mediterranean" in app.screen.query_one("#session-markdown", Markdown).source
            ),
        )
        await pilot.pause()
        await pin(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_library_screen(snap_compare, snap_env):
    app = app_for(snap_env)

    async def run_before(pilot):
        await pilot.press("f3")
        await until(pilot, lambda: app.screen.__class__.__name__ == "LibraryScreen")
        await pin(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_models_screen(snap_compare, snap_env):
    store = snap_env[0]
    base = store.registry.register(
        name="SmolLM2-135M-Instruct.Q4_1", base_path="/models/base.gguf", base_fingerprint="fp"
    )
    adapter = store.registry.register(
        name="sft-1",
        base_path="/models/base.gguf",
        base_fingerprint="fp",
        adapter_path="/adapters/sft-1.gguf",
        parent_id=base,
        training_run_id=None,
        evaluation={
            "n": 5,
            "improved": True,
            "win_rate": 0.8,
            "parent": {
                "reward": 0.08,
                "pass_rate": 0.0,
                "check_rates": {"cites": 0.2, "grounded": 0.0, "format": 1.0, "length": 1.0},
            },
            "new": {
                "reward": 0.62,
                "pass_rate": 0.6,
                "check_rates": {"cites": 0.8, "grounded": 0.6, "format": 1.0, "length": 1.0},
            },
        },
    )
    store.registry.activate(adapter)
    reward = store.registry.register(
        name="reward-1",
        base_path="/models/base.gguf",
        base_fingerprint="fp",
        reward_path="/reward/reward-1.json",
        evaluation={"reward": {"n": 12, "reader": 0.5, "picked": 0.583, "better": 2, "worse": 1}},
    )
    store.registry.activate(reward)  # active beside the adapter: one of each kind
    app = app_for(snap_env)

    async def run_before(pilot):
        await until(pilot, lambda: app.llm is not None)
        await pilot.press("f4")
        await until(
            pilot,
            lambda: (
                app.screen.__class__.__name__ == "ModelsScreen"
                and app.screen.query_one(DataTable).row_count == 3
            ),
        )
        app.screen.query_one(DataTable).move_cursor(row=1)
        app.clear_notifications()
        await pin(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_settings_screen(snap_compare, snap_env):
    app = app_for(snap_env)

    async def run_before(pilot):
        await pilot.press("f6")
        await until(pilot, lambda: app.screen.__class__.__name__ == "SettingsScreen")
        await pin(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)
