"""`torchdojo predict`: top-k tables, CSV/JSON output, bad files reported, grayscale runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app
from torchdojo.models import ModelSpec, create_model, load_bundle, save_bundle
from torchdojo.recipes import RunOptions, run_recipe
from torchdojo.services.predict import image_transform, predict

runner = CliRunner()
_register_commands()


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished image-folder smoke run (red circles vs blue squares)."""
    out = tmp_path_factory.mktemp("runs")
    options = RunOptions(smoke=True, out=str(out), progress=False, overrides=("epochs=2",))
    with pytest.MonkeyPatch.context() as patch:  # the shapes folder goes to a private cache
        patch.setenv("TORCHDOJO_CACHE", str(tmp_path_factory.mktemp("cache")))
        return Path(run_recipe("image-folder", options).run_dir)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """Four shape images (one in a subfolder), a corrupt JPEG and a text file."""
    folder = tmp_path / "photos"
    (folder / "more").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, color in enumerate([(220, 40, 40), (40, 60, 220), (220, 40, 40)]):
        pixels = np.full((80, 100, 3), color, np.uint8) + rng.integers(
            0, 30, (80, 100, 3), np.uint8
        )
        Image.fromarray(pixels).save(folder / f"img_{i}.png")
    Image.new("L", (40, 40), 128).save(folder / "more" / "gray.jpg")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_predict_folder_writes_csv_and_reports_the_corrupt_file(
    shapes_run: Path, photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preds.csv"
    result = runner.invoke(app, ["predict", str(shapes_run), str(photos), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "broken.jpg" in result.output and "more/gray.jpg" in result.output
    rows = list(csv.DictReader(out.open()))
    by_name = {Path(row["path"]).name: row for row in rows}
    assert set(by_name) == {"img_0.png", "img_1.png", "img_2.png", "gray.jpg", "broken.jpg"}
    assert by_name["broken.jpg"]["error"].startswith(("not an image", "corrupt", "truncated"))
    for name in ("img_0.png", "gray.jpg"):
        row = by_name[name]
        assert {row["label_1"], row["label_2"]} == {"circles", "squares"}  # top-3 capped at 2
        probs = [float(row["prob_1"]), float(row["prob_2"])]
        assert probs[0] >= probs[1] and sum(probs) <= 1 + 1e-5 and row["error"] == ""


def test_predict_json_top1_probabilities_sum_below_one(
    shapes_run: Path, photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preds.json"
    args = ["predict", str(shapes_run), str(photos), "--top-k", "1", "--output", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    doc = json.loads(out.read_text())
    assert doc["classes"] == ["circles", "squares"]
    assert len(doc["predictions"]) == 4 and [Path(b["path"]).name for b in doc["bad_files"]] == [
        "broken.jpg"
    ]
    for item in doc["predictions"]:
        assert len(item["labels"]) == 1 and 0.5 <= item["probs"][0] <= 1.0


def test_predict_matches_the_model_on_the_eval_transform(shapes_run: Path, photos: Path) -> None:
    model, spec = load_bundle(shapes_run)
    result = predict(shapes_run, photos / "img_1.png", top_k=2)
    x = image_transform(spec)(Image.open(photos / "img_1.png").convert("RGB"))
    assert x.shape == (3, 64, 64)
    with torch.no_grad():
        probs = model(x[None]).softmax(1)[0]
    (pred,) = result.predictions
    assert pred.probs[0] == pytest.approx(float(probs.max()), abs=1e-5)
    assert pred.labels[0] == spec.classes[int(probs.argmax())]


def test_grayscale_mnist_run_resizes_and_converts(tmp_path: Path) -> None:
    run_dir = tmp_path / "mnist-run"  # what mnist-cnn saves: a 1x28x28 grayscale classifier
    kwargs = {"in_channels": 1, "num_classes": 10, "width": 8}
    classes = [str(d) for d in range(10)]
    mnist_spec = ModelSpec("mnist-cnn", kwargs, [1, 28, 28], [0.1307], [0.3081], classes)
    save_bundle(run_dir, create_model("mnist-cnn", **kwargs), mnist_spec)
    digit = Image.new("RGB", (120, 90), "black")
    digit.paste((255, 255, 255), (50, 20, 70, 70))  # a white bar: a "1"
    digit.save(tmp_path / "one.png")
    result = runner.invoke(app, ["predict", str(run_dir), str(tmp_path / "one.png")])
    assert result.exit_code == 0, result.output
    (pred,) = predict(run_dir, tmp_path / "one.png", top_k=3).predictions
    assert len(pred.labels) == 3 and sum(pred.probs) <= 1 + 1e-5
    spec = ModelSpec("mnist-cnn", input_shape=[1, 28, 28], mean=[0.13], std=[0.31])
    assert image_transform(spec)(digit).shape == (1, 28, 28)


def test_clear_errors_for_a_bad_run_folder_or_a_lone_corrupt_image(
    shapes_run: Path, photos: Path, tmp_path: Path
) -> None:
    def output(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, ["predict", *args])
        return result.exit_code, " ".join(result.output.split())  # undo rich's line wrapping

    code, text = output(str(tmp_path), str(photos))
    assert code == 2 and "holds no trained model" in text
    code, text = output(str(shapes_run), str(photos / "broken.jpg"))
    assert code == 1 and "no readable input" in text and "skipped" in text
    code, text = output(str(shapes_run), str(tmp_path / "missing"))
    assert code == 2 and "neither an image file nor a folder" in text
    bad_out = ["predict", str(shapes_run), str(photos), "--output", str(tmp_path / "p.txt")]
    assert runner.invoke(app, bad_out).exit_code == 2
