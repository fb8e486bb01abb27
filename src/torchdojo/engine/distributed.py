"""DistributedDataParallel under ``torchrun``: process group set-up and small helpers.

``torchrun --nproc-per-node 2 -m torchdojo run mnist-mlp`` sets ``RANK``/``WORLD_SIZE``; the
trainer then wraps the model in DDP, each rank takes its share of every global batch, rank 0
alone writes logs and checkpoints, and validation numbers are reduced across ranks. On CPU the
backend is gloo; on CUDA, NCCL.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as torch_dist
from torch import Tensor, nn


def launched_by_torchrun() -> bool:
    """True when the environment describes more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_distributed(device: torch.device | None = None) -> bool:
    """Initialize the default process group from torchrun's environment (idempotent)."""
    if not launched_by_torchrun() or is_initialized():
        return is_initialized()
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch_dist.init_process_group(backend=backend)
    return True


def destroy_distributed() -> None:
    """Tear the process group down if one exists."""
    if is_initialized():
        torch_dist.destroy_process_group()


def is_initialized() -> bool:
    return torch_dist.is_available() and torch_dist.is_initialized()


def rank() -> int:
    return torch_dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return torch_dist.get_world_size() if is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0 (or no distribution at all): the one process that writes files and prints."""
    return rank() == 0


def device_for_rank(device: torch.device) -> torch.device:
    """Under DDP on CUDA each rank takes ``cuda:LOCAL_RANK``; elsewhere ``device`` is kept."""
    if is_initialized() and device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return device


def wrap_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Wrap in DDP when a process group exists, else return ``model`` unchanged."""
    if not is_initialized():
        return model
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


def all_reduce_sum(t: Tensor) -> Tensor:
    """Sum ``t`` over ranks in place (no-op without a process group)."""
    if is_initialized():
        torch_dist.all_reduce(t, op=torch_dist.ReduceOp.SUM)
    return t
