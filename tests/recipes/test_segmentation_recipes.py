"""Segmentation runs: the object metric on hand-made masks, pixel metrics, the loss, and the
recipes' smoke runs (deterministic, own mask folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from torchdojo.data.segmentation import IGNORE
from torchdojo.recipes import run_recipe
from torchdojo.runs import ConfigError, RunOptions
from torchdojo.runs.segmentation import (
    DiceCELoss,
    ObjectCounts,
    match_objects,
    nuclei_instances,
    object_scores,
    pixel_scores,
)


def two_touching_squares() -> np.ndarray:
    """3-class mask: two 6x6 nuclei side by side, their rims (and the contact) boundary."""
    mask = np.zeros((10, 16), np.int64)
    mask[2:8, 2:8] = mask[2:8, 8:14] = 2  # rims...
    mask[3:7, 3:7] = mask[3:7, 9:13] = 1  # ...around 4x4 interiors; columns 7-8 are the contact
    return mask


def test_boundary_separates_touching_nuclei() -> None:
    mask = two_touching_squares()
    objects = nuclei_instances(mask, min_size=1)
    assert objects.max() == 2
    assert (objects[2:8, 2:8] == objects[4, 4]).all()  # each grew back over its rim
    assert (objects[2:8, 8:14] == objects[4, 10]).all() and objects[4, 4] != objects[4, 10]
    merged = np.where(mask > 0, 1, 0)  # without the boundary class: one component
    assert nuclei_instances(merged, min_size=1).max() == 1


def test_min_size_drops_specks() -> None:
    mask = two_touching_squares()
    mask[0, 0] = 1  # a 1-pixel speck
    assert nuclei_instances(mask, min_size=1).max() == 3
    assert nuclei_instances(mask, min_size=4).max() == 2


def test_a_merge_is_counted_as_a_merge_and_misses_both() -> None:
    true = nuclei_instances(two_touching_squares(), min_size=1)
    merged = np.where(two_touching_squares() > 0, 1, 0)  # one predicted blob over both
    counts = match_objects(true, merged)
    assert counts == ObjectCounts(true=2, pred=1, tp=0, splits=0, merges=1)
    assert counts.f1 == 0.0


def test_a_split_and_a_perfect_match() -> None:
    one = np.zeros((10, 10), np.int64)
    one[1:9, 1:9] = 1
    halves = one.copy()
    halves[1:9, 7:9] = 2
    counts = match_objects(one, halves)  # IoU 0.75 (a match) and 0.25 (a false positive)
    assert (counts.splits, counts.merges, counts.tp, counts.pred) == (1, 0, 1, 2)
    assert counts.f1 == pytest.approx(2 * 1 / (1 + 2))
    perfect = object_scores(
        [torch.from_numpy(two_touching_squares())] * 2,
        [torch.from_numpy(two_touching_squares())] * 2,
        min_size=1,
    )
    assert perfect.tp == perfect.true == 4 and perfect.f1 == 1.0


def test_pixel_scores_match_hand_counts() -> None:
    target = torch.tensor([[0, 1, 1, 2], [0, 0, 2, IGNORE]])
    pred = torch.tensor([[0, 1, 2, 2], [1, 0, 2, 1]])
    scores = pixel_scores([pred], [target], ["bg", "a", "b"])
    # bg: inter 2, union 3; a: inter 1, union 3; b: inter 2, union 3 (the ignored pixel counts nowhere)
    assert scores["iou_bg"] == pytest.approx(2 / 3)
    assert scores["iou_a"] == pytest.approx(1 / 3)
    assert scores["iou_b"] == pytest.approx(2 / 3)
    assert scores["miou"] == pytest.approx(5 / 9)
    # foreground Dice = 2 |P ∩ G| / (|P| + |G|) over the 7 counted pixels
    fg_pred, fg_true = (pred > 0)[target != IGNORE], (target > 0)[target != IGNORE]
    dice = 2 * (fg_pred & fg_true).sum() / (fg_pred.sum() + fg_true.sum())
    assert scores["dice"] == pytest.approx(float(dice))


def test_dice_ce_loss_is_low_when_right_and_ignores_255() -> None:
    target = torch.tensor([[[0, 1], [2, IGNORE]]])
    right = torch.nn.functional.one_hot(target.clamp(max=2), 3).permute(0, 3, 1, 2).float() * 20
    wrong = right.roll(1, dims=1)
    loss = DiceCELoss([1.0, 1.0, 5.0], dice_weight=1.0)
    assert float(loss(right, target)) < 0.05 < float(loss(wrong, target))
    changed = right.clone()
    changed[0, :, 1, 1] = torch.tensor([0.0, 0.0, 50.0])  # the ignored pixel's prediction
    assert torch.equal(loss(right, target), loss(changed, target))


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(run_dir / "model.safetensors")


def test_nuclei_smoke_is_deterministic_and_counts_objects(tmp_path: Path) -> None:
    runs = [
        run_recipe(
            "nuclei-segmentation",
            RunOptions(smoke=True, out=str(tmp_path / str(i)), progress=False, threads=1),
        )
        for i in range(2)
    ]
    first, second = (_weights(r.run_dir) for r in runs)
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    metrics = runs[0].metrics
    assert metrics["test_true_objects"] > 0 and 0 <= metrics["test_object_f1"] <= 1
    assert (runs[0].run_dir / "plots" / "test_overlays.png").is_file()
    assert "Per-class IoU" in (runs[0].run_dir / "report.html").read_text(encoding="utf-8")


def test_own_mask_folder_trains_and_a_bad_one_names_the_file(tmp_path: Path) -> None:
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        mask = np.zeros((40, 40), np.uint8)
        mask[10:30, 5 + i : 25 + i] = 1
        Image.fromarray((mask * 200 + rng.integers(0, 40, mask.shape)).astype(np.uint8)).save(
            images / f"cell{i}.png"
        )
        Image.fromarray(mask).save(masks / f"cell{i}.png")
    dataset = f"dataset=masks:{images},{masks}"
    options = RunOptions(
        smoke=True, out=str(tmp_path / "runs"), progress=False, threads=1, overrides=[dataset]
    )
    result = run_recipe("nuclei-segmentation", options)
    assert "test_miou" in result.metrics and "test_object_f1" not in result.metrics  # 2 classes
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(masks / "cell0.png")
    with pytest.raises(ConfigError, match=r"cell0\.png: mask is 12x12 but its image is 40x40"):
        run_recipe("nuclei-segmentation", options)


def test_unknown_dataset_and_model_are_config_errors(tmp_path: Path) -> None:
    for override, match in (("dataset=voc", "nuclei-tiny"), ("model=segformer", "unet")):
        options = RunOptions(smoke=True, out=str(tmp_path), progress=False, overrides=[override])
        with pytest.raises(ConfigError, match=match):
            run_recipe("nuclei-segmentation", options)
