"""Training checkpoints: the LoRA's factors and the optimizer's state at a step, saved so a
stopped or killed run resumes where it was (`sleuth train --resume RUN`).

Saved with torch.save and read back with `weights_only=True`: a checkpoint holds tensors,
numbers and the containers around them, never code, so reading one runs nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from sleuth.store import Dirs, Store
from sleuth.store.paths import private_dir, private_file

from .errors import TrainError
from .model_io import LoraFactors, factors_from_peft


@dataclass
class Checkpoint:
    step: int
    factors: LoraFactors
    optimizer: dict


def save(store: Store, dirs: Dirs, run_id: int, step: int, model, optimizer) -> None:
    """Write the checkpoint of `run_id` at `step` (atomically: a reader never sees half)."""
    folder = private_dir(dirs.checkpoints / str(run_id))
    path = folder / "checkpoint.pt"
    partial = folder / "checkpoint.pt.partial"
    factors = factors_from_peft(model)
    torch.save(
        {
            "step": step,
            "factors": {k: (a, b, s) for k, (a, b, s) in factors.modules.items()},
            "optimizer": optimizer.state_dict(),
        },
        partial,
    )
    os.replace(private_file(partial), path)
    store.training.record_checkpoint(run_id, step, str(path))


def load(path: Path | str) -> Checkpoint:
    """A checkpoint as `save` wrote it; TrainError for one that cannot be read."""
    try:
        state = torch.load(path, weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise TrainError(
            f"The checkpoint {path} cannot be read ({exc.__class__.__name__})."
        ) from exc
    factors = LoraFactors({name: tuple(parts) for name, parts in state["factors"].items()})
    return Checkpoint(state["step"], factors, state["optimizer"])
