"""Layer 3: recipes, one module per task, found by file name.

``list_recipes()`` reads file names; ``get_recipe(name)`` imports one module and returns its
``RECIPE``; ``run_recipe(name, options)`` makes the run folder and trains.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from torchdojo.recipes._api import (
    ConfigError,
    Expected,
    Recipe,
    RunOptions,
    apply_overrides,
    parse_overrides,
)
from torchdojo.utils.registry import unknown_name_message


def _module_name(name: str) -> str:
    return name.replace("-", "_")


def list_recipes() -> list[str]:
    """Every recipe name (module file names with ``_`` shown as ``-``)."""
    import torchdojo.recipes as pkg

    return sorted(
        info.name.replace("_", "-")
        for info in pkgutil.iter_modules(pkg.__path__)
        if not info.name.startswith("_")
    )


@cache
def get_recipe(name: str) -> Recipe:
    """Import recipe ``name`` and return its ``RECIPE`` record."""
    if name not in list_recipes():
        raise ConfigError(unknown_name_message("recipe", name, list_recipes()))
    module = importlib.import_module(f"torchdojo.recipes.{_module_name(name)}")
    recipe: Recipe = module.RECIPE
    return recipe


def describe(name: str) -> str:
    """The recipe's one-line description (first docstring line), without importing torch code."""
    spec = importlib.util.find_spec(f"torchdojo.recipes.{_module_name(name)}")
    if spec is None or spec.origin is None:
        return ""
    import ast
    from pathlib import Path

    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def run_recipe(name: str, options: RunOptions | None = None):  # type: ignore[no-untyped-def]
    """Run recipe ``name``; returns a :class:`torchdojo.recipes._run.RunResult`."""
    from torchdojo.recipes._run import run

    return run(name, options or RunOptions())


__all__ = [
    "ConfigError",
    "Expected",
    "Recipe",
    "RunOptions",
    "apply_overrides",
    "describe",
    "get_recipe",
    "list_recipes",
    "parse_overrides",
    "run_recipe",
]
