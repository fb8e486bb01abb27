"""Layer 3b: recipes, one module per task, found by file name.

``list_recipes()`` reads file names; ``get_recipe(name)`` imports one module and returns its
``RECIPE`` with the name (the file name, ``_`` shown as ``-``) and the description (the module
docstring's first line) filled in; ``run_recipe(name, options)`` makes the run folder and trains.
What a recipe module holds is :mod:`torchdojo.runs.contract`.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.util
import pkgutil
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from torchdojo.runs import ConfigError, Recipe, RunOptions
from torchdojo.utils.registry import unknown_name_message

if TYPE_CHECKING:
    from torchdojo.runs.runner import RunResult


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
    """Import recipe ``name`` and return its ``RECIPE`` record, name and description filled in."""
    if name not in list_recipes():
        raise ConfigError(unknown_name_message("recipe", name, list_recipes()))
    module = importlib.import_module(f"torchdojo.recipes.{_module_name(name)}")
    recipe: Recipe = module.RECIPE
    return dataclasses.replace(recipe, name=name, description=_first_line(module.__doc__))


def describe(name: str) -> str:
    """The recipe's one-line description (first docstring line), without importing torch code."""
    spec = importlib.util.find_spec(f"torchdojo.recipes.{_module_name(name)}")
    if spec is None or spec.origin is None:
        return ""
    return _first_line(ast.get_docstring(ast.parse(Path(spec.origin).read_text(encoding="utf-8"))))


def _first_line(doc: str | None) -> str:
    return doc.strip().splitlines()[0] if doc and doc.strip() else ""


def run_recipe(name: str, options: RunOptions | None = None) -> RunResult:
    """Run recipe ``name`` (see :class:`~torchdojo.runs.RunOptions`); returns its result."""
    from torchdojo.runs.runner import run

    return run(get_recipe(name), options or RunOptions())


__all__ = ["ConfigError", "RunOptions", "describe", "get_recipe", "list_recipes", "run_recipe"]
