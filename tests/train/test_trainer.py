"""Training runs on a tiny real model (real tokenizer, tiny random weights, our GGUF writer):
parameters change and the loss moves, adapters load in llama.cpp, checkpoints resume exactly,
Ctrl-C leaves the active model alone, and the CLI manages the registry."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from sleuth.agent.models.llama import LlamaCppLLM
from sleuth.store import Dirs, Store
from sleuth.store.settings import load_settings
from sleuth.train.config import TrainConfig, TrainConfigError
from sleuth.train.model_io import LoraFactors
from sleuth.train.stages import Clock, Previous, duration
from sleuth.train.trainer import TrainError, factors_path, train
from tests.helpers import ask, share_converted_models

QUESTIONS = [
    "What is the capital of France?",
    "Which river flows through Paris?",
    "Who founded Lyon?",
    "When was the Eiffel Tower built?",
    "What is the Seine?",
    "Where is Lyon?",
    "What is Paris known for?",
    "How long is the Rhône?",
    "Who was Plancus?",
    "What is Lugdunum?",
    "Where does the Saône join the Rhône?",
    "What sea does the Rhône reach?",
]


class Recorder:
    """A Logger that keeps what it was told (and can stop the run at a given step)."""

    def __init__(self, stop_at: int | None = None, cancel: threading.Event | None = None):
        self.steps: list[tuple[int, dict]] = []
        self.lines: list[str] = []
        self.stop_at, self.cancel = stop_at, cancel

    def step(self, step, total, metrics):
        self.steps.append((step, metrics))
        if self.stop_at == step and self.cancel is not None:
            self.cancel.set()  # what Ctrl-C does in `sleuth train`

    def info(self, text):
        self.lines.append(text)


@pytest.fixture
def env(tmp_path, tiny_gguf, train_cache):
    """A store full of rated answers, settings pointing at the tiny model, shared cache."""
    dirs = Dirs(tmp_path / "data", tmp_path / "config", train_cache)
    store = Store.open(dirs.database)
    for question in QUESTIONS:
        _, _, (good, bad) = ask(
            store, question, "Paris is the capital of France [1].", "I do not know."
        )
        store.feedback.rate(good, thumb=1)
        store.feedback.rate(bad, thumb=-1)
        store.feedback.compare(good, bad)
    settings = load_settings(None, env={}, flags={"model.path": str(tiny_gguf)})
    yield store, settings, dirs
    store.close()


def quick(algo: str, **kw) -> TrainConfig:
    defaults = dict(
        algo=algo,
        steps=4,
        batch_size=4,
        checkpoint_every=2,
        max_new_tokens=12,
        group_size=2,
        eval_limit=2,
        max_length=512,
    )
    defaults.update(kw)
    return TrainConfig(**defaults)


def cpp_logits(base: Path, adapter: Path | None, ids: list[int]) -> np.ndarray:
    llm = LlamaCppLLM(base, adapter_path=adapter, n_ctx=256, logits_all=True)
    llm.llama.reset()
    llm.llama.eval(ids)
    out = np.array(llm.llama.scores[: len(ids)])
    llm.close()
    return out


def test_sft_changes_the_adapter_moves_the_loss_and_registers_a_loadable_gguf(env, tiny_gguf):
    store, settings, dirs = env
    log = Recorder()
    # One fixed batch (every example) and a high learning rate: the loss must fall.
    result = train(store, settings, dirs, quick("sft", steps=8, batch_size=16, lr=1e-2), log)
    assert result.status == "done"
    losses = [m["loss"] for _, m in log.steps]
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.5, losses
    assert all(b < a + 0.05 for a, b in zip(losses, losses[1:], strict=False)), losses
    factors = LoraFactors.load(factors_path(result.adapter_path))
    assert any(float(b.abs().max()) > 0 for _, b, _ in factors.modules.values())  # B started at 0
    for written in (Path(result.adapter_path), factors_path(result.adapter_path)):
        assert written.stat().st_mode & 0o777 == 0o600  # the user's alone
    assert Path(result.adapter_path).parent.stat().st_mode & 0o777 == 0o700

    model = store.registry.model(result.model_id)
    assert model.adapter_path == result.adapter_path and model.active == 0
    assert model.parent_id == store.registry.base(model.base_fingerprint).id
    run = store.training.run(result.training_run_id)
    assert run.status == "done" and run.output_model_id == result.model_id
    assert [m.step for m in store.training.metrics(result.training_run_id)] == list(range(1, 9))
    assert "n" in run.evaluation and "win_rate" in run.evaluation
    # llama.cpp loads the adapter over the untouched base, and it changes the model's output.
    ids = list(range(100, 120))
    assert not np.allclose(
        cpp_logits(tiny_gguf, None, ids), cpp_logits(tiny_gguf, Path(result.adapter_path), ids)
    )


def test_each_stage_says_how_long_it_took_last_time_before_it_starts(env):
    store, settings, dirs = env
    first = Recorder()
    train(store, settings, dirs, quick("kto", steps=2), first)
    assert "training…" in first.lines and not any("about" in line for line in first.lines)
    run = store.training.runs()[0]
    took = run.summary["stage_seconds"]
    assert set(took) == {"load", "prepare", "steps", "export", "evaluate"}
    assert run.summary["stage_work"]["steps"] == 2

    second = Recorder()
    train(store, settings, dirs, quick("kto", steps=4), second)
    assert any(line.startswith("this run should take about") for line in second.lines)
    for what in ("loading the model", "training", "evaluating on held-out prompts"):
        assert any(line.startswith(f"{what}: about ") for line in second.lines), second.lines
    # The estimate scales with the work: twice the steps, about twice the time.
    latest = Previous.find(store, "kto", run.parent_model_id)
    assert latest.work["steps"] == 4  # the newest run like this one is the guide
    clock = Clock(second.lines.append, latest)
    assert clock.estimate("steps", 8) == pytest.approx(2 * latest.seconds["steps"], rel=0.01)
    other = Previous.find(store, "sft", run.parent_model_id)
    assert other is None  # another algorithm is no guide


def test_a_wait_is_said_as_precisely_as_it_needs():
    assert [duration(s) for s in (0.2, 40, 89, 150, 3599, 3900)] == [
        "1 s",
        "40 s",
        "89 s",
        "2 min",
        "1 h 00 min",
        "1 h 05 min",
    ]


@pytest.mark.parametrize("algo", ["dpo", "kto"])
def test_preference_algorithms_move_their_loss(env, algo):
    store, settings, dirs = env
    log = Recorder()
    result = train(store, settings, dirs, quick(algo, steps=5, batch_size=8, lr=1e-2), log)
    assert result.status == "done"
    losses = [m["loss"] for _, m in log.steps]
    assert losses[-1] < losses[0], losses
    if algo == "dpo":
        assert log.steps[-1][1]["reward_margin"] > 0


def test_dpos_sft_weight_adds_the_chosen_answers_likelihood(env):
    """At the first step the adapter is still the base, so DPO's loss is log 2; the SFT
    weight adds the chosen answers' NLL per token on top of it (and logs it)."""
    store, settings, dirs = env
    plain, rpo = Recorder(), Recorder()
    train(store, settings, dirs, quick("dpo", steps=1, batch_size=8), plain)
    train(store, settings, dirs, quick("dpo", steps=1, batch_size=8, sft_weight=0.5), rpo)
    assert plain.steps[0][1]["loss"] == pytest.approx(math.log(2), abs=1e-3)
    assert "chosen_nll" not in plain.steps[0][1]
    nll = rpo.steps[0][1]["chosen_nll"]
    assert nll > 0.1
    assert rpo.steps[0][1]["loss"] == pytest.approx(math.log(2) + 0.5 * nll, abs=1e-3)


def test_dpo_with_the_ipo_loss_aims_at_its_margin(env):
    """At the first step the adapter is the base: both log-ratios are 0, so IPO's loss is the
    target margin squared, (1/(2 beta))^2; training moves the margin towards it."""
    store, settings, dirs = env
    log = Recorder()
    config = quick("dpo", steps=4, batch_size=8, lr=1e-2, dpo_loss="ipo", beta=0.5)
    assert train(store, settings, dirs, config, log).status == "done"
    first, last = log.steps[0][1], log.steps[-1][1]
    assert first["loss"] == pytest.approx(1.0, abs=1e-3)
    assert last["loss"] < first["loss"]
    assert last["reward_margin"] > 0


@pytest.mark.parametrize("sampler", ["llama.cpp", "transformers"])
def test_grpo_samples_groups_scores_them_and_logs_diversity(env, sampler):
    store, settings, dirs = env
    log = Recorder()
    result = train(
        store, settings, dirs, quick("grpo", steps=2, batch_size=2, rollouts=sampler), log
    )
    assert result.status == "done"
    metrics = log.steps[-1][1]
    for key in (
        "reward",
        "pass_rate",
        "kl",
        "diversity",
        "collapsed_groups",
        "rollout_tokens_per_s",
    ):
        assert key in metrics
    assert 0 < metrics["diversity"] <= 1 and metrics["rollout_tokens_per_s"] > 0


def test_grpo_over_runs_samples_the_whole_agent_over_the_library(env, tmp_path):
    from sleuth.agent.tools.library import index_paths

    store, settings, dirs = env
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "paris.md").write_text("# Paris\n\nParis is the capital of France.")
    index_paths(store, [notes])
    log = Recorder()
    config = quick("grpo", steps=1, batch_size=1, grpo_over="auto", eval_limit=1)
    result = train(store, settings, dirs, config, log)
    assert result.status == "done"
    assert any("whole runs" in line for line in log.lines)  # auto: the library has files
    metrics = log.steps[-1][1]
    assert metrics["calls_per_run"] >= 1  # at least the plan: the tiny model writes nonsense
    assert 0 <= metrics["answered"] <= 1 and metrics["rollout_s"] > 0


def test_ctrl_c_keeps_the_active_model_and_resume_matches_an_uninterrupted_run(env, tmp_path):
    store, settings, dirs = env
    config = quick("sft", steps=6, batch_size=2, lr=1e-2, checkpoint_every=2)
    straight = train(store, settings, dirs, config, Recorder())
    store.registry.activate(straight.model_id)
    fp = store.registry.model(straight.model_id).base_fingerprint
    active_before = store.registry.active(fp)

    # Second run over the same parent, stopped after step 3, then resumed.
    store.registry.activate(store.registry.model(straight.model_id).parent_id)
    parent = store.registry.model(store.registry.model(straight.model_id).parent_id)
    cancel = threading.Event()
    stopped = train(
        store, settings, dirs, config, Recorder(stop_at=3, cancel=cancel), cancel=cancel
    )
    assert stopped.status == "cancelled" and stopped.steps_done == 3
    row = store.training.run(stopped.training_run_id)
    assert row.status == "cancelled" and row.step == 3 and "--resume" in row.error
    assert store.registry.active(parent.base_fingerprint).id == parent.id  # untouched

    resumed = train(store, settings, dirs, quick("sft"), Recorder(), resume=stopped.training_run_id)
    assert resumed.status == "done" and resumed.training_run_id == stopped.training_run_id
    a = LoraFactors.load(factors_path(straight.adapter_path))
    b = LoraFactors.load(factors_path(resumed.adapter_path))
    for name in a.modules:
        assert torch.allclose(a.delta(name), b.delta(name), atol=1e-5), name
    assert active_before.id == straight.model_id


def test_gradient_checkpointing_recomputes_layers_without_changing_the_result(env, monkeypatch):
    from sleuth.train.steps import context as steps_module

    store, settings, dirs = env
    layer_calls: list[int] = []

    def counting_attach(model, *args):
        calls = [0]
        layer_calls.append(calls)
        # A submodule: the recompute calls the layer's forward, not the layer itself.
        attention = model.model.layers[0].self_attn
        attention.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
        return attach_lora(model, *args)

    attach_lora = steps_module.attach_lora
    monkeypatch.setattr(steps_module, "attach_lora", counting_attach)
    runs = [
        train(
            store,
            settings,
            dirs,
            quick("dpo", steps=2, lr=1e-2, gradient_checkpointing=on),
            Recorder(),
        )
        for on in (True, False)
    ]
    # Per DPO step: policy forward and reference forward, plus a recompute in the backward
    # pass when checkpointing.
    assert [calls[0] for calls in layer_calls] == [6, 4]
    a, b = (LoraFactors.load(factors_path(r.adapter_path)) for r in runs)
    assert any(float(a.delta(name).abs().max()) > 0 for name in a.modules)
    for name in a.modules:
        assert torch.allclose(a.delta(name), b.delta(name), atol=1e-6), name


def test_a_child_adapter_carries_its_parent(env, tiny_gguf):
    store, settings, dirs = env
    first = train(store, settings, dirs, quick("sft", lr=1e-2), Recorder())
    store.registry.activate(first.model_id)
    second = train(store, settings, dirs, quick("dpo", lr=1e-2, batch_size=4), Recorder())
    assert store.registry.model(second.model_id).parent_id == first.model_id
    parent, child = (
        LoraFactors.load(factors_path(first.adapter_path)),
        LoraFactors.load(factors_path(second.adapter_path)),
    )
    assert child.rank == parent.rank + 8
    ids = list(range(200, 215))
    assert not np.allclose(
        cpp_logits(tiny_gguf, Path(first.adapter_path), ids),
        cpp_logits(tiny_gguf, Path(second.adapter_path), ids),
    )


def test_too_little_data_and_bad_settings_are_refused_before_any_work(
    tmp_path, tiny_gguf, train_cache
):
    dirs = Dirs(tmp_path / "d", tmp_path / "c", train_cache)
    store = Store.open(dirs.database)
    settings = load_settings(None, env={}, flags={"model.path": str(tiny_gguf)})
    with pytest.raises(TrainError, match="needs at least 4"):
        train(store, settings, dirs, quick("sft"), Recorder())
    assert store.training.runs() == []  # nothing started
    with pytest.raises(TrainConfigError, match="--algo"):
        TrainConfig(algo="ppo")
    with pytest.raises(TrainConfigError, match="--group-size"):
        TrainConfig(algo="grpo", group_size=1)
    with pytest.raises(TrainConfigError, match="--rollout-rounds"):
        TrainConfig(algo="grpo", rollout_rounds=0)
    with pytest.raises(TrainConfigError, match="--sft-weight is DPO's"):
        TrainConfig(algo="sft", sft_weight=1.0)
    with pytest.raises(TrainConfigError, match="--sft-weight"):
        TrainConfig(algo="dpo", sft_weight=-1.0)
    with pytest.raises(TrainConfigError, match="--dpo-loss is DPO's"):
        TrainConfig(algo="kto", dpo_loss="ipo")
    with pytest.raises(TrainConfigError, match="--dpo-loss"):
        TrainConfig(algo="dpo", dpo_loss="hinge")
    with pytest.raises(TrainConfigError, match="--beta must be above 0"):
        TrainConfig(algo="dpo", dpo_loss="ipo", beta=0.0)
    assert TrainConfig(algo="dpo", dpo_loss="ipo").beta == 0.5  # measured, not TRL's 0.1
    assert TrainConfig(algo="dpo").beta == 0.1
    if not torch.cuda.is_available():
        with pytest.raises(TrainError, match="no CUDA"):
            train(store, settings, dirs, quick("sft", device="cuda"), Recorder())


def test_a_killed_training_run_is_noticed(env):
    store, _, _ = env
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    run_id = store.training.start("sft", {"algo": "sft"}, None, pid=dead.pid)
    store.training.close_abandoned()
    row = store.training.run(run_id)
    assert row.status == "failed" and "stopped unexpectedly" in row.error


SLEUTH = str(Path(sys.executable).parent / "sleuth")


def cli(*args, home: Path, model: Path, cache: Path):
    env = {**os.environ, "SLEUTH_HOME": str(home), "SLEUTH_MODEL_PATH": str(model)}
    # Share the converted tiny model with the session's cache (the conversion takes a while).
    if not (home / "cache" / "hf").exists():
        share_converted_models(cache, home / "cache")
    return subprocess.run([SLEUTH, *args], capture_output=True, text=True, env=env, timeout=600)


def seed_home(home: Path) -> None:
    store = Store.open(home / "data" / "sleuth.db")
    for question in QUESTIONS:
        _, _, (good, bad) = ask(store, question, "Paris is the capital of France [1].", "No idea.")
        store.feedback.rate(good, thumb=1)
        store.feedback.rate(bad, thumb=-1)
    store.close()


def test_cli_train_then_activate_and_roll_back(tmp_path, tiny_gguf, train_cache):
    home = tmp_path / "home"
    seed_home(home)
    run = cli(
        "train",
        "--algo",
        "sft",
        "--steps",
        "2",
        "--batch-size",
        "2",
        "--progress",
        "json",
        home=home,
        model=tiny_gguf,
        cache=train_cache,
    )
    assert run.returncode == 0, run.stderr
    import json

    events = [json.loads(line) for line in run.stdout.splitlines()]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2]
    result = events[-1]
    assert result["event"] == "result" and result["status"] == "done"
    model_id = result["model_id"]
    listing = cli("models", "list", home=home, model=tiny_gguf, cache=train_cache).stdout
    assert f"{model_id}  sft-1" in listing and "adapter of" in listing
    activated = cli(
        "models", "activate", str(model_id), home=home, model=tiny_gguf, cache=train_cache
    )
    assert activated.returncode == 0 and "active: model" in activated.stdout
    assert f"* {model_id:>3}" in cli("models", home=home, model=tiny_gguf, cache=train_cache).stdout
    back = cli("models", "rollback", home=home, model=tiny_gguf, cache=train_cache)
    assert "rolled back" in back.stdout
    assert (
        "already active"
        in cli("models", "rollback", home=home, model=tiny_gguf, cache=train_cache).stdout
    )
    refused = cli("models", "activate", "999", home=home, model=tiny_gguf, cache=train_cache)
    assert refused.returncode == 2 and "no model 999" in refused.stderr


def test_cli_too_little_data_is_one_sentence(tmp_path, tiny_gguf, train_cache):
    run = cli("train", "--algo", "dpo", home=tmp_path / "empty", model=tiny_gguf, cache=train_cache)
    assert run.returncode == 2 and "DPO needs at least 4" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_torchrun_with_two_processes_gives_the_same_adapter_as_one(
    tmp_path, tiny_gguf, train_cache
):
    torchrun = str(Path(sys.executable).parent / "torchrun")
    args = ["train", "--algo", "sft", "--steps", "3", "--batch-size", "4", "--lr", "1e-2"]
    results = {}
    for name, prefix in [("one", [SLEUTH]), ("two", [torchrun, "--nproc_per_node", "2", SLEUTH])]:
        home = tmp_path / name
        seed_home(home)
        share_converted_models(train_cache, home / "cache")
        env = {
            **os.environ,
            "SLEUTH_HOME": str(home),
            "SLEUTH_MODEL_PATH": str(tiny_gguf),
            "OMP_NUM_THREADS": "1",
        }
        run = subprocess.run([*prefix, *args], capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        (adapter,) = (home / "data" / "adapters").glob("*.safetensors")
        results[name] = LoraFactors.load(adapter)
    for module in results["one"].modules:
        assert torch.allclose(results["one"].delta(module), results["two"].delta(module), atol=1e-5)
    assert any(float(b.abs().max()) > 0 for _, b, _ in results["one"].modules.values())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_cuda(env):
    store, settings, dirs = env
    result = train(store, settings, dirs, quick("dpo", device="cuda", steps=3), Recorder())
    assert result.status == "done"
