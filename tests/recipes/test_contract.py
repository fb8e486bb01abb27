"""The recipe contract, checked over every recipe ``list_recipes()`` finds.

One source for name and description; a smoke config that passes the config checks; measured
floors with their data and a portable command; every declared config field read by the recipe
(a setting that is silently ignored is a bug); ``setup`` for the one-model recipes, so the tools
(diagnose, lr-find, show-batch) work on them; and the smoke run itself.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import math
from pathlib import Path

import pytest

from torchdojo.recipes import get_recipe, list_recipes
from torchdojo.runs import RunOptions, validate_config

NAMES = list_recipes()


def _module(name: str) -> object:
    return importlib.import_module(f"torchdojo.recipes.{name.replace('-', '_')}")


@pytest.mark.parametrize("name", NAMES)
def test_name_and_description_have_one_source(name: str) -> None:
    recipe, module = get_recipe(name), _module(name)
    assert recipe.name == name
    assert recipe.description and recipe.description == module.__doc__.strip().splitlines()[0]
    source = Path(module.__file__).read_text(encoding="utf-8")
    assert "description=" not in source and "name=" not in source.split("RECIPE = ")[1]


@pytest.mark.parametrize("name", NAMES)
def test_smoke_config_and_floors_are_well_formed(name: str) -> None:
    recipe = get_recipe(name)
    assert isinstance(recipe.smoke, recipe.config)
    validate_config(recipe.smoke)
    validate_config(recipe.config())
    # a floor measured by a command, or (a recipe not measured yet) why not and how to measure
    assert bool(recipe.expected) != bool(recipe.unmeasured), (
        f"{name}: state measured floors (expected) or why there are none (unmeasured), one of them"
    )
    if recipe.unmeasured:
        assert "torchdojo run " in recipe.unmeasured, f"{name}: name the command that measures it"
    for key, exp in recipe.expected.items():
        assert exp.data, f"{name}.{key}: which data was it measured on?"
        assert exp.measured_by.startswith("torchdojo "), f"{name}.{key}: {exp.measured_by!r}"
        assert "/work/" not in exp.measured_by and "/home/" not in exp.measured_by, (
            f"{name}.{key}: the command names one machine's path: {exp.measured_by!r}"
        )
        assert math.isfinite(exp.floor) and exp.mode in {"max", "min"}


@pytest.mark.parametrize("name", NAMES)
def test_every_config_field_is_read(name: str) -> None:
    """Each field of ``Config`` appears as ``cfg.<field>`` (or ``config.<field>``) in the module."""
    recipe, module = get_recipe(name), _module(name)
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    read = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in {"cfg", "config"}
    }
    unread = [f.name for f in dataclasses.fields(recipe.config) if f.name not in read]
    assert not unread, f"{name} declares config fields it never reads: {unread}"


@pytest.mark.parametrize("name", NAMES)
def test_one_model_recipes_expose_setup(name: str) -> None:
    assert get_recipe(name).setup is not None, f"{name} has no setup(cfg, ctx) for the tools"


@pytest.mark.parametrize("name", NAMES)
def test_smoke_run_gives_finite_metrics_and_a_finished_folder(name: str, tmp_path: Path) -> None:
    from torchdojo.recipes import run_recipe

    result = run_recipe(name, RunOptions(smoke=True, out=str(tmp_path), progress=False))
    assert result.metrics and all(math.isfinite(v) for v in result.metrics.values())
    summary = (result.run_dir / "summary.json").read_text(encoding="utf-8")
    assert '"status": "finished"' in summary
    assert all(check.startswith("n/a") for check in result.checks.values())  # smoke: no floors
