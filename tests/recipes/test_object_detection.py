"""The object-detection recipe: smoke run, same seed same weights, own VOC folder with a corrupt
image, and the mAP metric checked against a hand-made case."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from torchdojo.data.scenes import write_scenes_voc
from torchdojo.models import load_bundle
from torchdojo.recipes import run_recipe
from torchdojo.runs import ConfigError, RunOptions
from torchdojo.runs.detection import map_metric, per_class_ap50


def smoke(tmp_path: Path, *overrides: str, out: str = "runs") -> object:
    options = RunOptions(
        smoke=True, out=str(tmp_path / out), progress=False, threads=1, overrides=overrides
    )
    return run_recipe("object-detection", options)


def test_map_metric_on_a_hand_made_case() -> None:
    truth = [{"boxes": torch.tensor([[0.0, 0.0, 10.0, 10.0]]), "labels": torch.tensor([1])}]
    perfect = [{**truth[0], "scores": torch.tensor([0.9])}]
    # 20x20 box vs the 10x10 one: IoU 100/400 = 0.25; 10x25: IoU 100/250 = 0.4
    shifted = [
        {
            "boxes": torch.tensor([[0.0, 0.0, 10.0, 25.0]]),
            "labels": torch.tensor([1]),
            "scores": torch.tensor([0.9]),
        }
    ]
    for preds, expected in ((perfect, 1.0), (shifted, 0.0)):
        metric = map_metric(extended=True)
        metric.update(preds, truth)
        result = metric.compute()
        assert float(result["map_50"]) == pytest.approx(expected)
        assert per_class_ap50(result["precision"]) == pytest.approx([expected])


def test_smoke_run_saves_a_bundle_and_report_and_repeats_bitwise(tmp_path: Path) -> None:
    result = smoke(tmp_path, "scene_images=8", out="a")
    metrics = result.metrics  # type: ignore[attr-defined]
    assert {"test_map_50", "test_map", "train_loss"} <= set(metrics)
    assert 0.0 <= metrics["test_map_50"] <= 1.0 and math.isfinite(metrics["train_loss"])
    run_dir = result.run_dir  # type: ignore[attr-defined]
    spec = json.loads((run_dir / "model.json").read_text())
    assert spec["task"] == "detection" and spec["input_shape"] == [3, 64, 64]
    assert spec["preprocess"]["resize"] == [64, 64] and spec["preprocess"]["iou_thresh"] == 0.5
    model, _ = load_bundle(run_dir)
    boxes, scores = model.eval()(torch.rand(1, 3, 64, 64))
    assert boxes.shape[:2] == scores.shape[:2] and scores.shape[-1] == len(spec["classes"])
    for plot in ("pr_curves", "predictions"):
        assert (run_dir / "plots" / f"{plot}.png").is_file()
    assert "Average precision per class" in (run_dir / "report.html").read_text()
    again = smoke(tmp_path, "scene_images=8", out="b").run_dir  # type: ignore[attr-defined]
    weights = (run_dir / "model.safetensors").read_bytes()
    assert (again / "model.safetensors").read_bytes() == weights  # same seed, same weights


def test_own_voc_folder_with_a_corrupt_image(tmp_path: Path) -> None:
    root = write_scenes_voc(tmp_path / "my boxes", 10, (64, 64), seed=2)
    train = (root / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    (root / "JPEGImages" / f"{train[0]}.jpg").write_bytes(b"not a jpeg")
    result = smoke(tmp_path, f"dataset=voc:{root}", "model=tv-fcos-mobilenetv2")
    assert result.metrics["skipped_images"] == 1  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="use bccd, scenes"):
        smoke(tmp_path, "dataset=nonsense")


def test_a_missing_coco_evaluator_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from torchdojo.runs import ConfigError
    from torchdojo.runs.detection import require_coco_eval

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "faster_coco_eval" else real(name, *a),
    )
    with pytest.raises(ConfigError, match=r'pip install "torchdojo\[dense\]"'):
        require_coco_eval()
