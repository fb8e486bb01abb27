"""Fixtures for the server tests: a tiny exported color classifier."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from serve_helpers import COLORS, color_classifier

from torchdojo.export import export_model


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("color-export")
    export_model(
        color_classifier(),
        out_dir=out,
        input_size=(3, 32, 32),
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        class_names=COLORS,
        metrics={"val_acc": 1.0},
    )
    return out
