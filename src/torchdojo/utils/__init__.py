"""Layer 0: seeding, devices, paths, atomic files and the registry."""

from torchdojo.utils.device import choose_device, choose_threads, cpu_count
from torchdojo.utils.io import atomic_write, atomic_write_json, atomic_write_text
from torchdojo.utils.paths import cache_dir, data_root
from torchdojo.utils.registry import Registry, unknown_name_message
from torchdojo.utils.seed import seed_everything, seed_worker, set_deterministic

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
