"""Same seed + same command + same machine -> bitwise the same weights, busy machine or not.

The thread count used to follow the momentary load (1 thread when another process was busy,
2 when idle), and 1 vs 2 threads change the order of float additions: the same command then
gave different weights depending on what else ran. Now it depends on the work and the machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from torchdojo.utils.device import SMALL_STEP_FLOPS, choose_threads, cpu_count, other_load

RUN = [sys.executable, "-m", "torchdojo", "run", "mnist-cnn", "--smoke", "--no-progress"]


def _train(out: Path) -> Path:
    done = subprocess.run(
        [*RUN, "--out", str(out)], capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return next(out.glob("mnist-cnn/*"))


def test_choice_ignores_load() -> None:
    big = 100 * SMALL_STEP_FLOPS
    quiet = choose_threads(big)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        loaded = choose_threads(big)
    finally:
        busy.kill()
        busy.wait()
    assert loaded.threads == quiet.threads == cpu_count()
    assert choose_threads(SMALL_STEP_FLOPS / 10).threads == 1
    assert "small steps" in choose_threads(SMALL_STEP_FLOPS / 10).reason


@pytest.mark.skipif(cpu_count() < 2, reason="needs 2 cores: one busy, one for the run")
def test_same_weights_with_a_core_busy(tmp_path: Path) -> None:
    quiet_run = _train(tmp_path / "quiet")
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert other_load() >= 0.5  # the machine really is busy while the second run trains
        busy_run = _train(tmp_path / "busy")
    finally:
        busy.kill()
        busy.wait()
    quiet_env = json.loads((quiet_run / "env.json").read_text())
    busy_env = json.loads((busy_run / "env.json").read_text())
    assert quiet_env["num_threads"] == busy_env["num_threads"] == cpu_count()
    assert quiet_env["threads_reason"] and quiet_env["threads_reason"] == busy_env["threads_reason"]
    a = load_file(quiet_run / "model.safetensors")
    b = load_file(busy_run / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(a[k].equal(b[k]) for k in a), "weights differ between a quiet and a busy machine"
