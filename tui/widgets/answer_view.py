"""The answer: streamed as Markdown, then replaced by the verified text with its citations
linked to the sources panel and unsupported claims flagged."""

from __future__ import annotations

import asyncio

from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Markdown
from textual.widgets.markdown import MarkdownStream

from sleuth.agent.citations import CITATION, numbers_in

from ..render import plain


def linked(text: str) -> str:
    """[n] (and each number of [n, m]) -> a link the app resolves to source n."""
    return CITATION.sub(
        lambda m: "".join(f"[\\[{n}\\]](source:{n})" for n in numbers_in(m.group(1))), text
    )


class AnswerView(VerticalScroll, can_focus=True):
    """Holds the answer. When it has focus, rating keys apply to the answer shown."""

    DEFAULT_CSS = """
    AnswerView {
        border: round $accent 50%;
        border-title-color: $text;
        height: 1fr;
        padding: 0 1;
    }
    AnswerView:focus {
        border: round $accent;
    }
    AnswerView.-unsure, AnswerView.-unsure:focus {
        border: dashed $warning;
    }
    AnswerView > Markdown {
        margin: 0;
    }
    """

    BINDINGS = [
        Binding("plus,equals_sign", "screen.rate_thumb(1)", "Good", id="rate.up"),
        Binding("minus", "screen.rate_thumb(-1)", "Bad", id="rate.down"),
        Binding("1", "screen.rate_stars(1)", "1★", show=False, id="rate.stars1"),
        Binding("2", "screen.rate_stars(2)", "2★", show=False, id="rate.stars2"),
        Binding("3", "screen.rate_stars(3)", "3★", show=False, id="rate.stars3"),
        Binding("4", "screen.rate_stars(4)", "4★", show=False, id="rate.stars4"),
        Binding("5", "screen.rate_stars(5)", "1-5★", id="rate.stars5"),
        Binding("c", "screen.comment", "Comment", id="rate.comment"),
        Binding("e", "screen.correct", "Correct", id="rate.correct"),
        Binding("u", "screen.undo_rating", "Undo rating", id="rate.undo"),
        Binding("g", "screen.regenerate", "Regenerate", id="answer.regenerate"),
    ]

    def compose(self):
        yield Markdown("", id="answer-markdown", open_links=False)

    FLUSH_S = 0.05  # tokens reach the screen at most 20 times a second, however fast they come

    def on_mount(self) -> None:
        self.border_title = "Answer"
        self._stream: MarkdownStream | None = None
        self._pending: list[str] = []
        self.set_interval(self.FLUSH_S, self._flush)

    @property
    def markdown(self) -> Markdown:
        return self.query_one("#answer-markdown", Markdown)

    async def start(self) -> None:
        await self.stop()
        await self.markdown.update("")
        self._stream = Markdown.get_stream(self.markdown)

    def write(self, text: str) -> None:
        """Queue streamed text; a timer moves it to the screen (cheap per token)."""
        if self._stream is not None:
            self._pending.append(plain(text))

    async def _flush(self) -> None:
        if self._stream is None or not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        following = self.scroll_y >= self.max_scroll_y - 1  # the reader has not scrolled up
        await self._stream.write(text)
        if following:
            self.scroll_end(animate=False, immediate=False)

    async def stop(self) -> None:
        if self._stream is None:
            return
        await self._flush()
        stream, self._stream = self._stream, None
        try:
            await stream.stop()
        except asyncio.CancelledError:
            # A stream stopped before its task first ran (a rejected answer's view restarted,
            # then quoted evidence at once) raises the cancellation of *its* task here; only a
            # cancellation of ours goes on up.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise

    async def show(self, text: str, *, note: str = "") -> None:
        """Replace what is shown (the verified answer, or a past one)."""
        await self.stop()
        self.anchor(
            False
        )  # streaming kept the view at the bottom; a finished answer starts at the top
        await self.markdown.update(linked(plain(text)) + (f"\n\n{note}" if note else ""))
        self.scroll_home(animate=False)
