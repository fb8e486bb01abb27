"""Device choice and the CPU thread policy.

Measured on a 2-core CPU: torch's default of 2 intra-op threads is slower than 1 for small
models, so small models get 1 thread; the choice never depends on the momentary load, so the
same seed and command give bitwise the same weights whatever else the machine runs.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from typing import Any

import torch

SMALL_STEP_FLOPS = 5e7  # ~0.5 ms of work on one core: below it, a second thread loses


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


@dataclass(frozen=True)
class ThreadChoice:
    """The intra-op thread count, why it was chosen, and a warning about contention (or "")."""

    threads: int
    reason: str
    warning: str = ""


def choose_threads(step_flops: float, requested: int | None = None) -> ThreadChoice:
    """The intra-op thread count for training steps of ``step_flops`` floating-point operations.

    It depends on the work and the machine only, never on the momentary load: 1 vs 2 threads
    change the order of float additions, so a load-dependent choice made the same seed and
    command give different weights depending on what else ran. In order: ``requested``
    (``--threads``); ``$OMP_NUM_THREADS`` when the user set it; 1 thread for steps under
    ``SMALL_STEP_FLOPS`` (a second thread costs more in synchronization than it brings); else
    every core this process may use. Contention is only named in ``warning`` (measured here: a
    2-thread step stalls up to 10x when another process shares the 2 cores; ``--threads 1``
    then trains faster, with other arithmetic).
    """
    if requested:
        return ThreadChoice(requested, f"--threads {requested}")
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        n = max(1, int(os.environ["OMP_NUM_THREADS"]))
        return ThreadChoice(n, f"OMP_NUM_THREADS={n}")
    if step_flops < SMALL_STEP_FLOPS:
        gflops = step_flops / 1e9
        return ThreadChoice(
            1, f"small steps ({gflops:.3g} GFLOP < {SMALL_STEP_FLOPS / 1e9:g}): one thread"
        )
    cores = cpu_count()
    reason = f"{cores} cores usable and steps of {step_flops / 1e9:.3g} GFLOP"
    if math.isinf(step_flops):
        reason = f"{cores} cores usable (step cost not measurable for this batch)"
    busy = other_load() if cores > 1 else 0.0
    warning = ""
    if busy >= 0.5:
        warning = (
            f"other processes keep {busy:.1f} cores busy; training on {cores} threads anyway so "
            f"the result does not depend on the load (--threads 1 may be faster now)"
        )
    return ThreadChoice(cores, reason, warning)


def other_load(window: float = 0.1) -> float:
    """Cores kept busy by other processes right now, in core units (0.0 if unknown).

    Sampled from ``/proc/stat`` over ``window`` seconds, minus this process's own CPU time
    (its OpenMP workers spin for a while after a parallel region), so it sees current
    contention; the load average would still count a run that just finished.
    """
    before, own_before = _cpu_times(), _own_cpu_time()
    if before is None or own_before is None:
        return 0.0
    time.sleep(window)
    after, own_after = _cpu_times(), _own_cpu_time()
    if after is None or own_after is None:
        return 0.0
    total, idle = after[0] - before[0], after[1] - before[1]
    others = (total - idle) - (own_after - own_before)
    return 0.0 if total <= 0 else max(0.0, others / total) * (os.cpu_count() or 1)


def _own_cpu_time() -> int | None:
    """User + system jiffies of this process, all threads, from ``/proc/self/stat``."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the man page)


def _cpu_times() -> tuple[int, int] | None:
    """(total, idle+iowait) jiffies of all CPUs from ``/proc/stat``; None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = [int(v) for v in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields[:8]), fields[3] + fields[4]


def forward_flops(model: torch.nn.Module, example: Any) -> int:
    """FLOPs of one forward pass on ``example`` (eval mode, no grad: no state or RNG touched)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(example)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def supports_bf16_cpu() -> bool:
    """Whether this CPU has native bf16 matmul (AVX512-BF16 or AMX); fp16 is never fast here."""
    cap = torch.backends.cpu.get_cpu_capability()
    return cap in {"AVX512_BF16", "AMX"} or "bf16" in cap.lower() or cap == "AVX512"
