"""The text-classifier recipe end to end on a CSV a test writes, and its one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from torchdojo.data.text import tiny_sentiment
from torchdojo.models import load_bundle
from torchdojo.recipes import run_recipe
from torchdojo.runs import RunOptions
from torchdojo.utils.textcodec import TextCodec

SMALL = ["epochs=2", "vocab_size=100", "max_length=24"]  # on top of the smoke Transformer


def write_reviews(path: Path) -> Path:
    tiny = tiny_sentiment(seed=1, n_train=160, n_test=40)
    rows = zip(
        tiny.train_texts + tiny.test_texts, tiny.train_labels + tiny.test_labels, strict=True
    )
    lines = ["id,comment,stars"] + [
        f'{i},"{t}",{"good" if y else "bad"}' for i, (t, y) in enumerate(rows)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_own_csv_end_to_end(tmp_path: Path) -> None:
    csv = write_reviews(tmp_path / "my reviews.csv")
    overrides = [f"dataset={csv}", "text_column=comment", "label_column=stars", *SMALL]
    result = run_recipe(
        "text-classifier",
        RunOptions(smoke=True, out=str(tmp_path / "runs"), progress=False, overrides=overrides),
    )
    metrics = result.metrics
    assert all(math.isfinite(v) for v in metrics.values())
    assert 0.0 <= metrics["test_acc_bow_baseline"] <= 1.0
    assert math.isclose(
        metrics["test_acc_gain_over_bow"], metrics["test_acc"] - metrics["test_acc_bow_baseline"]
    )
    run_dir = result.run_dir
    spec = json.loads((run_dir / "model.json").read_text())
    assert spec["task"] == "text-classification" and spec["classes"] == ["bad", "good"]
    assert spec["preprocess"] == {
        "tokenizer": "tokenizer.json",
        "max_length": 24,
        "pretokenize": None,
    }
    model, _ = load_bundle(run_dir)
    codec = TextCodec.load(run_dir)
    batch = {k: torch.from_numpy(v) for k, v in codec.encode(["the food was great"]).items()}
    probs = model(batch["input_ids"], batch["attention_mask"]).softmax(1)
    assert probs.shape == (1, 2) and torch.isfinite(probs).all()
    assert (run_dir / "plots" / "confusion_matrix.png").is_file()
    report = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Attention on test sentences" in report  # the Transformer's colouring
    assert (run_dir / "plots" / "attention.png").is_file()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["dataset=no-such-set"], "unknown text dataset 'no-such-set'"),
        (["dataset={csv}", "text_column=nope"], "has no column 'nope'"),
        (["dataset={empty}"], "is empty"),
    ],
)
def test_bad_data_is_one_line(tmp_path: Path, overrides: list[str], match: str) -> None:
    from torchdojo.cli.app import _register_commands, app

    _register_commands()
    csv = write_reviews(tmp_path / "r.csv")
    (tmp_path / "e.csv").write_text("")
    args = [o.format(csv=csv, empty=tmp_path / "e.csv") for o in overrides]
    result = CliRunner().invoke(
        app,
        ["run", "text-classifier", "--smoke", "--out", str(tmp_path / "runs")]
        + [x for o in args for x in ("--set", o)],
    )
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and match in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
