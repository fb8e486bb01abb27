"""Shared fixtures for the viz tests."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

Records = Callable[..., list[dict[str, Any]]]


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def metrics_records() -> Records:
    """Synthetic metrics.jsonl rows: train every 10 steps, val (loss, acc, r2) per epoch."""

    def _records(epochs: int = 3, steps_per_epoch: int = 5) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        step = 0
        for epoch in range(epochs):
            for _ in range(steps_per_epoch):
                step += 10
                rows.append(
                    {
                        "split": "train",
                        "epoch": epoch,
                        "step": step,
                        "loss": 2.0 * math.exp(-step / 60),
                        "lr": 0.1 * (1 - step / 200),
                        "samples_per_s": 1000.0,
                    }
                )
            rows.append(
                {
                    "split": "val",
                    "epoch": epoch,
                    "step": step,
                    "loss": 1.5 - 0.3 * epoch,
                    "acc": 0.6 + 0.1 * epoch,
                    "r2": 0.5 + 0.1 * epoch,
                }
            )
        return rows

    return _records
