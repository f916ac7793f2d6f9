"""Train: how much feedback exists and what each algorithm can use; start training in a
separate process (the UI stays responsive), watch progress and the loss/reward plot, cancel,
and activate the result with one key when the evaluation says it is better."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label, ProgressBar, RichLog, Select
from textual_plotext import PlotextPlot

from sleuth.train.verdict import Evaluation

from ..render import literal
from ..widgets.status_bar import StatusBar

ALGORITHMS = [
    ("SFT — imitate well-rated answers", "sft"),
    ("DPO — learn from comparisons", "dpo"),
    ("KTO — learn from thumbs", "kto"),
    ("GRPO — sample, score, reinforce", "grpo"),
    ("Reward model — pick among the reader's candidates (seconds)", "reward"),
]


class TrainScreen(Screen):
    BINDINGS = [
        Binding("ctrl+s", "start", "Start training", id="train.start"),
        Binding("ctrl+x", "cancel", "Stop training", id="train.cancel"),
        Binding("ctrl+a", "activate", "Activate result", id="train.activate"),
        Binding("ctrl+r", "refresh_counts", "Refresh counts", id="train.refresh"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.process: asyncio.subprocess.Process | None = None
        self.result: dict | None = None
        self.losses: list[tuple[int, float]] = []
        self.rewards: list[tuple[int, float]] = []
        self.curve_shown = False  # the plot shows the learning curve (until training starts)

    def compose(self) -> ComposeResult:
        with Horizontal(id="train-top"):
            yield DataTable(id="feedback", cursor_type="none")
            with Vertical(id="train-form"):
                yield Label("Algorithm")
                yield Select(ALGORITHMS, value="sft", allow_blank=False, id="algo")
                yield Label("Steps")
                yield Input("40", id="steps", type="integer")
                yield Label("ctrl+s start  •  ctrl+x stop  •  ctrl+a activate", classes="hint")
        yield ProgressBar(id="train-progress", show_eta=True)
        with Horizontal(id="train-bottom"):
            yield PlotextPlot(id="train-plot")
            yield RichLog(id="train-log", wrap=True, markup=True)
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("algorithm", "can use", "held out", "needs", "")
        self.action_refresh_counts()

    @work(thread=True, exclusive=True, group="counts")
    def action_refresh_counts(self) -> None:
        from sleuth.train.datasets import MINIMUM, load_feedback
        from sleuth.train.expectations import expectation, load_curve, questions_rated
        from sleuth.train.reward_run import rated

        feedback = load_feedback(self.app.store)
        counts = self.app.store.feedback.counts()
        rateable = len(rated(self.app.store.feedback.reader_choices()))
        curve, rated = load_curve(), questions_rated(self.app.store)
        expected = expectation(rated, self.app.settings.model.path, curve)

        def show() -> None:
            table = self.query_one(DataTable)
            table.clear()
            for label, algo in ALGORITHMS:
                if algo == "reward":
                    table.add_row(
                        "Reward model",
                        str(rateable),
                        "cross-checked",
                        "1",
                        "[green]ready[/green]" if rateable else "[yellow]not yet[/yellow]",
                    )
                    continue
                have = feedback.count(algo)
                shortfall = feedback.shortfall(algo)
                table.add_row(
                    label.split(" — ")[0],
                    str(have),
                    str(feedback.heldout_counts[algo]),
                    str(MINIMUM[algo]),
                    "[green]ready[/green]" if not shortfall else "[yellow]not yet[/yellow]",
                )
            self.query_one("#train-log", RichLog).write(
                f"feedback: {counts.ratings} rating(s) ({counts.positive} good, "
                f"{counts.negative} bad), {counts.comparisons} comparison(s), "
                f"{counts.answers} answer(s); {len(feedback.heldout_prompts)} held-out prompt(s)"
            )
            if expected:
                self.query_one("#train-log", RichLog).write(literal(expected))
            if curve and self.process is None and not self.losses and not self.rewards:
                self.plot_curve(curve, rated)

        self.app.call_from_thread(show)

    def action_start(self) -> None:
        if self.process is not None:
            self.notify("Training is already running (ctrl+x stops it).", severity="warning")
            return
        steps = self.query_one("#steps", Input).value.strip()
        if not steps.isdigit() or int(steps) < 1:
            self.notify("Steps must be a positive number.", severity="warning")
            return
        self.run_training(str(self.query_one("#algo", Select).value), int(steps))

    @work(exclusive=True, group="train")
    async def run_training(self, algo: str, steps: int) -> None:
        log = self.query_one("#train-log", RichLog)
        self.result, self.losses, self.rewards = None, [], []
        bar = self.query_one(ProgressBar)
        bar.update(total=steps, progress=0)
        env = dict(os.environ)
        if self.app.settings.model.path:
            env["SLEUTH_MODEL_PATH"] = self.app.settings.model.path
        command = [
            sys.executable,
            "-m",
            "sleuth.train",
            "--algo",
            algo,
            "--steps",
            str(steps),
            "--progress",
            "json",
        ]
        log.write(
            "[b]fitting a reward model in a separate process[/b]"
            if algo == "reward"
            else f"[b]starting {algo.upper()} for {steps} steps in a separate process[/b]"
        )
        self.process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
        )
        errors: list[str] = []

        async def read_errors() -> None:
            assert self.process and self.process.stderr
            async for line in self.process.stderr:
                errors.append(line.decode(errors="replace").rstrip())

        error_task = asyncio.create_task(read_errors())
        assert self.process.stdout
        async for raw in self.process.stdout:
            try:
                event = json.loads(raw)
            except json.JSONDecodeError:
                continue
            self.on_training_event(event)
        code = await self.process.wait()
        await error_task
        self.process = None
        if self.result is None:
            last = next((e for e in reversed(errors) if e.strip()), f"exit code {code}")
            log.write(literal(f"training stopped: {last}", "red"))
            self.notify(f"Training failed: {last}", severity="error", timeout=15)
        self.action_refresh_counts()

    def on_training_event(self, event: dict) -> None:
        log = self.query_one("#train-log", RichLog)
        if event["event"] == "step":
            self.query_one(ProgressBar).update(total=event["total"], progress=event["step"])
            metrics = event["metrics"]
            if "loss" in metrics:
                self.losses.append((event["step"], metrics["loss"]))
            if "reward" in metrics:
                self.rewards.append((event["step"], metrics["reward"]))
            self.replot()
        elif event["event"] == "info":
            log.write(literal(event["text"]))
        elif event["event"] == "result":
            self.result = event
            evaluation = Evaluation.from_dict(event.get("evaluation"))
            if event.get("reward"):
                self.notify(
                    f"Reward model {event['model_id']} fitted: ctrl+a activates it "
                    "(Models rolls it back).",
                    timeout=15,
                )
            elif event["status"] == "cancelled":
                self.notify("Training stopped; the active model is unchanged.")
            elif evaluation is not None and evaluation.improved:
                self.notify(
                    "The new adapter is better on held-out prompts: ctrl+a activates it.",
                    timeout=15,
                )
            else:
                self.notify(
                    "Training finished; the new adapter is not shown to be better (see the "
                    "intervals in the log), so it is not offered."
                )

    def plot_curve(self, curve: dict, rated: int) -> None:
        """Until training starts, the plot shows Sleuth's learning curve: the held-out F1
        change (and its 95% interval) after each number of rated questions, and where the
        user's own count stands."""
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.title(
            f"benchmark ({curve['model']}): held-out F1 change by questions rated; you: {rated}"
        )
        points = curve["points"]
        xs = [p["ratings"] for p in points]
        plt.plot(xs, [p["f1"]["mean"] for p in points], label="F1 change", color="blue")
        for side, label in ((0, "95% interval"), (1, None)):
            lows_or_highs = [p["f1"]["ci95"][side] for p in points]
            plt.plot(xs, lows_or_highs, label=label, color="gray")
        plt.hline(0.0)
        if xs[0] <= rated <= xs[-1]:
            plt.vline(rated, color="green")
        plt.xticks(xs)
        self.curve_shown = True
        plot.refresh()

    def replot(self) -> None:
        self.curve_shown = False
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.title("loss" + (" / reward" if self.rewards else ""))
        if self.losses:
            plt.plot([s for s, _ in self.losses], [v for _, v in self.losses], label="loss")
        if self.rewards:
            plt.plot([s for s, _ in self.rewards], [v for _, v in self.rewards], label="reward")
        plot.refresh()

    def action_cancel(self) -> None:
        if self.process is None:
            self.notify("No training is running.")
            return
        self.process.send_signal(signal.SIGINT)
        self.notify("Stopping after the current step (a checkpoint is saved)…")

    def action_activate(self) -> None:
        if not self.result or self.result.get("status") != "done":
            self.notify("No finished training run to activate.", severity="warning")
            return
        evaluation = Evaluation.from_dict(self.result.get("evaluation"))
        if not self.result.get("reward") and (evaluation is None or not evaluation.improved):
            self.notify(
                "That adapter was not better; activate it from Models if you want it anyway.",
                severity="warning",
            )
            return
        self.app.activate_model(self.result["model_id"])
