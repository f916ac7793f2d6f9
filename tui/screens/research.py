"""Research (home): ask, watch the plan and the activity, read the streamed answer, rate it.

The research loop runs in an async worker on the app's event loop (its LLM calls go to a
thread inside the agent); the screen renders each event as it arrives. Escape cancels a run
and keeps what was found. With the answer focused, one key rates it.
"""

from __future__ import annotations

import time
from dataclasses import asdict

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Markdown, Static

from sleuth.agent.errors import AgentError
from sleuth.agent.research.events import (
    AnswerDone,
    AnswerRejected,
    EvidenceChosen,
    PlanReady,
    PlanReviewed,
    RunFinished,
    RunStarted,
    SearchIssued,
    SubquestionDone,
    Token,
)
from sleuth.agent.research.evidence import snippet
from sleuth.store import StoreError
from sleuth.store.rows import Rating

from ..render import describe, describe_rating, is_trouble, literal, plain, unsure_note
from ..widgets.activity_log import ActivityLog
from ..widgets.answer_view import AnswerView
from ..widgets.plan_panel import PlanPanel
from ..widgets.sources_panel import SourcesPanel
from ..widgets.status_bar import StatusBar
from .compare import CompareScreen
from .dialogs import AskText, EditText, Preview, open_web_link
from .plan_review import PlanReview


class ResearchScreen(Screen):
    BINDINGS = [
        Binding("escape", "cancel_run", "Cancel run", id="research.cancel"),
        Binding("ctrl+n", "new_session", "New session", id="research.new"),
        Binding("ctrl+l", "focus_question", "Question", id="research.question"),
        Binding("ctrl+o", "focus_sources", "Sources", id="research.sources"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.session_id: int | None = None
        self.answer: dict | None = None  # the answer shown: id, run_id, text
        self.evidence: list[dict] = []  # what the writer of that answer saw, numbered
        self._before: dict[int, Rating | None] = {}  # each answer's rating before the last change
        self.running = False
        self.tokens = 0
        self.first_token: float | None = None
        self.started: float | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="research-body"):
            with Vertical(id="research-left"):
                yield PlanPanel(id="plan")
                yield ActivityLog(id="activity")
            with Vertical(id="research-center"):
                yield AnswerView(id="answer")
                yield Static("", id="rating")
            yield SourcesPanel(id="sources")
        yield Input(
            placeholder="Ask a question (enter). Follow-ups continue the session.", id="question"
        )
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.answer_view = self.query_one(AnswerView)  # looked up once: tokens arrive fast
        self.query_one("#question", Input).focus()
        self.app.refresh_status()

    # -- asking ------------------------------------------------------------------------------

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "question":
            return
        question = event.value.strip()
        if not question:
            self.notify("Type a question first.", severity="warning")
            return
        if self.running:
            self.notify("A run is in progress: escape cancels it.", severity="warning")
            return
        assistant = self.app.assistant()
        if assistant is None:
            return  # the app has said why (model loading or missing)
        event.input.value = ""
        self.run_research(assistant, question)

    async def _reset(self, question: str) -> None:
        self.query_one(PlanPanel).clear()
        self.query_one(SourcesPanel).show([])
        log = self.query_one(ActivityLog)
        log.add(f"» {question}")
        self.query_one("#rating", Static).update("")
        await self.query_one(AnswerView).start()
        self.tokens, self.first_token, self.started = 0, None, time.monotonic()

    @work(exclusive=True, group="research")
    async def run_research(self, assistant, question: str) -> None:
        self.running = True
        await self._reset(question)
        review = self.review_plan if self.app.settings.research.review_plan else None
        try:
            async for event in assistant.ask(question, session_id=self.session_id, review=review):
                await self.handle(event)
        except (AgentError, StoreError) as exc:
            self.notify(str(exc), severity="error", timeout=10)
        finally:
            self.running = False
            await self.query_one(AnswerView).stop()

    async def review_plan(self, plan):
        return await self.app.push_screen_wait(PlanReview(plan, sorted({s.tool for s in plan})))

    async def handle(self, event) -> None:
        line = describe(event, timing=False)  # the status bar shows the time
        if line:
            self.query_one(ActivityLog).add(
                line, failed=is_trouble(event), dim=isinstance(event, SearchIssued)
            )
        status = self.query_one(StatusBar)
        match event:
            case RunStarted(session_id=session_id):
                self.session_id = session_id
            case PlanReady(subquestions=subs, round=round_number, fallback=fallback):
                self.query_one(PlanPanel).add_round(subs, round_number, fallback)
            case PlanReviewed(subquestions=subs):
                self.query_one(PlanPanel).replace_first_round(subs)
            case SubquestionDone(index=index, sources=sources):
                self.query_one(PlanPanel).done(index, sources)
            case EvidenceChosen(items=items):
                self.evidence = items
                self.query_one(SourcesPanel).show(items)
            case Token(text=text):
                now = time.monotonic()
                self.first_token = self.first_token or now
                self.tokens += 1
                self.answer_view.write(text)
                if self.tokens % 8 == 0 and now > self.first_token:
                    status.speed = f"{self.tokens / (now - self.first_token):.0f} tok/s"
            case AnswerRejected():
                await self.answer_view.start()  # what streamed is not the answer: clear it
                self.tokens, self.first_token = 0, None
            case AnswerDone() as done:
                await self.show_answer(done)
            case RunFinished(status=final, seconds=seconds, error=error):
                status.elapsed = f"{seconds:.1f} s"
                if final == "cancelled":
                    self.notify("Run cancelled; its steps and sources are kept.")
                elif final == "no_evidence":
                    await self.query_one(AnswerView).show(f"_{error}_")
                    self.notify(error or "Nothing was found.", severity="warning", timeout=15)
                elif final == "failed":
                    self.notify(error or "The run failed.", severity="error", timeout=10)

    async def show_answer(self, done: AnswerDone) -> None:
        self.answer = {"id": done.answer_id, "run_id": done.run_id, "text": done.text}
        unsupported = [c["text"] for c in done.citations if not c["supported"]]
        notes = []
        if unsupported:
            notes.append(
                "**⚠ Not supported by the evidence they cite:**\n"
                + "\n".join(f"- {plain(s)}" for s in unsupported)
            )
        v = done.verification
        if v.get("dangling_removed"):
            notes.append(f"_{v['dangling_removed']} citation(s) to missing evidence were removed._")
        if v.get("sentences") and not v.get("cited_sentences"):
            notes.append("_This answer cites no evidence._")
        view = self.query_one(AnswerView)
        unsure = unsure_note(v)
        view.set_class(bool(unsure), "-unsure")  # a not-sure answer looks different
        text = f"**⚠ {unsure}**\n\n{done.text}" if unsure else done.text
        await view.show(text, note="\n\n".join(notes))
        self.refresh_rating()
        self.query_one(AnswerView).focus()

    # -- sources -----------------------------------------------------------------------------

    def on_markdown_link_clicked(self, event: Markdown.LinkClicked) -> None:
        if event.href.startswith("source:"):
            self.query_one(SourcesPanel).highlight_number(int(event.href.split(":", 1)[1]))
        else:
            open_web_link(self.app, event.href)

    def on_sources_panel_chosen(self, event: SourcesPanel.Chosen) -> None:
        source = event.source
        text = next(
            (e["text"] for e in self.evidence if e["number"] == source["number"]),
            source.get("snippet") or "",
        )
        self.app.push_screen(Preview(source.get("title") or source["uri"], source["uri"], text))

    # -- rating ------------------------------------------------------------------------------

    def _rated_answer(self) -> int | None:
        if self.answer is None:
            self.notify("There is no answer to rate yet.", severity="warning")
            return None
        return self.answer["id"]

    def action_rate_thumb(self, thumb: int) -> None:
        answer_id = self._rated_answer()
        if answer_id is not None:
            self._rate(answer_id, thumb=thumb)

    def action_rate_stars(self, stars: int) -> None:
        answer_id = self._rated_answer()
        if answer_id is not None:
            self._rate(answer_id, stars=stars)

    def _rate(self, answer_id: int, **rating) -> None:
        feedback = self.app.store.feedback
        try:
            before = feedback.rating(answer_id)
            feedback.rate(answer_id, **rating)
        except StoreError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self._before[answer_id] = before
        self.refresh_rating()
        self.notify(f"Saved: {describe_rating(feedback.rating(answer_id))} (u undoes)")

    @work(group="dialog")
    async def action_comment(self) -> None:
        answer_id = self._rated_answer()
        if answer_id is None:
            return
        rating = self.app.store.feedback.rating(answer_id)
        current = rating.comment or "" if rating else ""
        comment = await self.app.push_screen_wait(AskText("Comment on this answer", current))
        if comment is not None:
            self._rate(answer_id, comment=comment)

    @work(group="dialog")
    async def action_correct(self) -> None:
        """Edit the answer into the right one: kept with the rating, trained on (SFT target,
        preferred over this answer)."""
        answer_id = self._rated_answer()
        if answer_id is None:
            return
        rating = self.app.store.feedback.rating(answer_id)
        current = (rating.correction if rating else None) or self.answer["text"]
        title = "Correct this answer: write what it should have said (an empty text removes it)"
        text = await self.app.push_screen_wait(EditText(title, current))
        if text is None or text.strip() == ((rating.correction if rating else None) or ""):
            return  # cancelled, or nothing to change
        if text.strip() == self.answer["text"].strip():
            self.notify("The text is the answer as written: no correction saved.")
            return
        self._rate(answer_id, correction=text)

    def action_undo_rating(self) -> None:
        """Put the rating back as it was before the last change (none: removed)."""
        answer_id = self._rated_answer()
        if answer_id is None:
            return
        feedback = self.app.store.feedback
        try:
            feedback.clear_rating(answer_id)
            before = self._before.pop(answer_id, None)
            if before is not None:
                feedback.rate(
                    answer_id,
                    thumb=before.thumb,
                    stars=before.stars,
                    comment=before.comment,
                    correction=before.correction,
                )
        except StoreError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        self.refresh_rating()
        self.notify(f"Rating {'restored' if before else 'removed'}.")

    def refresh_rating(self) -> None:
        if self.answer is None:
            return
        rating = self.app.store.feedback.rating(self.answer["id"])
        text = literal(f"answer {self.answer['id']}: {describe_rating(rating)}")
        text.append(
            "  +/- thumbs  1-5 stars  c comment  e correct  u undo  g regenerate", style="dim"
        )
        self.query_one("#rating", Static).update(text)

    # -- regenerate and compare --------------------------------------------------------------

    def action_regenerate(self) -> None:
        if self._rated_answer() is None or self.running:
            return
        assistant = self.app.assistant()
        if assistant is not None:
            self.run_regenerate(assistant, self.answer["run_id"])

    @work(exclusive=True, group="research")
    async def run_regenerate(self, assistant, run_id: int) -> None:
        self.running = True
        first = dict(self.answer)
        self.query_one(ActivityLog).add("regenerating from the same evidence…")
        await self.query_one(AnswerView).start()
        new: AnswerDone | None = None
        try:
            async for event in assistant.regenerate(run_id):
                if isinstance(event, Token):
                    self.answer_view.write(event.text)
                elif isinstance(event, AnswerDone):
                    new = event
        except (AgentError, StoreError) as exc:
            self.notify(str(exc), severity="error")
        finally:
            self.running = False
            await self.query_one(AnswerView).stop()
        if new is None:
            await self.query_one(AnswerView).show(first["text"])
            return
        verdict = await self.app.push_screen_wait(
            CompareScreen(first["id"], first["text"], new.answer_id, new.text)
        )
        if verdict != "a":  # B won, tie, or no verdict: show the newer answer
            await self.show_answer(new)
        else:
            self.answer = first
            await self.query_one(AnswerView).show(first["text"])
            self.refresh_rating()

    # -- other actions -----------------------------------------------------------------------

    def action_cancel_run(self) -> None:
        assistant = self.app.current_assistant
        if self.running and assistant is not None:
            assistant.cancel()
            self.notify("Cancelling…")

    def action_new_session(self) -> None:
        if self.running:
            self.notify("Cancel the current run first (escape).", severity="warning")
            return
        self.session_id = None
        self.answer = None
        self.query_one(PlanPanel).clear()
        self.query_one(SourcesPanel).show([])
        self.query_one(ActivityLog).clear()
        self.query_one("#rating", Static).update("")
        self.call_later(self.query_one(AnswerView).show, "")
        self.query_one("#question", Input).focus()
        self.notify("New session.")

    async def continue_session(self, session_id: int) -> None:
        """Show a past session's last answer and ask follow-ups in it."""
        self.session_id = session_id
        turns = self.app.store.runs.turns(session_id)
        self.query_one(ActivityLog).add(
            f"continuing session {session_id} ({len(turns)} question(s))"
        )
        for turn in reversed(turns):
            answers = self.app.store.runs.answers_for_turn(turn.id)
            if answers:
                last = answers[-1]
                self.answer = {"id": last.id, "run_id": last.run_id, "text": last.text}
                await self.query_one(AnswerView).show(f"**{turn.question}**\n\n{last.text}")
                self.evidence = [
                    {**asdict(e), "snippet": snippet(e.text)}
                    for e in self.app.store.runs.evidence(last.run_id)
                ]
                self.query_one(SourcesPanel).show(self.evidence)
                self.refresh_rating()
                break
        self.query_one("#question", Input).focus()

    def action_focus_question(self) -> None:
        self.query_one("#question", Input).focus()

    def action_focus_sources(self) -> None:
        self.query_one(SourcesPanel).focus()
