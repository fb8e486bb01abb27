"""Detection and segmentation export, prediction and drawing, on two toy models whose answers
are known: a 4x4-grid "colour box" detector and a per-pixel colour segmenter.

Both obey the dense contract (images in [0, 1]; a detector returns decoded boxes and per-class
scores before NMS; a segmenter returns logits the input's size), so the ONNX export, the parity
report after post-processing, the mapping of boxes back to the original image and
``torchdojo predict`` (drawn copies, masks, JSON, a corrupt file reported) are checked against
answers computed by hand. The recipes' real models go through the same path in
tests/cli/test_own_dense_flow.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn
from torch.nn import functional as F
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app
from torchdojo.export.dense import DensePredictor, load_dense_card, mask_png
from torchdojo.export.dense import prepare as prepare_images
from torchdojo.export.dense_exporter import export_dense_model, match_detections
from torchdojo.models import ModelSpec, save_bundle
from torchdojo.models.registry import MODELS

runner = CliRunner()
_register_commands()
SIDE, CELLS = 64, 4  # the detector's input side and grid: 16-pixel cells


def colour_scores(x: Tensor) -> Tensor:
    """How red and how blue each pixel is: ``(B, 2, H, W)``, 1 for pure red / blue."""
    r, g, b = x.unbind(1)
    return torch.stack([F.relu(r - (g + b) / 2), F.relu(b - (r + g) / 2)], 1)


class BoxDetector(nn.Module):
    """One box per grid cell; a cell's score for "red" and "blue" is its mean colour."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))  # something for the state dict
        step = SIDE // CELLS
        ys, xs = torch.meshgrid(torch.arange(CELLS), torch.arange(CELLS), indexing="ij")
        corners = torch.stack([xs, ys, xs + 1, ys + 1], -1).flatten(0, 1) * step  # (16, 4)
        self.register_buffer("cells", corners.float())

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        pooled = F.avg_pool2d(colour_scores(images), SIDE // CELLS)  # (B, 2, 4, 4)
        scores = (pooled * self.gain).flatten(2).transpose(1, 2)  # (B, 16, 2)
        boxes = self.cells + 0 * scores[..., :1]  # (B, 16, 4): the batch follows the input
        return boxes, scores


class ColourSegmenter(nn.Module):
    """Background unless a pixel is clearly red (class 1) or blue (class 2)."""

    def __init__(self) -> None:
        super().__init__()
        self.background = nn.Parameter(torch.full((1,), 0.3))

    def forward(self, x: Tensor) -> Tensor:
        colours = colour_scores(x)  # (B, 2, H, W)
        return torch.cat([self.background.expand_as(colours[:, :1]), colours], 1)  # (B, 3, H, W)


def picture(size: tuple[int, int], red: tuple[int, int, int, int] | None = None) -> Image.Image:
    """A grey image of ``size`` (width, height) with a pure red rectangle at ``red``."""
    image = Image.new("RGB", size, (128, 128, 128))
    if red is not None:
        image.paste((255, 0, 0), red)
    return image


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dense-exports")
    export_dense_model(
        BoxDetector(),
        out_dir=root / "det",
        task="detection",
        class_names=["red", "blue"],
        input_size=(3, SIDE, SIDE),
        exporter="torchscript",  # 50x faster than dynamo here; the recipes' flow uses dynamo
    )
    export_dense_model(
        ColourSegmenter(),
        out_dir=root / "seg",
        task="segmentation",
        class_names=["background", "red", "blue"],
        input_size=(3, 32, 48),
        exporter="torchscript",
    )
    return {"detection": root / "det", "segmentation": root / "seg"}


def test_detection_export_reports_parity_after_nms(exports: dict[str, Path]) -> None:
    parity = json.loads((exports["detection"] / "parity.json").read_text())
    card = load_dense_card(exports["detection"])
    assert parity["passed"] and parity["same_count"] and parity["batch_sizes"] == [1, 4]
    assert parity["max_abs_diff_boxes"] <= parity["atol_boxes"] == 1e-2
    assert parity["max_abs_diff_scores"] <= parity["atol_scores"] == 1e-4
    assert "outside the graph" in parity["nms"] or "after the graph" in parity["nms"]
    assert card.output_names == ("boxes", "scores") and "NMS" not in card.preprocessing
    assert "postprocess" in card.postprocessing and card.exporter == "torchscript"


def test_onnx_boxes_land_on_the_red_cell_in_original_pixels(exports: dict[str, Path]) -> None:
    # 200x100 image; after the resize to 64x64 the red block fills exactly cell (0, 1)
    image = picture((200, 100), red=(50, 0, 100, 25))
    for predictor in (
        DensePredictor.from_export(exports["detection"], threads=1),
        DensePredictor.from_module(BoxDetector(), load_dense_card(exports["detection"])),
    ):
        (found,) = predictor.predict([image], score_thresh=0.3)
        assert (found.width, found.height) == (200, 100)
        (box,) = found.detections
        assert box.label == "red" and box.index == 1 and box.score > 0.9
        np.testing.assert_allclose(box.box, [50, 0, 100, 25], atol=0.01)


def test_segmentation_export_and_full_size_mask(exports: dict[str, Path]) -> None:
    parity = json.loads((exports["segmentation"] / "parity.json").read_text())
    assert parity["passed"] and parity["pixel_agreement"] >= 0.999
    assert parity["max_abs_diff_logits"] < 1e-4
    image = picture((90, 60), red=(0, 0, 45, 60))  # left half red
    (found,) = DensePredictor.from_export(exports["segmentation"], threads=1).predict([image])
    assert found.mask is not None and found.mask.shape == (60, 90)
    assert (found.mask[:, :40] == 1).all() and (found.mask[:, 50:] == 0).all()
    assert found.pixel_counts["red"] + found.pixel_counts["background"] == 90 * 60
    assert 40 * 60 <= found.pixel_counts["red"] <= 50 * 60
    decoded = np.asarray(Image.open(__import__("io").BytesIO(mask_png(found.mask))))
    np.testing.assert_array_equal(decoded, found.mask)  # pixel value = class index


def test_matching_pairs_boxes_by_position_not_rank() -> None:
    reference = {
        "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
        "scores": torch.tensor([0.5, 0.5]),
        "labels": torch.tensor([1, 1]),
    }
    swapped = {k: v.flip(0) for k, v in reference.items()}
    assert match_detections(swapped, reference) == (True, 0.0, 0.0)
    moved = {**swapped, "labels": torch.tensor([2, 1])}
    assert match_detections(moved, reference)[0] is False  # another class never matches


def test_tied_scores_are_told_apart_from_distinct_ones() -> None:
    from torchdojo.export.dense_exporter import scores_tied

    untrained = (
        torch.full((50, 3), 0.25)
        + torch.rand(50, 3, generator=torch.Generator().manual_seed(0)) * 1e-6
    )
    assert scores_tied(untrained, 0.05)  # every box about 1 / (C + 1): NMS picks by rounding
    assert not scores_tied(torch.linspace(0.1, 0.9, 30).view(10, 3), 0.05)


@pytest.fixture
def run_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Two bare model folders (``save_bundle``) of the toys, registered for this test only."""
    monkeypatch.setitem(MODELS._items, "toy-box-detector", BoxDetector)
    monkeypatch.setitem(MODELS._items, "toy-colour-segmenter", ColourSegmenter)
    det = ModelSpec(
        "toy-box-detector",
        input_shape=[3, SIDE, SIDE],
        classes=["red", "blue"],
        task="detection",
        preprocess={"resize": [SIDE, SIDE]},
    )
    seg = ModelSpec(
        "toy-colour-segmenter",
        input_shape=[3, 32, 48],
        classes=["background", "red", "blue"],
        task="segmentation",
    )
    save_bundle(tmp_path / "det-run", BoxDetector(), det)
    save_bundle(tmp_path / "seg-run", ColourSegmenter(), seg)
    return {"detection": tmp_path / "det-run", "segmentation": tmp_path / "seg-run"}


def test_predict_draws_boxes_writes_json_and_reports_a_corrupt_file(
    run_dirs: dict[str, Path], tmp_path: Path
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    picture((200, 100), red=(50, 0, 100, 25)).save(images / "one.jpg", quality=95)
    (images / "broken.png").write_bytes(b"\x89PNG not really")
    out = tmp_path / "drawn"
    result = runner.invoke(
        app, ["predict", str(run_dirs["detection"]), str(images), "--output", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "broken.png" in result.output and "red" in result.output
    doc = json.loads((out / "predictions.json").read_text())
    (item,) = doc["predictions"]
    assert doc["task"] == "detection" and doc["bad_files"][0]["path"].endswith("broken.png")
    (box,) = item["detections"]
    assert box["label"] == "red" and (item["width"], item["height"]) == (200, 100)
    np.testing.assert_allclose(box["box"], [50, 0, 100, 25], atol=1.0)  # JPEG blurs the edge
    drawn = np.asarray(Image.open(out / item["drawn"]).convert("RGB"), dtype=int)
    original = np.asarray(Image.open(images / "one.jpg").convert("RGB"), dtype=int)
    assert drawn.shape == original.shape
    changed = np.abs(drawn - original).sum(-1) > 60
    assert changed[5:25, 97:103].any()  # the box's right edge (x = 100) is drawn
    assert not changed[60:, 150:].any()  # far from the box nothing moved


def test_predict_writes_masks_and_pixel_counts(run_dirs: dict[str, Path], tmp_path: Path) -> None:
    image = tmp_path / "half.png"
    picture((90, 60), red=(0, 0, 45, 60)).save(image)
    out = tmp_path / "masks-out"
    result = runner.invoke(
        app, ["predict", str(run_dirs["segmentation"]), str(image), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    (item,) = json.loads((out / "predictions.json").read_text())["predictions"]
    mask = np.asarray(Image.open(out / item["mask"]))
    assert mask.shape == (60, 90) and set(np.unique(mask)) == {0, 1}
    assert item["pixel_counts"]["red"] == int((mask == 1).sum())
    drawn = np.asarray(Image.open(out / item["drawn"]).convert("RGB"), dtype=int)
    assert (drawn[:, 60:] == 128).all() and (drawn[:, :40, 1] < 100).all()  # only red is tinted


def test_dense_runs_export_to_onnx_only(tmp_path: Path) -> None:
    from torchdojo.services.export_dense import export_dense_run

    spec = ModelSpec(
        "toy-box-detector", input_shape=[3, SIDE, SIDE], classes=["red"], task="detection"
    )
    with pytest.raises(ValueError, match="export to onnx only"):
        export_dense_run(tmp_path, BoxDetector(), spec, format="torch-export")


# ---------------------------------------------------------------------------------------------
# Pose: a toy whose heatmaps are the red, green and blue dots and whose limb fields point down

KEYPOINTS = ("head", "hip", "foot")
SKELETON = ((0, 1), (1, 2))


class DotPose(nn.Module):
    """Heatmaps: red = head, green = hip, blue = foot (stride 1); every PAF points down."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1))

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        r, g, b = x.unbind(1)
        parts = torch.stack(
            [F.relu(r - (g + b) / 2), F.relu(g - (r + b) / 2), F.relu(b - (r + g) / 2)], 1
        )
        for _ in range(2):  # blur the flat dots into peaks, as trained heatmaps are
            parts = F.avg_pool2d(parts, 5, stride=1, padding=2, count_include_pad=False)
        background = 1 - parts.amax(1, keepdim=True)
        heatmaps = torch.cat([parts, background], 1) * self.gain  # (B, 4, H, W)
        zero, one = torch.zeros_like(r), torch.ones_like(r)
        return heatmaps, torch.stack([zero, one, zero, one], 1)  # (B, 4, H, W): (0, 1) per limb


def stick_figure(side: int) -> Image.Image:
    """A grey square with a red head, green hip and blue foot dot on the line x = side / 2."""
    image = Image.new("RGB", (side, side), (128, 128, 128))
    dot = side // 20
    for colour, y in (
        ((255, 0, 0), side // 5),
        ((0, 255, 0), side // 2),
        ((0, 0, 255), 4 * side // 5),
    ):
        image.paste(colour, (side // 2 - dot, y - dot, side // 2 + dot, y + dot))
    return image


def test_pose_export_predict_and_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    from torchdojo.serve import create_app

    result = export_dense_model(
        DotPose(),
        out_dir=tmp_path / "pose",
        task="pose",
        class_names=KEYPOINTS,
        input_size=(3, 64, 64),
        skeleton=SKELETON,
        exporter="torchscript",
        parity_inputs=prepare_images([stick_figure(64)] * 2, (3, 64, 64)),
    )
    assert result.parity.passed and result.parity.people == 2  # one person per image
    assert result.card.skeleton == SKELETON and result.card.output_names == ("heatmaps", "pafs")
    (found,) = DensePredictor.from_export(tmp_path / "pose", threads=1).predict([stick_figure(160)])
    (person,) = found.people
    np.testing.assert_allclose(
        np.array(person.keypoints)[:, :2], [[80, 32], [80, 80], [80, 128]], atol=2.5
    )  # one input pixel: the scale back to the 160-pixel original is right

    monkeypatch.setitem(MODELS._items, "toy-dot-pose", DotPose)
    spec = ModelSpec("toy-dot-pose", input_shape=[3, 64, 64], classes=list(KEYPOINTS), task="pose")
    spec.preprocess = {"resize": [64, 64], "skeleton": [list(limb) for limb in SKELETON]}
    save_bundle(tmp_path / "run", DotPose(), spec)
    stick_figure(160).save(tmp_path / "figure.png")
    out = tmp_path / "drawn"
    cli = runner.invoke(
        app, ["predict", str(tmp_path / "run"), str(tmp_path / "figure.png"), "--out", str(out)]
    )
    assert cli.exit_code == 0 and "1 people" in cli.output, cli.output
    (item,) = json.loads((out / "predictions.json").read_text())["predictions"]
    (local,) = item["people"]
    assert list(local["keypoints"]) == list(KEYPOINTS)
    drawn = np.asarray(Image.open(out / item["drawn"]).convert("RGB"), dtype=int)
    original = np.asarray(stick_figure(160), dtype=int)
    assert (np.abs(drawn - original).sum(-1) > 60)[40:72, 78:82].any()  # the head-hip limb

    client = TestClient(create_app(tmp_path / "pose", threads=1))
    assert client.get("/health").json()["skeleton"] == [list(limb) for limb in SKELETON]
    upload = (tmp_path / "figure.png").read_bytes()
    (served,) = client.post("/predict", files={"file": ("f.png", upload, "image/png")}).json()[
        "people"
    ]
    np.testing.assert_allclose(
        [served["keypoints"][k][:2] for k in range(3)],
        [local["keypoints"][n][:2] for n in KEYPOINTS],
        atol=1.0,
    )
