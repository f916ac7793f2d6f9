"""Gradients are summed across processes in one collective a step, whatever the tensor count."""

from __future__ import annotations

import socket

import torch
import torch.distributed as dist

from sleuth.train.distributed import World


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_one_flat_all_reduce_per_step_and_every_gradient_restored(monkeypatch):
    # A real gloo group of one process: the collective runs and sums over that one process.
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0, world_size=1
    )
    try:
        calls = []
        real = dist.all_reduce
        monkeypatch.setattr(dist, "all_reduce", lambda t, *a, **k: calls.append(t) or real(t))
        params = [torch.nn.Parameter(torch.randn(shape)) for shape in [(8, 4), (4, 8), (3,)]]
        grads = [torch.randn_like(p) for p in params[:2]]
        params[0].grad, params[1].grad = grads[0].clone(), grads[1].clone()  # the last has none
        World(rank=0, size=2).sync_grads(params)  # as if two processes: it must communicate
        assert len(calls) == 1 and calls[0].numel() == 32 + 32 + 3
        assert torch.equal(params[0].grad, grads[0]) and torch.equal(params[1].grad, grads[1])
        assert torch.equal(params[2].grad, torch.zeros(3))
    finally:
        dist.destroy_process_group()
