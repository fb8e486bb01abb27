"""A run killed at a random step resumes to weights bitwise equal to an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ARGS = [
    "run",
    "mnist-mlp",
    "--smoke",
    "--epochs",
    "12",
    "--checkpoint-every",
    "1",
    "--no-progress",
    "--set",
    "dropout=0.3",
]  # dropout: the RNG state must be restored too


def cli(*args: str, out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "torchdojo", *args, "--out", str(out)]
        if args[0] == "run"
        else [sys.executable, "-m", "torchdojo", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def run_dir_of(out: Path) -> Path:
    dirs = list((out / "mnist-mlp").iterdir())
    assert len(dirs) == 1, dirs
    return dirs[0]


def wait_for_step(out: Path, proc: subprocess.Popen[bytes], step: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ckpts = list(out.glob(f"mnist-mlp/*/checkpoints/step-{step:08d}.safetensors"))
        if ckpts:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended before step {step}: {proc.stdout.read().decode()[-2000:]}")  # type: ignore[union-attr]
        time.sleep(0.002)
    pytest.fail(f"no checkpoint for step {step} within 120 s")


def finish(proc: subprocess.Popen[bytes]) -> str:
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output[-3000:]
    return output


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model.safetensors"))


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    out = tmp_path_factory.mktemp("straight")
    finish(cli(*ARGS, out=out))
    return weights(run_dir_of(out))


def assert_bitwise_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_run_resumes_to_identical_weights(
    sig: signal.Signals, straight: dict[str, torch.Tensor], tmp_path: Path
) -> None:
    step = random.Random().randint(3, 60)
    print(f"stopping with {sig.name} after the checkpoint of step {step}")
    proc = cli(*ARGS, out=tmp_path)
    wait_for_step(tmp_path, proc, step)
    proc.send_signal(sig)
    output = proc.communicate(timeout=120)[0].decode()
    run_dir = run_dir_of(tmp_path)
    assert not (run_dir / "model.safetensors").exists(), "the run finished before the signal"
    if sig == signal.SIGTERM:  # a graceful stop writes a checkpoint and says how to resume
        assert proc.returncode == 130, output[-2000:]
        assert f"torchdojo resume {run_dir}" in output.replace("\n", "")
    finish(cli("resume", str(run_dir), "--no-progress", out=tmp_path))
    assert_bitwise_equal(weights(run_dir), straight)
    steps = [
        int(line.split('"step": ')[1].split(",")[0])
        for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        if '"train"' in line
    ]
    assert steps == sorted(set(steps)), "metrics.jsonl repeats steps after the resume"
