"""The app driven with Textual's pilot: a scripted LLM, the real store, the real local HTTP
server. Every screen and flow: ask -> stream -> rate -> regenerate -> compare -> history."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from textual.app import App
from textual.widgets import DataTable, Input, RichLog, TextArea

from sleuth.agent.errors import ModelError
from sleuth.agent.models.catalog import ModelInfo
from sleuth.agent.models.files import fingerprint
from sleuth.agent.models.registry import ModelRegistry
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings
from sleuth.tui.app import build_app
from sleuth.tui.screens.compare import CompareScreen
from sleuth.tui.screens.dialogs import AskText, Confirm, EditText, Preview
from sleuth.tui.screens.plan_review import PlanReview
from sleuth.tui.widgets.answer_view import AnswerView
from sleuth.tui.widgets.status_bar import StatusBar
from tests.builders import write_adapter
from tests.fakes import ScriptedLLM
from tests.helpers import ask, share_converted_models

PLAN = {
    "subquestions": [
        {"question": "Who founded Lyon?", "tool": "web_search", "query": "Lyon founder"}
    ]
}
SIZE = (160, 45)


async def until(pilot, condition, timeout: float = 20.0) -> None:
    """Wait for something the app does in the background (a worker, a thread)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for the app; {app_state(pilot.app)}")
        await pilot.pause(0.05)


def app_state(app) -> str:
    """What a failed wait needs to say: the screen, the focus, the notifications, the activity."""
    lines = []
    for log in app.screen.query("ActivityLog"):
        lines += ["".join(segment.text for segment in strip) for strip in log.lines[-12:]]
    return (
        f"screen {type(app.screen).__name__}, focus {type(app.focused).__name__}, "
        f"running {getattr(app.screen, 'running', None)}, notifications {messages(app)}, "
        f"activity {lines}"
    )


def messages(app) -> list[str]:
    return [n.message for n in app._notifications]


@pytest.fixture
def env(tmp_path, web):
    dirs = Dirs(tmp_path / "data", tmp_path / "config", tmp_path / "cache")
    store = Store.open(dirs.database)
    flags = {
        "search.backend": "searxng",
        "search.searxng_url": web.base,
        "network.allow_private_hosts": True,
        "research.max_rounds": 1,
        "research.answer": "write",  # these script written answers; the reader's below
    }
    settings = load_settings(None, env={}, flags=flags)
    yield store, settings, dirs
    store.close()


def make_app(env, llm=None, *, loader=None, **setting_changes):
    store, settings, dirs = env
    for key, value in setting_changes.items():
        section, name = key.split("__")
        setattr(getattr(settings, section), name, value)
    loads = []

    def scripted(s, d, st):
        loads.append(1)
        return llm, ModelInfo("scripted", "test")

    app = build_app(settings, dirs, store, model_loader=loader or scripted)
    app.loads = loads
    return app


async def ask_question(pilot, question: str) -> None:
    app = pilot.app
    await until(pilot, lambda: app.llm is not None or app.model_error)
    app.screen.query_one("#question", Input).focus()
    await pilot.press(*question)
    await pilot.press("enter")


async def answered(pilot) -> None:
    await until(pilot, lambda: not pilot.app.screen.running and pilot.app.screen.answer is not None)


async def test_ask_stream_rate_regenerate_compare_then_history(env):
    store = env[0]
    llm = ScriptedLLM(
        [
            PLAN,
            "Lyon was founded by Lucius Munatius Plancus [1]. Also [9].",
            "Plancus founded Lyon [1].",
        ]
    )
    app = make_app(env, llm)
    async with app.run_test(size=SIZE) as pilot:
        await ask_question(pilot, "Who founded Lyon?")
        await answered(pilot)
        screen = app.screen
        answer_id = screen.answer["id"]
        assert isinstance(app.focused, AnswerView)  # ready for one-key rating
        shown = screen.query_one(AnswerView).markdown.source
        assert "[\\[1\\]](source:1)" in shown and "[9]" not in shown  # linked, dangling gone
        assert "missing evidence were removed" in shown

        await pilot.press("plus")
        await pilot.press("4")
        rating = store.feedback.rating(answer_id)
        assert (rating.thumb, rating.stars) == (1, 4)
        assert any("Saved" in m for m in messages(app))
        await pilot.press("c")
        await until(pilot, lambda: isinstance(app.screen, AskText))
        await pilot.press(*"cites the right page", "enter")
        await until(pilot, lambda: getattr(store.feedback.rating(answer_id), "comment", None))
        assert store.feedback.rating(answer_id).comment == "cites the right page"
        await pilot.press("e")  # correct it: an editor opens on the answer's text
        await until(pilot, lambda: isinstance(app.screen, EditText))
        area = app.screen.query_one(TextArea)
        assert area.text == screen.answer["text"]
        await pilot.press("ctrl+s")  # saved unchanged: the answer is not its own correction
        await until(pilot, lambda: any("no correction saved" in m for m in messages(app)))
        assert store.feedback.rating(answer_id).correction is None
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, EditText))
        area = app.screen.query_one(TextArea)
        area.load_text("Lucius Munatius Plancus founded Lyon in 43 BC [1].")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: getattr(store.feedback.rating(answer_id), "correction", None))
        assert store.feedback.rating(answer_id).correction.endswith("in 43 BC [1].")
        await pilot.press("minus")
        assert store.feedback.rating(answer_id).thumb == -1  # changeable
        await pilot.press("u")  # undo: the rating as it was before the last change
        kept = store.feedback.rating(answer_id)
        assert (kept.thumb, kept.stars, kept.comment) == (1, 4, "cites the right page")
        assert kept.correction.endswith("in 43 BC [1].")
        await pilot.press("u")
        assert store.feedback.rating(answer_id) is None  # and then no rating at all

        await pilot.press("g")
        await until(pilot, lambda: isinstance(app.screen, CompareScreen))
        await pilot.press("a")
        await until(pilot, lambda: not isinstance(app.screen, CompareScreen))
        (comparison,) = store.feedback.comparisons()
        assert comparison.winner_id == answer_id and comparison.tie == 0
        first, second = store.runs.answer(answer_id), store.runs.answer(comparison.loser_id)
        assert first.messages == second.messages  # same prompt: a clean DPO pair

        await pilot.press("f2")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HistoryScreen")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)
        assert "Who founded Lyon?" in str(table.get_row_at(0))


async def test_when_both_written_answers_fail_the_quoted_evidence_is_shown_focused(env):
    """Both answers rejected: the view restarts for the second and is stopped at once for the
    quoted evidence. That evidence still reaches the view, focused for rating (a stream
    stopped before it ran once cancelled the worker here and left the view blank)."""
    store = env[0]
    looping = "Sleuth [1] " * 12
    app = make_app(env, ScriptedLLM([PLAN, looping, looping]))
    async with app.run_test(size=SIZE) as pilot:
        await ask_question(pilot, "Who founded Lyon?")
        await answered(pilot)
        await until(pilot, lambda: isinstance(app.focused, AnswerView))
        shown = app.screen.query_one(AnswerView).markdown.source
        assert shown.startswith("Quoted from the sources") and "Plancus" in shown
        assert "Sleuth" not in shown
        assert store.runs.run(app.screen.answer["run_id"]).status == "done"
        await pilot.press("plus")
        assert store.feedback.rating(app.screen.answer["id"]).thumb == 1


async def test_the_readers_short_answer_is_shown_first_cited_and_rated(env):
    """The default way of answering: the model reads the short answer off the evidence; the
    app shows it first, with its citation, over the quoted sentences that support it."""
    store = env[0]
    app = make_app(env, ScriptedLLM([PLAN, "Lucius Munatius Plancus"]), research__answer="read")
    async with app.run_test(size=SIZE) as pilot:
        await ask_question(pilot, "Who founded Lyon?")
        await answered(pilot)
        await until(pilot, lambda: isinstance(app.focused, AnswerView))
        shown = app.screen.query_one(AnswerView).markdown.source
        first, _, rest = shown.partition("\n\n")
        assert first.startswith("Lucius Munatius Plancus [\\[") and "(source:" in first
        assert rest.startswith(">") and "Lugdunum" in rest
        answer = store.runs.answer(app.screen.answer["id"])
        assert answer.short_answer == "Lucius Munatius Plancus"
        assert answer.verification["kind"] == "reader"
        await pilot.press("plus")
        assert store.feedback.rating(answer.id).thumb == 1


async def test_an_answer_the_reward_model_is_not_sure_of_looks_different(env, tmp_path):
    """An active reward model picks among the reader's candidates; below its threshold the
    answer is marked not sure (words above it, a dashed warning border), a sure one is not."""
    from sleuth.agent.models.llm import Completion
    from sleuth.agent.research.picker import RewardModel

    def reading():
        return Completion("Lucius Munatius Plancus", 10, 3, 0.01, "stop", [(" Lucius", -0.1)])

    for threshold, unsure in ((0.99, True), (0.0, False)):
        path = tmp_path / f"reward-{threshold}.json"
        RewardModel(threshold=threshold).save(path)

        def loader(s, d, st, path=path):
            return ScriptedLLM([PLAN, reading()]), ModelInfo(
                "scripted", "test", reward_path=str(path)
            )

        app = make_app(env, loader=loader, research__answer="read")
        async with app.run_test(size=SIZE) as pilot:
            await ask_question(pilot, "Who founded Lyon?")
            await answered(pilot)
            view = app.screen.query_one(AnswerView)
            assert view.has_class("-unsure") is unsure
            assert view.markdown.source.startswith("**⚠ Not sure") is unsure
            assert "Lucius Munatius Plancus [\\[" in view.markdown.source


async def test_an_answer_view_restarted_and_shown_at_once_shows_the_answer():
    """start() then show() with nothing between: the stream's task has not run once when it
    is stopped, and its cancellation must not cancel the caller (the research worker)."""

    class One(App):
        def compose(self):
            yield AnswerView()

    async with One().run_test() as pilot:
        view = pilot.app.query_one(AnswerView)
        await view.start()
        await view.show("Quoted from the sources")
        assert view.markdown.source == "Quoted from the sources"
        await view.start()
        view.write("streamed")
        await view.stop()  # what was queued is written before the stream stops
        assert view.markdown.source == "streamed"


async def test_follow_ups_continue_the_session_and_ctrl_n_starts_a_new_one(env):
    store = env[0]
    # Every answer is supported by what it cites: a rejected one would be written again, and a
    # seventh call would find the script empty.
    third = "Lugdunum became the capital of a Roman province [1]."
    llm = ScriptedLLM([PLAN, "Plancus [1].", PLAN, "In 43 BC [1].", PLAN, third])
    app = make_app(env, llm)
    async with app.run_test(size=SIZE) as pilot:
        await ask_question(pilot, "Who founded Lyon?")
        await answered(pilot)
        await ask_question(pilot, "When?")
        await until(
            pilot,
            lambda: (
                len(store.runs.history()) == 1
                and len(store.runs.history()[0].turns) == 2
                and not app.screen.running
            ),
        )
        assert "Earlier in this conversation" in llm.calls[3]["messages"][-1]["content"]
        await pilot.press("ctrl+n")
        await ask_question(pilot, "Capital of France?")
        await until(pilot, lambda: len(store.runs.history()) == 2 and not app.screen.running)
        assert len(llm.calls) == 6 and app.screen.answer["text"] == third


async def test_empty_question_and_missing_model_are_notices_and_the_app_stays_up(env):
    def no_model(s, d, st):
        raise ModelError(
            "Model file /nowhere.gguf does not exist: check the path or `sleuth config`."
        )

    app = make_app(env, loader=no_model)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.model_error is not None)
        assert "no model" in app.screen.query_one(StatusBar).model
        app.screen.query_one("#question", Input).focus()
        await pilot.press("enter")
        assert "Type a question first." in messages(app)
        await pilot.press(*"Anything?", "enter")
        assert any("does not exist" in m for m in messages(app))
        assert app.is_running


async def test_a_failed_run_is_a_notice(env):
    app = make_app(env, ScriptedLLM([]), search__backend="none")
    async with app.run_test(size=SIZE) as pilot:
        await ask_question(pilot, "Who founded Lyon?")
        await until(pilot, lambda: any("Nothing to search" in m for m in messages(app)))
        assert app.is_running


async def test_escape_cancels_a_run_and_keeps_what_was_found(env, web):
    store = env[0]
    web.delays["/articles/rhone.html"] = 30
    app = make_app(
        env,
        ScriptedLLM(
            [
                {
                    "subquestions": [
                        {"question": "Rhône?", "tool": "web_search", "query": "Rhône river Lyon"}
                    ]
                }
            ]
        ),
    )
    async with app.run_test(size=SIZE) as pilot:
        await ask_question(pilot, "Where does the Rhône flow?")
        await until(
            pilot,
            lambda: (
                store.db.execute(
                    "SELECT COUNT(*) FROM steps WHERE kind = 'page_fetched'"
                ).fetchone()[0]
                >= 1
            ),
        )
        await pilot.press("escape")
        await until(pilot, lambda: not app.screen.running)
        run = store.db.execute("SELECT status FROM runs").fetchone()
        assert run[0] == "cancelled"
        assert any("cancelled" in m.lower() for m in messages(app))


async def test_plan_review_lets_the_user_edit_the_plan(env):
    store = env[0]
    llm = ScriptedLLM([PLAN, "Plancus [1]."])
    app = make_app(env, llm, research__review_plan=True)
    async with app.run_test(size=SIZE) as pilot:
        await ask_question(pilot, "Who founded Lyon?")
        await until(pilot, lambda: isinstance(app.screen, PlanReview))
        review = app.screen
        first = review.query("Input").first()
        first.focus()
        first.value = ""
        await pilot.press(*"Plancus Lugdunum")
        await pilot.press("ctrl+n")
        await pilot.press(*"Rhône river")
        await pilot.press("ctrl+s")
        await until(
            pilot,
            lambda: (
                not isinstance(app.screen, PlanReview)
                and not app.screen.running
                and app.screen.answer is not None
            ),
        )
        plan = store.db.execute("SELECT plan FROM runs").fetchone()[0]
        assert '"reviewed": true' in plan and "Plancus Lugdunum" in plan and "Rhône river" in plan
        searched = [
            r[0]
            for r in store.db.execute(
                "SELECT json_extract(data, '$.query') FROM steps WHERE kind = 'search_issued'"
            )
        ]
        assert searched[:1] == ["Plancus Lugdunum"] and "Rhône river" in searched


async def test_sources_preview_in_place(env):
    app = make_app(env, ScriptedLLM([PLAN, "Plancus [1]."]))
    async with app.run_test(size=SIZE) as pilot:
        await ask_question(pilot, "Who founded Lyon?")
        await answered(pilot)
        await pilot.press("ctrl+o")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, Preview))
        assert app.screen.text  # the evidence text, shown in place
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, Preview))


async def test_history_search_export_and_continue(env):
    store, _, dirs = env
    session_id, _, (a,) = ask(store, "Who founded Lyon?", "Plancus [1].")
    ask(store, "What is the Seine?", "A river [1].")
    app = make_app(env, ScriptedLLM([]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f2")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HistoryScreen")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2)
        app.screen.query_one("#history-search", Input).focus()
        await pilot.press(*"founded", "enter")
        await until(pilot, lambda: table.row_count == 1)
        await pilot.press("e")
        exported = dirs.data / "exports" / f"session-{session_id}.md"
        await until(pilot, exported.exists)
        assert "## Who founded Lyon?" in exported.read_text()
        await pilot.press("c")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ResearchScreen")
        assert app.screen.session_id == session_id and app.screen.answer["id"] == a


async def test_library_add_reindex_and_remove_with_confirmation(env, tmp_path):
    store = env[0]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.md").write_text("# A\n\nAlpha text about rivers.")
    (notes / "b.md").write_text("# B\n\nBeta text about cities.")
    app = make_app(env, ScriptedLLM([]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f3")
        await until(pilot, lambda: app.screen.__class__.__name__ == "LibraryScreen")
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, AskText))
        await pilot.press(*str(notes), "enter")
        await until(pilot, lambda: len(store.library.documents()) == 2)
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)
        assert app.screen.query_one("ProgressBar").progress == 2
        (notes / "c.md").write_text("# C\n\nGamma.")
        await pilot.press("r")
        await until(pilot, lambda: len(store.library.documents()) == 3)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("n")  # declined: nothing happens
        assert len(store.library.documents()) == 3
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")
        await until(pilot, lambda: store.library.documents() == [])
        assert (notes / "a.md").exists()


async def test_models_activate_and_roll_back_without_restarting(env, tiny_gguf, tmp_path):
    store = env[0]
    loads = []

    fp = fingerprint(tiny_gguf)

    def loader(s, d, st):  # the scripted model stands for the tiny base file
        loads.append(1)
        info = ModelInfo("scripted", "test", base_path=str(tiny_gguf), base_fingerprint=fp)
        return ScriptedLLM([]), info

    app = make_app(env, loader=loader)
    app.loads = loads
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.llm is not None)
        registry = ModelRegistry(store)
        base = registry.ensure_base(tiny_gguf)
        adapter = registry.register_adapter(
            name="sft-1",
            base_path=tiny_gguf,
            adapter_path=write_adapter(tmp_path / "sft-1.gguf"),
            parent_id=base.id,
            training_run_id=None,
            evaluation={
                "n": 3,
                "improved": True,
                "win_rate": 1.0,
                "parent": {"reward": 0.2, "pass_rate": 0.0, "check_rates": {"cites": 0.0}},
                "new": {"reward": 0.6, "pass_rate": 0.67, "check_rates": {"cites": 1.0}},
            },
        )
        await pilot.press("f4")
        await until(pilot, lambda: app.screen.__class__.__name__ == "ModelsScreen")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 2)
        table.move_cursor(row=1)
        await pilot.pause()
        assert "better than its parent" in str(app.screen.query_one("#model-evaluation").render())
        loaded_before = len(app.loads)
        await pilot.press("a")
        assert store.registry.active(fp).id == adapter.id
        await until(pilot, lambda: len(app.loads) > loaded_before)  # reloaded, no restart
        await pilot.press("r")
        assert store.registry.active(fp).id == base.id
        # An adapter whose file is gone is refused with a notice; nothing changes.
        (tmp_path / "sft-1.gguf").unlink()
        table.move_cursor(row=1)
        await pilot.press("a")
        assert store.registry.active(fp).id == base.id
        assert any("is missing" in m for m in messages(app))


async def test_settings_are_saved_validated_and_applied(env):
    _, _, dirs = env
    app = make_app(env, ScriptedLLM([]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f6")
        await until(pilot, lambda: app.screen.__class__.__name__ == "SettingsScreen")
        app.screen.query_one("#network-local_only").value = True
        await pilot.press("ctrl+s")
        await until(pilot, lambda: dirs.config_file.exists())
        assert "local_only = true" in dirs.config_file.read_text()
        assert app.settings.network.local_only is True
        app.screen.query_one("#model-n_ctx", Input).value = "lots"
        await pilot.press("ctrl+s")
        assert any("whole number" in m for m in messages(app))
        assert "lots" not in dirs.config_file.read_text()


async def test_keys_are_remapped_from_config(env):
    app = make_app(env, ScriptedLLM([]))
    app.settings.keys = {"screen.history": "f9", "no.such.binding": "x"}
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f9")
        await until(pilot, lambda: app.screen.__class__.__name__ == "HistoryScreen")
        assert any("no.such.binding" in m for m in messages(app))


async def test_train_screen_counts_feedback_and_reports_a_failed_training_process(env, monkeypatch):
    from sleuth.train import expectations
    from tests.train.test_expectations import CURVE

    monkeypatch.setattr(expectations, "load_curve", lambda: CURVE)
    store = env[0]
    _, _, (a,) = ask(store, "Who founded Lyon?", "Plancus [1].")
    store.feedback.rate(a, thumb=1)
    monkeypatch.setenv("SLEUTH_HOME", str(env[2].data.parent))
    app = make_app(env, ScriptedLLM([]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: app.screen.__class__.__name__ == "TrainScreen")
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 5, timeout=60)
        sft = table.get_row_at(0)
        assert sft[0] == "SFT" and "not yet" in str(sft[4])
        reward = table.get_row_at(4)  # a rated answer the reader kept no candidates for
        assert reward[0] == "Reward model" and reward[1] == "0" and "not yet" in str(reward[4])
        log = app.screen.query_one("#train-log", RichLog)

        def logged() -> str:
            return " ".join(" ".join(strip.text for strip in log.lines).split())

        await until(pilot, lambda: "You have rated 1 question." in logged())
        assert "In Sleuth's benchmark (qwen2.5-0.5b, SFT, 50 held-out questions)" in logged()
        assert app.screen.curve_shown  # the plot shows the curve until training starts
        await pilot.press("ctrl+s")
        await until(pilot, lambda: any("Training failed" in m for m in messages(app)), timeout=120)
        assert any("SFT needs at least 4" in m for m in messages(app))
        assert app.is_running


@pytest.mark.slow
async def test_train_screen_runs_training_in_a_separate_process(
    env, monkeypatch, tiny_gguf, tiny_hf, train_cache
):
    store, settings, dirs = env
    for question in [f"Question {i} about Lyon?" for i in range(12)]:
        _, _, (good,) = ask(store, question, "Plancus founded Lyon [1].")
        store.feedback.rate(good, thumb=1)
    home = dirs.data.parent
    share_converted_models(train_cache, dirs.cache)
    monkeypatch.setenv("SLEUTH_HOME", str(home))
    monkeypatch.setenv("SLEUTH_MODEL_PATH", str(tiny_gguf))
    settings.model.path = str(tiny_gguf)
    app = make_app(env, ScriptedLLM([]))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f5")
        await until(pilot, lambda: app.screen.__class__.__name__ == "TrainScreen")
        steps = app.screen.query_one("#steps", Input)
        steps.value = "3"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.screen.result is not None, timeout=300)
        assert app.screen.result["status"] == "done"
        assert [s for s, _ in app.screen.losses] == [1, 2, 3]
        assert store.training.run(app.screen.result["training_run_id"]).status == "done"


def test_first_frame_is_fast(env):
    """The app draws before the model loads (which takes as long as it takes)."""
    import threading

    release = threading.Event()

    def slow_loader(s, d, st):
        release.wait(30)
        return ScriptedLLM([]), ModelInfo("scripted", "test")

    app = make_app(env, loader=slow_loader)

    async def run() -> float:
        started = time.perf_counter()
        async with app.run_test(size=SIZE) as pilot:
            await pilot.pause()
            first_frame = time.perf_counter() - started
            assert "loading" in app.screen.query_one(StatusBar).model
            release.set()
            await until(pilot, lambda: app.llm is not None)
        return first_frame

    assert asyncio.run(run()) < 5.0  # generous for CI; bench/tui_stream.py measures it


def test_every_binding_has_an_id_and_a_description():
    from sleuth.tui.app import SleuthApp

    app = SleuthApp.__new__(SleuthApp)
    for binding in SleuthApp._all_bindings(app):
        assert binding.id and binding.description, binding


def test_the_app_module_imports_without_side_effects(tmp_path, monkeypatch):
    import importlib

    monkeypatch.setenv("SLEUTH_HOME", str(tmp_path / "untouched"))
    importlib.reload(importlib.import_module("sleuth.tui.app"))
    assert not (tmp_path / "untouched").exists()


def test_store_path_is_untouched_by_building_the_app(env):
    store, settings, dirs = env
    build_app(settings, dirs, store, model_loader=lambda *a: (None, None))
    assert not Path(dirs.config_file).exists()


async def test_text_from_outside_is_shown_as_text_never_as_markup(env, tmp_path):
    from sleuth.agent.tools.library import index_paths
    from sleuth.tui.widgets.sources_panel import SourcesPanel

    store = env[0]
    notes = tmp_path / "notes"
    notes.mkdir()
    title = "Lyon [--quick] [@click=app.quit]quit[/] [b]bold?[/b]\x1b]0;PWNED\x07"
    (notes / "lyon.md").write_text(f"# {title}\n\nLyon was founded by Plancus.")
    index_paths(store, [notes])
    plan = {
        "subquestions": [
            {"question": "Who founded Lyon?", "tool": "search_library", "query": "Lyon Plancus"}
        ]
    }
    app = make_app(env, ScriptedLLM([plan, "Plancus [1]."]))
    async with app.run_test(size=SIZE) as pilot:
        await ask_question(pilot, "Who founded Lyon?")
        await answered(pilot)
        panel = app.screen.query_one(SourcesPanel)
        shown = panel.get_option_at_index(0).prompt.plain
        assert "[--quick] [@click=app.quit]quit[/] [b]bold?[/b]" in shown
        assert "\x1b" not in shown and "\x07" not in shown
        await pilot.press("ctrl+o", "enter")
        await until(pilot, lambda: isinstance(app.screen, Preview))
        label = str(app.screen.query_one("Label").render())
        assert "[@click=app.quit]quit[/]" in label and "\x1b" not in label
        await pilot.press("escape")
        assert app.is_running  # no injected action ran
