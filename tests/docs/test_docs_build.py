"""The built site (strict: any MkDocs warning fails the build in the fixture): every recipe
has a page with its measured floors, the lesson page shows its outputs and figures, search
indexes it, the CLI and API references exist, and nothing loads from another host."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from torchdojo.recipes import get_recipe, list_recipes
from torchdojo.runs import config_help
from torchdojo.services.docs_site import SiteReport, external_assets

LESSON = "07_training_stability"


def _text(path: Path) -> str:
    """A page's visible text, roughly: tags dropped, entities decoded, spaces collapsed."""
    raw = re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))
    return " ".join(html.unescape(raw).split())


def test_nothing_is_loaded_from_another_host(site: SiteReport) -> None:
    assert list(site.out.rglob("*.html")), "the site has pages"
    assert external_assets(site.out) == []


@pytest.mark.parametrize("name", list_recipes())
def test_every_recipe_has_a_page_with_its_floors_and_config(site: SiteReport, name: str) -> None:
    page = site.out / "recipes" / name / "index.html"
    assert page.is_file(), f"no page for recipe {name}"
    text = _text(page)
    recipe = get_recipe(name)
    assert recipe.description in text
    for metric, exp in recipe.expected.items():
        assert metric in text and f"{exp.floor:g}" in text
        assert " ".join(exp.data.split()) in text
        assert " ".join(exp.measured_by.split()) in text
    for key, accepts, _default in config_help(recipe.config):
        assert key in text and accepts in text, f"{name}: config field {key} missing"
    assert f"torchdojo run {name}" in text


def test_the_recipe_table_lists_every_recipe(site: SiteReport) -> None:
    page = (site.out / "recipes" / "index.html").read_text(encoding="utf-8")
    table = page[page.index('class="sortable"') :]
    for name in list_recipes():
        assert f'href="{name}/"' in table, f"{name} is not in the recipe table"
    assert "assets/tablesort.js" in page


def test_the_lesson_page_shows_outputs_figures_and_links(site: SiteReport) -> None:
    folder = site.out / "lessons" / LESSON
    page = (folder / "index.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]+src="([^"]+)"', page)
    assert len(images) >= 3
    for src in images:
        assert (folder / src).is_file() and (folder / src).stat().st_size > 1000, src
    text = _text(folder / "index.html")
    assert "Smoke run" in text and "TORCHDOJO_SMOKE=1" in text
    assert "lesson 07 done" in text  # the last cell's printed output
    assert 'href="../../recipes/deep-mlp-init/"' in page
    assert 'href="../../crosswalk/#002-pytorch' in page


def test_search_indexes_the_lesson(site: SiteReport) -> None:
    index = json.loads((site.out / "search" / "search_index.json").read_text(encoding="utf-8"))
    hits = {doc["location"] for doc in index["docs"] if "BatchNorm" in doc["text"]}
    assert any(location.startswith(f"lessons/{LESSON}/") for location in hits)


def test_cli_and_api_references(site: SiteReport) -> None:
    cli = _text(site.out / "reference" / "cli" / "index.html")
    for command in ("torchdojo run", "torchdojo list", "torchdojo docs", "torchdojo export"):
        assert command in cli
    engine = _text(site.out / "reference" / "api" / "engine" / "index.html")
    assert "Trainer" in engine and "fit" in engine


def test_pages_from_docs_and_readme(site: SiteReport) -> None:
    crosswalk = (site.out / "crosswalk" / "index.html").read_text(encoding="utf-8")
    assert 'href="../recipes/mnist-cnn/"' in crosswalk  # recipe names are linked
    setup = _text(site.out / "setup" / "index.html")
    assert "python3 -m venv .venv" in setup
    assert "Why MkDocs with Material" in _text(site.out / "about" / "index.html")


def test_printed_output_is_marked_as_output(site: SiteReport) -> None:
    page = (site.out / "lessons" / LESSON / "index.html").read_text(encoding="utf-8")
    blocks = re.findall(r'<div class="language-output highlight">(.*?)</div>', page, re.S)
    assert any("lesson 07 done" in block for block in blocks)
