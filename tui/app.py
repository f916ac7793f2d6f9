"""The Textual app: global bindings, screen routing, the model loaded in the background.

`build_app` is the one factory, used by `sleuth` and by the tests (which pass a scripted
model loader). Nothing is loaded at import: the first frame comes before the model, whose
status shows in every screen's status bar.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable, Iterable
from typing import Any

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import reactive
from textual.screen import Screen

from sleuth.agent.errors import AgentError
from sleuth.agent.models.catalog import ModelInfo, open_llm
from sleuth.store import Dirs, Store, StoreError
from sleuth.store.settings import Settings, load_settings

from .render import plain
from .screens.history import HistoryScreen
from .screens.library import LibraryScreen
from .screens.models import ModelsScreen
from .screens.research import ResearchScreen
from .screens.settings import SettingsScreen
from .screens.train import TrainScreen

ModelLoader = Callable[[Settings, Dirs, Store], tuple[Any, ModelInfo]]
SCREENS = {
    "research": ("Research", ResearchScreen),
    "history": ("History", HistoryScreen),
    "library": ("Library", LibraryScreen),
    "models": ("Models", ModelsScreen),
    "train": ("Train", TrainScreen),
    "settings": ("Settings", SettingsScreen),
}


class SleuthApp(App):
    model_state: reactive[tuple[str, str, str, str]] = reactive(
        ("loading the model…", "", "", ""), always_update=True
    )

    CSS_PATH = "app.tcss"
    TITLE = "Sleuth"
    MODES = {name: screen for name, (_, screen) in SCREENS.items()}
    DEFAULT_MODE = "research"
    BINDINGS = [
        Binding("f1", "switch_mode('research')", "Research", id="screen.research"),
        Binding("f2", "switch_mode('history')", "History", id="screen.history"),
        Binding("f3", "switch_mode('library')", "Library", id="screen.library"),
        Binding("f4", "switch_mode('models')", "Models", id="screen.models"),
        Binding("f5", "switch_mode('train')", "Train", id="screen.train"),
        Binding("f6", "switch_mode('settings')", "Settings", id="screen.settings"),
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
    ]

    def __init__(
        self,
        settings: Settings,
        dirs: Dirs,
        store: Store,
        *,
        model_loader: ModelLoader = open_llm,
        search_factory=None,
    ) -> None:
        super().__init__()
        self.settings, self.dirs, self.store = settings, dirs, store
        self.model_loader = model_loader
        self.search_factory = search_factory
        self.llm = None
        self.model_info: ModelInfo | None = None
        self.model_error: str | None = None
        self.current_assistant = None

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity="information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Notifications carry text from outside (paths, URLs, page errors): shown as text,
        never parsed as markup."""
        super().notify(
            plain(message), title=plain(title), severity=severity, timeout=timeout, markup=False
        )

    def on_mount(self) -> None:
        self.apply_keymap()
        self.load_model()
        try:  # `kill` and a closed terminal end a run the way escape does, then quit
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGHUP):
                loop.add_signal_handler(signum, lambda: self.run_worker(self.stop_and_exit()))
        except (RuntimeError, ValueError):  # not the main thread (tests drive the app so)
            pass

    async def stop_and_exit(self) -> None:
        """Cancel a run in progress, wait for it to be recorded as cancelled, then quit."""
        if self.current_assistant is not None:
            self.current_assistant.cancel()
        research = [w for w in self.workers if w.group == "research" and not w.is_finished]
        if research:
            await asyncio.wait([asyncio.ensure_future(w.wait()) for w in research], timeout=30)
        self.exit()

    def apply_keymap(self) -> None:
        if self.settings.keys:
            known = {b.id for b in self._all_bindings() if b.id}
            unknown = sorted(set(self.settings.keys) - known)
            if unknown:
                self.notify(
                    f"Unknown key binding id(s) in [keys]: {', '.join(unknown)}.",
                    severity="warning",
                    timeout=10,
                )
            self.set_keymap({k: v for k, v in self.settings.keys.items() if k in known})

    def _all_bindings(self) -> Iterable[Binding]:
        from .screens.compare import CompareScreen
        from .widgets.answer_view import AnswerView

        for cls in [type(self), *(s for _, s in SCREENS.values()), CompareScreen, AnswerView]:
            for binding in cls.BINDINGS:
                if isinstance(binding, Binding):
                    yield binding

    # -- the model -------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="model")
    def load_model(self) -> None:
        self.call_from_thread(self._model_status, "loading the model…", "")
        try:
            llm, info = self.model_loader(self.settings, self.dirs, self.store)
        except (AgentError, StoreError) as exc:
            self.call_from_thread(self._model_failed, str(exc))
            return
        self.call_from_thread(self._model_ready, llm, info)

    def _model_ready(self, llm, info: ModelInfo) -> None:
        old = self.llm
        self.llm, self.model_info, self.model_error = llm, info, None
        self.current_assistant = None
        if old is not None and old is not llm and hasattr(old, "close"):
            old.close()
        for warning in info.warnings:
            self.notify(warning, severity="warning", timeout=10)
        self.refresh_status()

    def _model_failed(self, message: str) -> None:
        self.model_error = message
        self.refresh_status()
        self.notify(message, title="No model", severity="error", timeout=20)

    def _model_status(self, model: str, adapter: str) -> None:
        self.model_state = (model, adapter, "", self.model_state[3])

    def refresh_status(self) -> None:
        """Recompute what every screen's status bar shows (they watch `model_state`)."""
        info = self.model_info
        note = "local-only" if self.settings.network.local_only else ""
        if self.model_error:
            self.model_state = ("no model (see Settings, F6)", "", "", note)
        elif info is None:
            self.model_state = ("loading the model…", "", "", note)
        else:
            adapter = f"adapter {info.adapter_path.rsplit('/', 1)[-1]}" if info.adapter_path else ""
            if info.backend == "llama.cpp":
                device = "GPU" if info.gpu and info.n_gpu_layers else "CPU"
            else:
                device = "server"
            self.model_state = (info.name.split(" + ")[0], adapter, device, note)

    def assistant(self):
        """The research assistant over the loaded model, or None (with a notice) when not
        ready."""
        if self.model_error:
            self.notify(f"{self.model_error}", title="No model", severity="error", timeout=10)
            return None
        if self.llm is None:
            self.notify("The model is still loading; ask again in a moment.", severity="warning")
            return None
        if self.current_assistant is None:
            from sleuth.agent.research.assistant import Assistant
            from sleuth.agent.tools.search import make_search

            try:
                search = (
                    self.search_factory(self.settings)
                    if self.search_factory
                    else make_search(self.settings)
                )
            except (AgentError, StoreError) as exc:
                self.notify(str(exc), severity="error")
                return None
            self.current_assistant = Assistant(
                self.store, self.llm, self.model_info, self.settings, search=search
            )
        return self.current_assistant

    def activate_model(self, model_id: int) -> None:
        """Make a registry row active and switch the running model to it (no restart); says
        why not when the row does not fit the running base or its file is gone."""
        self._switch_model(lambda registry, base: registry.activate(model_id, base))

    def rollback_model(self, kind: str = "model") -> None:
        """Make the active adapter's parent active again and switch to it (kind "reward":
        the active reward model's parent, or none)."""
        self._switch_model(
            lambda registry, base: registry.rollback(base, kind),
            nothing="No reward model is active." if kind == "reward" else None,
        )

    def _switch_model(self, change, nothing: str | None = None) -> None:
        from pathlib import Path

        from sleuth.agent.models.registry import ModelRegistry

        info = self.model_info
        if info is None or info.base_path is None:
            self.notify("The model is not loaded (or runs on a server).", severity="warning")
            return
        try:
            row = change(ModelRegistry(self.store), Path(info.base_path))
        except (AgentError, StoreError) as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        if row is None:
            self.notify(nothing or "The base model is already active.")
            return
        self.notify(f"Activating {row.name}…")
        self.load_model()

    def reload_settings(self, *, reload_model: bool) -> None:
        self.settings = load_settings(self.dirs.config_file)
        self.current_assistant = None
        if reload_model:
            self.load_model()
        self.refresh_status()

    async def continue_session(self, session_id: int) -> None:
        await self.switch_mode("research")
        screen = self.screen
        if isinstance(screen, ResearchScreen):
            await screen.continue_session(session_id)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for name, (title, _) in SCREENS.items():
            yield SystemCommand(
                f"Go to {title}",
                f"Open the {title} screen",
                lambda name=name: self.switch_mode(name),
            )
        yield SystemCommand(
            "Reload the model",
            "Load the configured model and active adapter again",
            self.load_model,
        )
        yield SystemCommand(
            "Toggle local-only mode",
            "Send nothing off this machine (no web search or fetching)",
            self.toggle_local_only,
        )
        yield SystemCommand(
            "Toggle plan review",
            "Pause after planning so you can edit the plan",
            self.toggle_review,
        )

    def toggle_local_only(self) -> None:
        from sleuth.store.settings import save_setting

        save_setting(
            self.dirs.config_file, "network.local_only", not self.settings.network.local_only
        )
        self.reload_settings(reload_model=False)
        self.notify(f"local-only is {'on' if self.settings.network.local_only else 'off'}")

    def toggle_review(self) -> None:
        from sleuth.store.settings import save_setting

        save_setting(
            self.dirs.config_file, "research.review_plan", not self.settings.research.review_plan
        )
        self.reload_settings(reload_model=False)
        self.notify(f"plan review is {'on' if self.settings.research.review_plan else 'off'}")

    async def on_unmount(self) -> None:
        if self.current_assistant is not None:
            await self.current_assistant.aclose()
        if self.llm is not None and hasattr(self.llm, "close"):
            self.llm.close()


def build_app(settings: Settings, dirs: Dirs, store: Store, **kwargs) -> SleuthApp:
    """The app, as `sleuth` runs it and as the tests drive it."""
    return SleuthApp(settings, dirs, store, **kwargs)


def run_app(settings: Settings, dirs: Dirs) -> int:
    try:
        store = Store.open(dirs.database)
    except StoreError as exc:
        print(f"sleuth: {exc}", file=sys.stderr)
        return 2
    try:
        build_app(settings, dirs, store).run()
    finally:
        store.close()
    return 0
