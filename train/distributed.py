"""Training across processes: torchrun's ranks, each process's shard of a global batch, and
the gradients summed in one collective a step (gloo on the CPU, nccl on CUDA).

DistributedDataParallel would need every forward pass to go through its wrapper; the trainer
runs the policy, the reference (the adapter disabled) and, for GRPO, sampling on the same
module, so it sums the LoRA gradients itself: one flat bucket, one all-reduce per step, which
is what DDP's bucketing does for a model this small.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .errors import TrainError


@dataclass
class World:
    """This process's place among torchrun's processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1

    @classmethod
    def from_env(cls, device: str) -> World:
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size == 1:
            return cls()
        import torch.distributed as dist

        if device == "cuda":  # one GPU per process: "cuda" then means this process's own
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")
        return cls(rank=dist.get_rank(), size=size)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def shard(self, items: list) -> list:
        """This process's equal share of a global batch (the batch size must divide evenly)."""
        return items[self.rank :: self.size]

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.size > 1:
            import torch.distributed as dist

            dist.all_reduce(tensor)
        return tensor

    def sync_grads(self, params: list[torch.nn.Parameter]) -> None:
        """Sum the gradients of `params` over the processes in one collective: they are laid
        end to end in one flat bucket, all-reduced once, and copied back (hundreds of LoRA
        tensors would otherwise cost hundreds of round trips a step)."""
        if self.size == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        bucket = torch.cat([g.reshape(-1) for g in grads])
        self.sum_(bucket)
        offset = 0
        for param, grad in zip(params, grads, strict=True):
            summed = bucket[offset : offset + grad.numel()].view_as(grad)
            offset += grad.numel()
            if param.grad is None:
                param.grad = summed.clone()
            else:
                param.grad.copy_(summed)

    def barrier(self) -> None:
        if self.size > 1:
            import torch.distributed as dist

            dist.barrier()


def resolve_device(choice: str) -> str:
    if choice == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda was asked for, but torch sees no CUDA GPU here.")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice
