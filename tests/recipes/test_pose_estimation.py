"""The pose-estimation recipe: seeded smoke runs, its report, own COCO data, one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from torchdojo.data.poses import write_pose_coco
from torchdojo.models import load_bundle
from torchdojo.nn.pose import COCO_KEYPOINTS
from torchdojo.recipes import run_recipe
from torchdojo.runs import ConfigError, RunOptions


def _run(tmp_path: Path, name: str, *overrides: str) -> object:
    options = RunOptions(
        smoke=True, out=str(tmp_path / name), progress=False, overrides=list(overrides), threads=1
    )
    return run_recipe("pose-estimation", options)


def test_smoke_runs_are_bitwise_reproducible_and_report_poses(tmp_path: Path) -> None:
    first, second = _run(tmp_path, "a"), _run(tmp_path, "b")
    weights = [load_file(str(r.run_dir / "model.safetensors")) for r in (first, second)]  # type: ignore[attr-defined]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    metrics = first.metrics  # type: ignore[attr-defined]
    for key in ("test_pck", "test_pck_torso", "test_oks_ap", "test_oks_ap50"):
        assert 0.0 <= metrics[key] <= 1.0 or math.isnan(metrics[key])
    run_dir = first.run_dir  # type: ignore[attr-defined]
    for plot in ("poses", "pck_per_keypoint", "heatmaps_pafs"):
        assert (run_dir / "plots" / f"{plot}.png").is_file()
    spec = json.loads((run_dir / "model.json").read_text())
    assert spec["task"] == "pose" and spec["classes"] == list(COCO_KEYPOINTS)
    assert spec["preprocess"]["stride"] == 4 and len(spec["preprocess"]["skeleton"]) == 19
    model, _ = load_bundle(run_dir)
    heat, fields = model(torch.rand(1, *spec["input_shape"]))
    assert heat.shape[1] == 18 and fields.shape[1] == 38


def test_own_coco_keypoints_file(tmp_path: Path) -> None:
    json_path = write_pose_coco(
        tmp_path / "mine" / "ann.json", tmp_path / "mine" / "images", 10, 48
    )
    result = _run(tmp_path, "runs", f"dataset=coco:{json_path}", "val_fraction=0.2")
    assert all(math.isfinite(v) for k, v in result.metrics.items() if k != "test_pck_torso")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("dataset", "words"),
    [("voc", "use synthetic or coco:"), ("coco:/nowhere/ann.json", "no such file")],
)
def test_bad_dataset_is_a_one_line_config_error(tmp_path: Path, dataset: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        _run(tmp_path, "bad", f"dataset={dataset}")


def test_malformed_coco_file_names_the_file(tmp_path: Path) -> None:
    json_path = write_pose_coco(tmp_path / "ann.json", tmp_path, 2, 32)
    data = json.loads(json_path.read_text())
    data["annotations"][0]["keypoints"] = [1, 2, 3]
    json_path.write_text(json.dumps(data))
    with pytest.raises(ConfigError) as info:
        _run(tmp_path, "bad", f"dataset=coco:{json_path}")
    assert str(json_path) in str(info.value) and "3 keypoint numbers" in str(info.value)
