"""The own-text flow end to end, from a CSV this test writes: `torchdojo run text-classifier`
on it, then `predict`, `export` (ONNX, dynamo, parity on the run's own test sentences) and the
server answering the same as `predict` did."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app
from torchdojo.data.text import tiny_sentiment
from torchdojo.serve import create_app

runner = CliRunner()
_register_commands()
LABELS = ("bad", "good")


def write_reviews(path: Path) -> Path:
    """200 short reviews in a CSV with a header the recipe finds by name."""
    data = tiny_sentiment(seed=3, n_train=160, n_test=40)
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(["review", "sentiment"])
        texts, labels = data.train_texts + data.test_texts, data.train_labels + data.test_labels
        for text, label in zip(texts, labels, strict=True):
            writer.writerow([text, LABELS[label]])
    return path


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())  # undo rich's line wrapping


def test_csv_to_served_page(tmp_path: Path) -> None:
    reviews = write_reviews(tmp_path / "reviews.csv")
    overrides = [f"dataset={reviews}", "epochs=1", "dim=16", "heads=2", "max_length=24"]
    sets = [item for o in overrides for item in ("--set", o)]
    out = invoke(
        "run", "text-classifier", "--smoke", "--out", str(tmp_path), "--no-progress", *sets
    )
    assert "reviews.csv (200 rows)" in out
    (run_dir,) = (tmp_path / "text-classifier").iterdir()
    spec = json.loads((run_dir / "model.json").read_text())
    assert spec["task"] == "text-classification" and spec["classes"] == list(LABELS)

    predictions = tmp_path / "predictions.json"
    sentence = "the food was great but the service was slow"
    invoke("predict", str(run_dir), "--text", sentence, "--out", str(predictions))
    (local,) = json.loads(predictions.read_text())["predictions"]
    assert local["label"] in LABELS and local["tokens"][0] == "[CLS]"

    out = invoke("export", str(run_dir))
    assert "parity on 16 test sentences of" in out and "reviews.csv" in out
    export_dir = run_dir / "export"
    parity = json.loads((export_dir / "parity.json").read_text())
    card = json.loads((export_dir / "card.json").read_text())
    assert parity["passed"] and parity["top1_agreement"] == 1.0
    assert parity["max_abs_diff_logits"] <= parity["atol_logits"]
    assert len(parity["seq_lengths"]) >= 3  # varied lengths through the dynamic axis
    assert card["exporter"] == "dynamo" and card["output_names"] == ["logits", "attention"]
    assert (export_dir / "tokenizer.json").is_file() and (export_dir / "textcodec.json").is_file()

    served = TestClient(create_app(export_dir, threads=1)).post("/predict", json={"text": sentence})
    assert served.status_code == 200
    answer = served.json()
    assert answer["label"] == local["label"] and answer["tokens"] == local["tokens"]
    np.testing.assert_allclose(answer["attention"], local["attention"], atol=1e-4)
    np.testing.assert_allclose(
        [answer["probs"][c] for c in LABELS], [local["probs"][c] for c in LABELS], atol=1e-4
    )


def test_text_runs_export_to_onnx_only(tmp_path: Path) -> None:
    from torchdojo.data.text import build_codec
    from torchdojo.models import ModelSpec, create_model, save_bundle

    codec = build_codec("word", ["good food", "bad food"], max_length=8)
    kwargs = {"vocab_size": codec.vocab_size, "num_classes": 2, "embed_dim": 4}
    preprocess = {"tokenizer": "tokenizer.json", "max_length": 8, "pretokenize": None}
    spec = ModelSpec("text-bow", kwargs, [8], classes=list(LABELS), task="text-classification")
    spec.preprocess = preprocess
    save_bundle(tmp_path, create_model("text-bow", **kwargs), spec)
    codec.save(tmp_path)
    result = runner.invoke(app, ["export", str(tmp_path), "--format", "torch-export"])
    assert result.exit_code == 2
    assert "text runs export to onnx only" in " ".join(result.output.split())


@pytest.fixture(autouse=True)
def _no_real_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TORCHDOJO_DATA", str(tmp_path / "no-data"))  # the CSV is all it needs
