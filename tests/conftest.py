"""Suite-wide settings: one CPU thread, no GUI backend, a private cache folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _quiet_torch() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCHDOJO_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def real_data() -> Path:
    """The shared real-data folder (``$TORCHDOJO_DATA``); skips when it is absent."""
    root = os.environ.get("TORCHDOJO_DATA")
    if not root or not Path(root).is_dir():
        pytest.skip("real data absent: set TORCHDOJO_DATA to a folder like ../shared/data")
    return Path(root)
