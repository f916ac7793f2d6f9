"""Round trips through every table, the way the agent, the app and the trainer use them."""

from __future__ import annotations

import pytest

from sleuth.store import NotFound, Store, StoreError
from sleuth.store.rows import FeedbackCounts
from tests.helpers import EVIDENCE, ask, writer_messages


def test_session_turn_run_steps_evidence_answer_round_trip(store):
    session_id = store.runs.new_session("Capital of France")
    turn_id = store.runs.add_turn(session_id, "What is the capital of France?")
    follow_up = store.runs.add_turn(session_id, "And its river?")
    assert [t.position for t in store.runs.turns(session_id)] == [1, 2]
    assert store.runs.turn(follow_up).question == "And its river?"

    run_id = store.runs.start_run(turn_id, {"research": {"max_rounds": 2}}, model_id=None)
    assert store.runs.run(run_id).status == "running"
    plan = {"subquestions": [{"question": "capital?", "tools": ["web_search"]}]}
    store.runs.set_plan(run_id, plan)
    assert store.runs.run(run_id).plan == plan
    first = store.runs.add_step(run_id, "search", {"query": "capital of France"}, duration_ms=12.5)
    store.runs.add_step(run_id, "fetch", {"url": "https://x"}, status="failed", tokens_in=3)
    steps = store.runs.steps(run_id)
    assert [s.seq for s in steps] == [1, 2]
    assert steps[0].id == first and steps[0].data == {"query": "capital of France"}
    assert steps[1].status == "failed" and steps[1].tokens_in == 3

    store.runs.add_evidence(run_id, EVIDENCE)
    evidence = store.runs.evidence(run_id)
    assert [e.number for e in evidence] == [1, 2]
    assert evidence[1].uri == "/notes/rivers.md"

    messages = writer_messages("What is the capital of France?")
    answer_id = store.runs.add_answer(
        run_id,
        text="Paris [1].",
        messages=messages,
        sampling={"temperature": 0.3, "seed": 7},
        citations=[{"number": 1, "sentence": "Paris [1]."}],
        verification={"dangling": 0},
        model_name="SmolLM2",
        prompt_tokens=50,
        completion_tokens=4,
        duration_ms=80.0,
    )
    store.runs.finish_run(run_id, "done")
    answer = store.runs.answer(answer_id)
    assert answer.messages == messages
    assert answer.sampling["seed"] == 7
    assert answer.citations[0]["number"] == 1
    assert answer.session_id == session_id and answer.question.startswith("What is")
    assert store.runs.run(run_id).status == "done" and store.runs.run(run_id).ended_at
    assert store.runs.answer_for_run(run_id).id == answer_id


def test_ratings_are_changeable_and_removable(store):
    _, _, (answer_id,) = ask(store, "q?", "an answer")
    assert store.feedback.rating(answer_id) is None
    store.feedback.rate(answer_id, thumb=1)
    store.feedback.rate(answer_id, stars=4, comment="good sources")
    rating = store.feedback.rating(answer_id)
    assert (rating.thumb, rating.stars, rating.comment) == (1, 4, "good sources")
    store.feedback.rate(answer_id, thumb=-1)
    rating = store.feedback.rating(answer_id)
    assert rating.thumb == -1 and rating.stars == 4
    store.feedback.clear_rating(answer_id)
    assert store.feedback.rating(answer_id) is None


@pytest.mark.parametrize("kwargs", [{"stars": 6}, {"stars": 0}, {"thumb": 2}])
def test_bad_ratings_are_refused(store, kwargs):
    _, _, (answer_id,) = ask(store, "q?", "an answer")
    with pytest.raises(StoreError):
        store.feedback.rate(answer_id, **kwargs)
    assert store.feedback.rating(answer_id) is None


def test_rating_an_unknown_answer_says_so(store):
    with pytest.raises(NotFound, match="no answer 42"):
        store.feedback.rate(42, thumb=1)


def test_comparisons_replace_an_earlier_verdict_on_the_same_pair(store):
    _, _, (a, b) = ask(store, "q?", "first", "second")
    store.feedback.compare(a, b)
    store.feedback.compare(b, a)
    comparisons = store.feedback.comparisons()
    assert len(comparisons) == 1
    assert (comparisons[0].winner_id, comparisons[0].loser_id) == (b, a)
    store.feedback.compare(a, b, tie=True)
    assert store.feedback.comparisons()[0].tie == 1
    with pytest.raises(StoreError):
        store.feedback.compare(a, a)


def test_history_lists_sessions_and_searches_questions_and_answers(store):
    ask(store, "Who wrote Dubliners?", "James Joyce wrote it [1].")
    river, _, (answer_id,) = ask(store, "Which river flows through Paris?", "The Seine [1].")
    sessions = store.runs.history()
    assert [s.id for s in sessions][0] == river  # newest first
    assert sessions[0].turns[0].answer_ids == [answer_id]
    assert [s.id for s in store.runs.history(query="seine")] == [river]  # answer text
    assert [s.id for s in store.runs.history(query="riv")] == [river]  # question prefix
    assert store.runs.history(query='"; DROP TABLE x') == []  # punctuation is not syntax


def test_a_big_sources_chunks_go_in_and_out_in_bounded_transactions(store):
    """Each write transaction holds at most CHUNK_BATCH chunks, so another Sleuth waiting to
    write gets the lock between them (tests/reliability times it beside a 49 MB file)."""
    from sleuth.store.library import CHUNK_BATCH

    conn = store.library.db.utils.conn
    began: list[str] = []
    conn.set_trace_callback(lambda sql: began.append(sql) if sql.startswith("BEGIN") else None)
    chunks = [(f"word{i}", i, i + 1) for i in range(3 * CHUNK_BATCH + 1)]
    try:
        source_id = store.library.save_source(
            kind="file", uri="/lib/big.txt", text="x", content_hash="h1", chunks=chunks
        )
        assert len(began) >= 2 + 4  # the source row, old chunks (none), four batches
        assert store.library.chunk_count(source_id) == len(chunks)
        began.clear()
        store.library.save_source(  # a new version: the old chunks go out in batches too
            kind="file", uri="/lib/big.txt", text="y", content_hash="h2", chunks=chunks[:1]
        )
        assert len(began) >= 1 + 4 + 1  # the source row, four batches out, one in
        assert store.library.chunk_count(source_id) == 1
    finally:
        conn.set_trace_callback(None)


def test_sources_chunks_and_documents_round_trip(store):
    source_id = store.library.save_source(
        kind="web",
        uri="https://example.org/a",
        title="A page",
        text="one two three",
        content_hash="h1",
        chunks=[("one two", 0, 7), ("two three", 4, 13)],
        content_type="text/html",
    )
    assert store.library.source(source_id).title == "A page"
    assert [c.text for c in store.library.chunks(source_id)] == ["one two", "two three"]
    again = store.library.save_source(
        kind="web",
        uri="https://example.org/a",
        text="new",
        content_hash="h2",
        chunks=[("new", 0, 3)],
    )
    assert again == source_id and [c.text for c in store.library.chunks(source_id)] == ["new"]
    assert store.library.source_by_uri("https://example.org/a").content_hash == "h2"

    store.library.save_document(
        path="/lib/a.md",
        root="/lib",
        size=3,
        mtime=1.0,
        sha256="s",
        status="indexed",
        source_id=source_id,
    )
    assert store.library.document("/lib/a.md").source_id == source_id
    assert [d.path for d in store.library.documents(root="/lib")] == ["/lib/a.md"]
    store.library.delete_document("/lib/a.md")
    assert store.library.document("/lib/a.md") is None
    assert store.library.source_by_uri("https://example.org/a") is None
    assert store.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0] == 0


def test_model_registry_and_training_runs_round_trip(store):
    assert store.registry.base("fp-1") is None
    base = store.registry.model(
        store.registry.register(name="base", base_path="/m/base.gguf", base_fingerprint="fp-1")
    )
    assert store.registry.base("fp-1") == base
    run_id = store.training.start("dpo", {"steps": 10, "lr": 1e-4}, base.id)
    store.training.log_metrics(run_id, 1, {"loss": 0.69})
    store.training.log_metrics(run_id, 2, {"loss": 0.61})
    assert [m.metrics["loss"] for m in store.training.metrics(run_id)] == [0.69, 0.61]
    adapter = store.registry.register(
        name="dpo-1",
        base_path="/m/base.gguf",
        base_fingerprint="fp-1",
        adapter_path="/a/dpo-1.gguf",
        parent_id=base.id,
        training_run_id=run_id,
    )
    store.training.finish(
        run_id, "done", evaluation={"win_rate": 0.6}, summary={"steps": 10}, output_model_id=adapter
    )
    finished = store.training.run(run_id)
    assert finished.status == "done" and finished.evaluation == {"win_rate": 0.6}
    assert finished.output_model_id == adapter

    assert store.registry.active("fp-1") is None
    store.registry.activate(adapter)
    assert store.registry.active("fp-1").id == adapter
    store.registry.activate(base.id)  # roll back: one row changes flag
    assert store.registry.active("fp-1").id == base.id
    assert sum(m.active for m in store.registry.models("fp-1")) == 1
    store.registry.set_evaluation(adapter, {"reward": 0.4})
    assert store.registry.model(adapter).evaluation == {"reward": 0.4}


def test_feedback_counts(store):
    _, _, (a, b, c) = ask(store, "q?", "one", "two", "three")
    store.feedback.rate(a, thumb=1)
    store.feedback.rate(b, stars=2)
    store.feedback.compare(a, b)
    store.feedback.compare(a, c, tie=True)
    counts = store.feedback.counts()
    assert counts == FeedbackCounts(answers=3, ratings=2, positive=1, negative=1, comparisons=1)


def test_the_database_and_its_folder_are_the_users_alone(tmp_path):
    path = tmp_path / "private" / "data" / "sleuth.db"
    store = Store.open(path)
    store.runs.new_session("secret question")  # the WAL exists now
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    wal = path.with_name(path.name + "-wal")
    assert wal.exists() and wal.stat().st_mode & 0o777 == 0o600
    store.close()
