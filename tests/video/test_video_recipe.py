"""The video-actions recipe on your own clips, and ``torchdojo doctor`` on a video folder."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from torchdojo.data.video import motion_path, render_clip, write_video
from torchdojo.runs import ConfigError, RunOptions

pytest.importorskip("av")


def _clip_folder(root: Path, *, per_class: int = 3) -> Path:
    digit = torch.zeros(28, 28, dtype=torch.uint8)
    digit[6:22, 11:17] = 255
    for action in ("left", "right"):
        for i in range(per_class):
            pose = motion_path(action, 6, np.random.default_rng(i))
            write_video(root / action / f"{i}.mp4", render_clip(digit, pose, size=32))
    (root / "left" / "broken.mp4").write_bytes(b"not a video")
    return root


def test_the_recipe_trains_on_a_folder_of_your_clips_and_skips_a_broken_one(
    tmp_path: Path,
) -> None:
    from torchdojo.recipes import run_recipe

    root = _clip_folder(tmp_path / "clips")
    sets = [f"data={root}", "channels=1", "image_size=32", "frames=6", "baseline=false"]
    options = RunOptions(smoke=True, out=str(tmp_path / "runs"), progress=False, overrides=sets)
    result = run_recipe("video-actions", options)
    assert all(math.isfinite(v) for v in result.metrics.values())
    assert "family_acc" not in result.metrics  # left/right alone are not the motion classes
    spec = (result.run_dir / "model.json").read_text(encoding="utf-8")
    assert '"video-classification"' in spec and '"left"' in spec


def test_a_data_value_that_is_no_folder_is_a_config_error(tmp_path: Path) -> None:
    from torchdojo.recipes import run_recipe

    options = RunOptions(
        smoke=True, out=str(tmp_path), progress=False, overrides=[f"data={tmp_path / 'nope'}"]
    )
    with pytest.raises(ConfigError, match="nope"):
        run_recipe("video-actions", options)


def test_doctor_names_the_unreadable_clip(tmp_path: Path) -> None:
    from torchdojo.cli.app import _register_commands, app

    _register_commands()
    root = _clip_folder(tmp_path / "clips", per_class=1)
    result = CliRunner().invoke(app, ["doctor", str(root)])
    assert result.exit_code == 1  # 1 of 3 clips unusable: over the 5 % limit
    assert "broken.mp4" in result.output and "2 of 3 clips readable" in result.output
