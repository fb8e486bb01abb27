"""Lessons teach the public API: no private module (``_name``), no recipe module, no CLI.

import-linter checks the recipe modules and the CLI (``lint-imports``, pyproject.toml); it cannot
express "no private module", so this test reads every lesson's imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LESSONS = sorted((Path(__file__).resolve().parents[2] / "lessons").glob("[0-9]*.py"))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_imports_only_public_modules(lesson: Path) -> None:
    private = sorted(
        module
        for module in _imported_modules(lesson)
        if module.startswith("torchdojo")
        and any(part.startswith("_") for part in module.split(".")[1:])
    )
    assert not private, f"{lesson.name} imports private modules: {private}"
