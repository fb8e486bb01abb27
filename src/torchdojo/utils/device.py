"""Device choice and the CPU thread policy.

Measured on a 2-core CPU: torch's default of 2 intra-op threads is slower than 1 for small
models and stalls when another process shares the machine, so small models get 1 thread.
"""

from __future__ import annotations

import os

import torch

SMALL_MODEL_PARAMS = 1_000_000


def choose_device(name: str = "auto") -> torch.device:
    """``"auto"`` picks CUDA, then MPS, then CPU; any other value is passed to ``torch.device``."""
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} asked for, but CUDA is not available; use --device cpu"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_count() -> int:
    """Cores this process may use (honours affinity masks and cgroup pinning)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return os.cpu_count() or 1


def pick_num_threads(num_params: int, requested: int | None = None) -> int:
    """The intra-op thread count for training a model of ``num_params`` parameters.

    ``requested`` (``--threads``) wins; otherwise 1 thread for models under
    ``SMALL_MODEL_PARAMS`` parameters, all cores for larger ones.
    """
    if requested:
        return requested
    return 1 if num_params < SMALL_MODEL_PARAMS else cpu_count()


def supports_bf16_cpu() -> bool:
    """Whether this CPU has native bf16 matmul (AVX512-BF16 or AMX); fp16 is never fast here."""
    cap = torch.backends.cpu.get_cpu_capability()
    return cap in {"AVX512_BF16", "AMX"} or "bf16" in cap.lower() or cap == "AVX512"
