"""Your own annotated images, end to end, from a VOC folder this test writes (synthetic scenes:
``JPEGImages``, ``Annotations``, ``SegmentationClass``): ``torchdojo run`` on it, then
``predict`` (drawn copies, masks, JSON; a corrupt file reported, not fatal), ``export`` (ONNX
with the dynamo exporter, parity on the folder's own images after post-processing) and the
server answering as ``predict`` did. Segmentation trains nuclei-segmentation on
``masks:<images>,<masks>``; detection trains object-detection on ``voc:<folder>``.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app
from torchdojo.data.scenes import write_scenes_voc
from torchdojo.serve import create_app

runner = CliRunner()
_register_commands()


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # undo rich's line wrapping


@pytest.fixture(scope="module")
def voc(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 synthetic 64x64 scenes as a Pascal VOC folder."""
    return write_scenes_voc(tmp_path_factory.mktemp("own") / "voc", 10, (64, 64), seed=0)


def images_with_a_broken_one(voc: Path, folder: Path) -> Path:
    """Three of the folder's images plus a file that is not an image."""
    folder.mkdir()
    for image in sorted((voc / "JPEGImages").iterdir())[:3]:
        shutil.copy(image, folder / image.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    return folder


def run_folder(out: Path, recipe: str) -> Path:
    (run_dir,) = (out / recipe).iterdir()
    return run_dir


def test_mask_folder_to_served_mask(voc: Path, tmp_path: Path) -> None:
    dataset = f"masks:{voc / 'JPEGImages'},{voc / 'SegmentationClass'}"
    sets = ["--set", f"dataset={dataset}"]
    out = invoke(
        "run", "nuclei-segmentation", "--smoke", "--out", str(tmp_path), "--no-progress", *sets
    )
    assert "mask folder" in out
    run_dir = run_folder(tmp_path, "nuclei-segmentation")
    spec = json.loads((run_dir / "model.json").read_text())
    assert spec["task"] == "segmentation" and spec["classes"][0] == "class0"

    images = images_with_a_broken_one(voc, tmp_path / "mine")
    drawn = tmp_path / "drawn"
    result = runner.invoke(app, ["predict", str(run_dir), str(images), "--out", str(drawn)])
    assert result.exit_code == 0, result.output
    assert "broken.jpg" in result.output  # reported, and the other images still predicted
    doc = json.loads((drawn / "predictions.json").read_text())
    assert len(doc["predictions"]) == 3 and doc["bad_files"][0]["path"].endswith("broken.jpg")
    first = doc["predictions"][0]
    local = np.asarray(Image.open(drawn / first["mask"]))
    assert local.shape == (64, 64) and sum(first["pixel_counts"].values()) == 64 * 64
    assert (drawn / first["drawn"]).is_file()

    out = invoke("export", str(run_dir))
    assert "parity on 10 images from" in out and "JPEGImages" in out
    export_dir = run_dir / "export"
    parity = json.loads((export_dir / "parity.json").read_text())
    card = json.loads((export_dir / "card.json").read_text())
    assert parity["passed"] and parity["pixel_agreement"] >= 0.999
    assert card["task"] == "segmentation" and card["exporter"] == "dynamo"
    assert "arg-max" in card["postprocessing"]

    upload = (images / Path(first["path"]).name).read_bytes()
    client = TestClient(create_app(export_dir, threads=1))
    answer = client.post("/predict", files={"file": ("scene.jpg", upload, "image/jpeg")})
    assert answer.status_code == 200, answer.text
    served = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer.json()["mask_png"]))))
    assert (served == local).mean() >= 0.999  # ONNX in the server, eager in predict
    assert answer.json()["pixel_counts"].keys() == first["pixel_counts"].keys()


def test_voc_folder_to_served_boxes(voc: Path, tmp_path: Path) -> None:
    from torchdojo.models import load_bundle
    from torchdojo.services.export_dense import export_dense_run

    sets = ["--set", f"dataset=voc:{voc}"]
    invoke("run", "object-detection", "--smoke", "--out", str(tmp_path), "--no-progress", *sets)
    run_dir = run_folder(tmp_path, "object-detection")
    spec = json.loads((run_dir / "model.json").read_text())
    assert spec["task"] == "detection" and "background" not in spec["classes"]

    images = images_with_a_broken_one(voc, tmp_path / "mine")
    drawn = tmp_path / "drawn"
    thresh = "0.1"  # a one-step model's scores are near 1 / (C + 1); its boxes are still boxes
    args = ["predict", str(run_dir), str(images), "--out", str(drawn), "--score-thresh", thresh]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "broken.jpg" in result.output
    doc = json.loads((drawn / "predictions.json").read_text())
    assert len(doc["predictions"]) == 3 and doc["task"] == "detection"
    first = doc["predictions"][0]
    assert first["detections"] and (first["width"], first["height"]) == (64, 64)
    for box in first["detections"]:
        assert box["label"] in spec["classes"] and box["score"] >= 0.1
        x1, y1, x2, y2 = box["box"]
        assert 0 <= x1 <= x2 <= 64 and 0 <= y1 <= y2 <= 64  # original pixels, clipped

    # the CLI's export (dynamo) is exercised by the segmentation flow; dynamo spends ~30 CPU s
    # on SSDlite's decoding, so this test exports the same way with TorchScript
    model, bundle = load_bundle(run_dir)
    exported, source = export_dense_run(run_dir, model, bundle, exporter="torchscript")
    assert exported.parity.passed and "JPEGImages" in source
    parity = json.loads((exported.out_dir / "parity.json").read_text())
    assert parity["same_count"] or parity["tied_images"] > 0
    assert parity["max_abs_diff_raw_boxes"] <= 1e-2
    assert parity["detections"] > 0 and "after the graph" in parity["nms"]

    upload = (images / Path(first["path"]).name).read_bytes()
    client = TestClient(create_app(exported.out_dir, threads=1))
    answer = client.post(
        f"/predict?score_thresh={thresh}", files={"file": ("a.jpg", upload, "image/jpeg")}
    )
    assert answer.status_code == 200, answer.text
    served = answer.json()["detections"]
    assert len(served) == len(first["detections"])  # ONNX in the server, eager in predict
    for box in served:  # each served box is one of predict's, same class, within 0.01 px
        assert any(
            b["label"] == box["label"] and np.allclose(b["box"], box["box"], atol=0.02)
            for b in first["detections"]
        )


@pytest.fixture(autouse=True)
def _no_real_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCHDOJO_DATA", str(tmp_path / "no-data"))  # the folder is all it needs
