"""Plan review: edit, drop or add sub-questions before the executors run."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select

from sleuth.agent.research.planner import SubQuestion

TOOLS = [("web", "web_search"), ("library", "search_library")]


class PlanRow(Horizontal):
    DEFAULT_CSS = """
    PlanRow { height: 3; }
    PlanRow > Input { width: 1fr; }
    PlanRow > Select { width: 16; }
    """

    def __init__(self, sub: SubQuestion, tools: list[str]) -> None:
        super().__init__()
        self.sub, self.tools = sub, tools

    def compose(self) -> ComposeResult:
        yield Input(self.sub.query, placeholder="search query", classes="query")
        options = [(label, value) for label, value in TOOLS if value in self.tools]
        yield Select(
            options,
            value=self.sub.tool if self.sub.tool in self.tools else options[0][1],
            allow_blank=False,
        )

    def value(self) -> SubQuestion | None:
        query = " ".join(self.query_one(Input).value.split())
        if len(query) < 2:
            return None
        tool = str(self.query_one(Select).value)
        if query == self.sub.query and tool == self.sub.tool:
            return self.sub  # kept as proposed: still the model's (or the question's)
        return SubQuestion(query, tool, query, "user")


class PlanReview(ModalScreen[list[SubQuestion]]):
    """ctrl+s runs the plan as edited; ctrl+n adds a search; ctrl+d drops the focused one;
    escape runs the plan as the model wrote it."""

    BINDINGS = [
        Binding("ctrl+s", "run", "Run this plan", id="plan.run"),
        Binding("ctrl+n", "add", "Add search", id="plan.add"),
        Binding("ctrl+d", "drop", "Drop search", id="plan.drop"),
        Binding("escape", "keep", "Run as planned", id="plan.keep"),
    ]

    def __init__(self, plan: list[SubQuestion], tools: list[str]) -> None:
        super().__init__()
        self.plan, self.tools = plan, tools

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label("[b]Review the plan[/b]: edit the searches, then ctrl+s to run them")
            with VerticalScroll(id="plan-rows"):
                for sub in self.plan:
                    yield PlanRow(sub, self.tools)
            yield Label(
                "ctrl+s run  •  ctrl+n add  •  ctrl+d drop  •  escape keep as planned",
                classes="hint",
            )

    def action_run(self) -> None:
        edited = [v for row in self.query(PlanRow) if (v := row.value()) is not None]
        if not edited:
            self.notify("The plan is empty: add a search or press escape.", severity="warning")
            return
        self.dismiss(edited)

    def action_keep(self) -> None:
        self.dismiss(self.plan)

    def action_add(self) -> None:
        row = PlanRow(SubQuestion("", self.tools[0], ""), self.tools)
        self.query_one("#plan-rows").mount(row)
        self.call_after_refresh(lambda: row.query_one(Input).focus())

    def action_drop(self) -> None:
        focused = self.focused
        while focused is not None and not isinstance(focused, PlanRow):
            focused = focused.parent
        if isinstance(focused, PlanRow):
            focused.remove()
