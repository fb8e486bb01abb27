"""A setting that is silently ignored is a bug: the run context refuses unknown trainer keys.

``fit_classifier(..., **trainer_config)`` used to swallow its keyword arguments (mnist-cnn's
``channels_last=True`` never reached the trainer) and ``RunContext.trainer`` dropped unknown
keys; both now raise, and a recipe's setting reaches the trainer.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from torchdojo.recipes import get_recipe
from torchdojo.runs import RunOptions
from torchdojo.runs.context import RunContext


def _ctx(tmp_path: Path, **options: object) -> RunContext:
    return RunContext(get_recipe("mnist-cnn"), RunOptions(progress=False, **options), tmp_path)  # type: ignore[arg-type]


def test_unknown_trainer_setting_raises(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="channels_lst"):
        _ctx(tmp_path).trainer(channels_lst=True)


def test_recipe_settings_reach_the_trainer_and_cli_options_win(tmp_path: Path) -> None:
    trainer = _ctx(tmp_path, threads=1, precision="bf16").trainer(
        channels_last=True, num_threads=2, log_every=7
    )
    assert trainer.config.channels_last and trainer.config.log_every == 7
    assert trainer.config.num_threads == 1 and trainer.config.precision == "bf16"


def test_a_recipe_share_of_the_time_budget_wins(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, time_budget=100.0)
    assert ctx.trainer().config.time_budget == 100.0
    assert ctx.trainer(time_budget=20.0).config.time_budget == 20.0
