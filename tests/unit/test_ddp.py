"""DDP under torchrun with 2 CPU processes (gloo) equals 1 process on the same global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as torch_dist
from safetensors.torch import load_file

ARGS = ["run", "mnist-mlp", "--smoke", "--epochs", "2", "--no-progress", "--set", "dropout=0.0"]


def trained(out: Path, launcher: list[str]) -> tuple[dict[str, torch.Tensor], str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*launcher, "-m", "torchdojo", *ARGS, "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    (run_dir,) = (out / "mnist-mlp").iterdir()
    return load_file(str(run_dir / "model.safetensors")), (run_dir / "metrics.jsonl").read_text()


@pytest.mark.skipif(not torch_dist.is_available(), reason="torch built without distributed")
def test_two_gloo_processes_match_one_process(tmp_path: Path) -> None:
    single, single_log = trained(tmp_path / "one", [sys.executable])
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
    ]
    double, double_log = trained(tmp_path / "two", torchrun)
    for key in single:
        torch.testing.assert_close(double[key], single[key], rtol=1e-4, atol=1e-5)
    # one metrics file (rank 0 alone writes), with the same number of rows as the 1-process run
    assert len(double_log.splitlines()) == len(single_log.splitlines())
