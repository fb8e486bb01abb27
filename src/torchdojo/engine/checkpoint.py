"""Checkpoints: safetensors for tensors, JSON for the rest, written atomically.

A checkpoint file holds the model weights under ``model.*``, the other tensors (optimizer
moments, RNG states) under their own prefixes, and one JSON document in the safetensors
header metadata. It is written to a temporary file in the same folder, fsynced, then
``os.replace``d, so a crash leaves either the old or the new file, never half of one.
Loading never unpickles.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from torchdojo.engine.state import flatten_state, unflatten_state
from torchdojo.utils.io import atomic_write

log = logging.getLogger(__name__)
_META_KEY = "torchdojo"
_STEP_FILE = re.compile(r"^step-(\d+)\.safetensors$")


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``state`` is the nested training state, ``path`` where it came from."""

    state: dict[str, Any]
    path: Path


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Atomically write nested ``state`` (tensors anywhere inside) to ``path``."""
    tensors: dict[str, Tensor] = {}
    tree = flatten_state(state, "s", tensors)
    metadata = {_META_KEY: json.dumps(tree)}
    return atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint` (no pickle involved)."""
    path = Path(path)
    with safe_open(str(path), framework="pt") as fh:
        metadata = fh.metadata() or {}
        if _META_KEY not in metadata:
            raise ValueError(f"{path} is not a torchdojo checkpoint (no {_META_KEY!r} metadata)")
        tensors = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    return Checkpoint(state=unflatten_state(json.loads(metadata[_META_KEY]), tensors), path=path)


class CheckpointManager:
    """Keep the last ``keep_last`` step checkpoints and the best one in ``folder``.

    Args:
        folder: Where ``step-00000123.safetensors`` and ``best.safetensors`` go.
        keep_last: How many step checkpoints survive pruning.
    """

    def __init__(self, folder: str | Path, *, keep_last: int = 2) -> None:
        self.folder = Path(folder)
        self.keep_last = max(1, keep_last)

    def save(self, state: dict[str, Any], *, step: int, is_best: bool = False) -> Path:
        """Write the checkpoint of ``step``; copy it to ``best`` when ``is_best``; prune."""
        path = save_checkpoint(self.folder / f"step-{step:08d}.safetensors", state)
        if is_best:
            atomic_write(self.folder / "best.safetensors", lambda tmp: shutil.copyfile(path, tmp))
        for old in self.step_files()[self.keep_last :]:
            old.unlink(missing_ok=True)
        return path

    def step_files(self) -> list[Path]:
        """Step checkpoints, newest first."""
        if not self.folder.is_dir():
            return []
        files = [p for p in self.folder.iterdir() if _STEP_FILE.match(p.name)]
        return sorted(files, key=lambda p: int(_STEP_FILE.match(p.name).group(1)), reverse=True)  # type: ignore[union-attr]

    def load_latest(self) -> Checkpoint | None:
        """The newest readable step checkpoint; unreadable ones are skipped with a warning."""
        for path in self.step_files():
            try:
                return load_checkpoint(path)
            except (SafetensorError, OSError, ValueError, KeyError, json.JSONDecodeError) as err:
                message = f"checkpoint {path} is unreadable ({err}); falling back to an older one"
                log.warning(message)
                warnings.warn(message, RuntimeWarning, stacklevel=2)
        return None
