"""torchdojo: the tasks of the best PyTorch courses as tested, runnable, modern recipes.

The facade below imports lazily, so ``import torchdojo`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_FACADE = {
    "create_model": "torchdojo.models",
    "list_models": "torchdojo.models",
    "create_dataset": "torchdojo.data",
    "list_datasets": "torchdojo.data",
    "list_recipes": "torchdojo.recipes",
    "get_recipe": "torchdojo.recipes",
    "run_recipe": "torchdojo.recipes",
    "Trainer": "torchdojo.engine",
    "TrainerConfig": "torchdojo.engine",
}


def __getattr__(name: str) -> Any:
    if name in _FACADE:
        import importlib

        return getattr(importlib.import_module(_FACADE[name]), name)
    raise AttributeError(f"module 'torchdojo' has no attribute {name!r}")


__all__ = [*_FACADE, "__version__"]
