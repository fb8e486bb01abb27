"""Fuzz the whole command-line surface: no input a person can type gives a traceback.

For every recipe and every config field, typed garbage, negatives, zero, huge values, empty
strings, non-numbers and wrong arity go through ``torchdojo run RECIPE --smoke --set key=value``;
every run option gets its bad values; every command gets missing and wrong paths. A case passes
when the CLI exits 0 or 2, prints no traceback, and a rejected input (exit 2) prints one line
that names the key or option and leaves no run folder. Accepted values do not train: the recipe's
``run`` is replaced by a stub, so the table stays fast; what is checked is the edge.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from typer.testing import CliRunner

import torchdojo.recipes as recipes_pkg
from torchdojo.cli.app import _register_commands, app
from torchdojo.recipes import get_recipe, list_recipes

_register_commands()
BAD_VALUES = ["", "abc", "-1", "0", "-0.5", "1e400", "nan", "inf", "99999999999999999999", "1,2,3"]
CASES = [
    (name, field.name, value)
    for name in list_recipes()
    for field in dataclasses.fields(get_recipe(name).config)
    for value in BAD_VALUES
]
OPTION_CASES = [
    ["--epochs", "0"],
    ["--epochs", "-1"],
    ["--threads", "0"],
    ["--threads", "-2"],
    ["--time-budget", "0"],
    ["--time-budget", "-5"],
    ["--cpu-budget", "0"],
    ["--checkpoint-every", "0"],
    ["--device", "cuda"],
    ["--device", "bogus"],
    ["--precision", "8"],
    ["--precision", "16"],
    ["--seed", "-1"],
    ["--data-dir", "no/such/dir"],
    ["--set", "novalue"],
    ["--set", "=3"],
    ["--set", "nokey=1"],
]


@pytest.fixture
def stub_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Accepted configs return at once instead of training."""
    real = get_recipe

    def stubbed(name: str):  # type: ignore[no-untyped-def]
        return dataclasses.replace(real(name), run=lambda cfg, ctx: {"stub": 1.0})

    monkeypatch.setattr(recipes_pkg, "get_recipe", stubbed)


def _check(args: list[str], out: Path, key: str) -> None:
    result = CliRunner().invoke(app, args, catch_exceptions=True)
    text = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{args}: raised {result.exception!r}"
    )
    assert "Traceback" not in text, f"{args}: traceback\n{text}"
    assert result.exit_code in (0, 2), f"{args}: exit {result.exit_code}\n{text}"
    if result.exit_code == 2:
        lines = [line for line in text.splitlines() if line.strip()]
        assert len(lines) == 1 or "Usage:" in text, f"{args}: not one line\n{text}"
        assert key.lstrip("-").split("=")[0] in text or "Usage:" in text, f"{args}: {text}"
        made = list(out.rglob("config.yaml")) if out.exists() else []
        assert not made, f"{args}: rejected, but left {made}"


@pytest.mark.parametrize(("name", "key", "value"), CASES)
def test_config_values(name: str, key: str, value: str, tmp_path: Path, stub_runs: None) -> None:
    out = tmp_path / "runs"
    args = ["run", name, "--smoke", "--no-progress", "--out", str(out), "--set", f"{key}={value}"]
    _check(args, out, key)


@pytest.mark.parametrize("option", OPTION_CASES, ids=" ".join)
def test_run_options(option: list[str], tmp_path: Path, stub_runs: None) -> None:
    out = tmp_path / "runs"
    key = option[1] if option[0] == "--set" else option[0]
    _check(["run", "mnist-cnn", "--smoke", "--no-progress", "--out", str(out), *option], out, key)


def _path_cases(tmp: Path) -> list[list[str]]:
    missing, empty, a_file = tmp / "missing", tmp / "empty", tmp / "file.txt"
    empty.mkdir()
    a_file.write_text("not an image")
    return [
        ["run", "no-such-recipe"],
        ["resume", str(missing)],
        ["resume", str(empty)],
        ["resume", str(a_file)],
        ["show", str(missing)],
        ["show", str(empty)],
        ["predict", str(missing), str(a_file)],
        ["predict", str(empty), str(a_file)],
        ["export", str(missing)],
        ["export", str(empty)],
        ["serve", str(missing)],
        ["serve", str(empty)],
        ["doctor", str(missing)],
        ["doctor", str(empty)],
        ["doctor", str(a_file)],
        ["diagnose", str(missing)],
        ["lr-find", "mnist-cn"],
        ["show-batch", "no-such-recipe"],
    ]


def test_commands_with_missing_or_wrong_paths(tmp_path: Path) -> None:
    cases = _path_cases(tmp_path)
    for args in cases:
        result = CliRunner().invoke(app, args, catch_exceptions=True)
        assert "Traceback" not in result.output, f"{args}: traceback\n{result.output}"
        assert result.exit_code == 2, f"{args}: exit {result.exit_code}\n{result.output}"
        assert len([line for line in result.output.splitlines() if line.strip()]) == 1, (
            f"{args}: not one line\n{result.output}"
        )


def test_case_count() -> None:
    """The closing note quotes this count; it grows with every recipe and field."""
    assert len(CASES) + len(OPTION_CASES) > 500
