"""Settings: the model file, GPU layers, how answers are made, the search backend, local-only and
whether library words may reach the web; saved to config.toml."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, Label, Select, Switch

from sleuth.store import ConfigError
from sleuth.store.settings import save_setting, setting_choices, setting_help

from ..widgets.status_bar import StatusBar

FIELDS = [
    ("model.path", "input"),
    ("model.n_gpu_layers", "input"),
    ("model.n_ctx", "input"),
    ("research.answer", "select"),
    ("search.backend", "select"),
    ("search.searxng_url", "input"),
    ("network.local_only", "switch"),
    ("research.library_to_web", "switch"),
    ("network.allow_private_hosts", "switch"),
    ("research.review_plan", "switch"),
    ("research.max_rounds", "input"),
    ("research.max_pages", "input"),
]


class SettingsScreen(Screen):
    BINDINGS = [Binding("ctrl+s", "save", "Save", id="settings.save")]

    def compose(self) -> ComposeResult:
        settings = self.app.settings
        with VerticalScroll(id="settings-form"):
            for key, kind in FIELDS:
                value = settings.get(key)
                widget_id = key.replace(".", "-")
                with Horizontal(classes="setting"):
                    yield Label(
                        f"[b]{key}[/b]\n[dim]{setting_help(key)}[/dim]", classes="setting-label"
                    )
                    if kind == "switch":
                        yield Switch(value=bool(value), id=widget_id)
                    elif kind == "select":
                        yield Select(
                            [(v, v) for v in setting_choices(key)],
                            value=value,
                            allow_blank=False,
                            id=widget_id,
                        )
                    else:
                        yield Input(str(value), id=widget_id)
            yield Label(
                "ctrl+s saves to the config file; model changes reload the model.", classes="hint"
            )
        yield StatusBar(id="status")
        yield Footer()

    def action_save(self) -> None:
        settings = self.app.settings
        changed = []
        try:
            for key, _ in FIELDS:
                widget = self.query_one("#" + key.replace(".", "-"))
                value = widget.value
                if str(value) != str(settings.get(key)):
                    save_setting(self.app.dirs.config_file, key, value)
                    changed.append(key)
        except ConfigError as exc:
            self.notify(str(exc), severity="error", timeout=10)
            return
        if not changed:
            self.notify("Nothing changed.")
            return
        self.app.reload_settings(reload_model=any(k.startswith("model.") for k in changed))
        self.notify(f"Saved {', '.join(changed)} to {self.app.dirs.config_file}.")
