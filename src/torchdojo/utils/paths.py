"""Where data and runs live: one data root, one runs root."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "TORCHDOJO_DATA"


def data_root(override: str | Path | None = None) -> Path:
    """The data root: ``override`` (``--data-dir``), else ``$TORCHDOJO_DATA``, else
    ``~/.cache/torchdojo``."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "torchdojo"


def cache_dir(name: str) -> Path:
    """A writable cache folder for derived files (unpacked archives, decoded tensors)."""
    base = Path(os.environ.get("TORCHDOJO_CACHE", Path.home() / ".cache" / "torchdojo"))
    folder = base.expanduser() / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder
