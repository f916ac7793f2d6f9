"""The training steps, one module per algorithm, over a shared Context (context.py)."""

from __future__ import annotations

from . import dpo, grpo, grpo_runs, kto, sft
from .context import Context, trainable
from .grpo import answer_reward
from .grpo_runs import run_reward

STEPS = {"sft": sft.step, "dpo": dpo.step, "kto": kto.step, "grpo": grpo.step}
GRPO_OVER_RUNS = grpo_runs.step

__all__ = ["GRPO_OVER_RUNS", "STEPS", "Context", "answer_reward", "run_reward", "trainable"]
