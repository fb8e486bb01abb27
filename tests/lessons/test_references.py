"""Every lesson the code or the docs point a reader to exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from torchdojo.recipes import get_recipe, list_recipes

ROOT = Path(__file__).resolve().parents[2]
LESSON_REF = re.compile(r"lessons/\d\d_\w+\.py")


@pytest.mark.parametrize("name", list_recipes())
def test_recipe_lesson_exists(name: str) -> None:
    lesson = get_recipe(name).lesson
    if lesson:
        assert (ROOT / lesson).is_file(), f"recipe {name} names {lesson}, which does not exist"


def test_lessons_named_in_sources_and_docs_exist() -> None:
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    missing = {
        f"{path.relative_to(ROOT)} -> {ref}"
        for path in files
        for ref in LESSON_REF.findall(path.read_text(encoding="utf-8"))
        if not (ROOT / ref).is_file()
    }
    assert not missing, "references to lessons that do not exist:\n" + "\n".join(sorted(missing))
