"""Layer 0: seeding, devices, paths, atomic files and the registry.

Names are imported on first use (PEP 562), so ``torchdojo.utils.textcodec`` and the other
torch-free modules (io, paths, registry) do not load torch: the ONNX servers start without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torchdojo.utils.device import choose_device, choose_threads, cpu_count
    from torchdojo.utils.io import atomic_write, atomic_write_json, atomic_write_text
    from torchdojo.utils.paths import cache_dir, data_root
    from torchdojo.utils.registry import Registry, unknown_name_message
    from torchdojo.utils.seed import seed_everything, seed_worker, set_deterministic

_WHERE = {
    "choose_device": "device",
    "choose_threads": "device",
    "cpu_count": "device",
    "atomic_write": "io",
    "atomic_write_json": "io",
    "atomic_write_text": "io",
    "cache_dir": "paths",
    "data_root": "paths",
    "Registry": "registry",
    "unknown_name_message": "registry",
    "seed_everything": "seed",
    "seed_worker": "seed",
    "set_deterministic": "seed",
}

__all__ = [
    "Registry",
    "atomic_write",
    "atomic_write_json",
    "atomic_write_text",
    "cache_dir",
    "choose_device",
    "choose_threads",
    "cpu_count",
    "data_root",
    "seed_everything",
    "seed_worker",
    "set_deterministic",
    "unknown_name_message",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"torchdojo.utils.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'torchdojo.utils' has no attribute {name!r}")
