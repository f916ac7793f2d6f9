"""Small builders for store contents and test homes used across tests."""

from __future__ import annotations

from pathlib import Path

from sleuth.store import Store

EVIDENCE = [
    {
        "uri": "https://example.org/paris",
        "title": "Paris",
        "text": "Paris is the capital of France.",
    },
    {"uri": "/notes/rivers.md", "title": "Rivers", "text": "The Seine flows through Paris."},
]


def writer_messages(question: str, evidence=EVIDENCE) -> list[dict[str, str]]:
    numbered = "\n".join(f"[{i}] {e['title']}: {e['text']}" for i, e in enumerate(evidence, 1))
    return [
        {"role": "system", "content": "Answer from the evidence and cite it as [n]."},
        {"role": "user", "content": f"Question: {question}\n\nEvidence:\n{numbered}"},
    ]


def add_run_with_answer(
    store: Store,
    turn_id: int,
    text: str,
    *,
    question: str = "What is the capital of France?",
    evidence=EVIDENCE,
    verification: dict | None = None,
) -> int:
    """A finished run of `turn_id` with evidence and an answer; returns the answer id."""
    run_id = store.runs.start_run(turn_id, {"research": {"max_rounds": 1}})
    store.runs.add_step(run_id, "plan_ready", {"subquestions": [question]})
    store.runs.add_evidence(run_id, evidence)
    answer_id = store.runs.add_answer(
        run_id,
        text=text,
        messages=writer_messages(question, evidence),
        sampling={"temperature": 0.3, "max_tokens": 64, "seed": 1},
        citations=[{"number": 1, "sentence": text}],
        verification=verification,
        model_name="scripted",
        prompt_tokens=40,
        completion_tokens=len(text.split()),
    )
    store.runs.finish_run(run_id, "done")
    return answer_id


def write_notes(folder: Path, notes: dict[str, str]) -> Path:
    """A folder of Markdown notes, one a title (its heading) and text; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, (title, text) in enumerate(notes.items()):
        (folder / f"n{number}.md").write_text(f"# {title}\n\n{text}\n")
    return folder


def ask(
    store: Store, question: str, *answers: str, verification: dict | None = None
) -> tuple[int, int, list[int]]:
    """A session with one turn and one run per answer text; returns (session, turn, answer ids)."""
    session_id = store.runs.new_session(question)
    turn_id = store.runs.add_turn(session_id, question)
    ids = [
        add_run_with_answer(store, turn_id, text, question=question, verification=verification)
        for text in answers
    ]
    return session_id, turn_id, ids


def share_converted_models(train_cache: Path, cache: Path) -> None:
    """Point a test home's cache at the session's converted models: a link, not a copy.

    A converted model is hundreds of MB (the real ones GBs); copying the cache into each
    home that trains once filled a CI disk.
    """
    (train_cache / "hf").mkdir(exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    (cache / "hf").symlink_to(train_cache / "hf", target_is_directory=True)
