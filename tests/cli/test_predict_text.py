"""`torchdojo predict` on a text run: --text, .txt and .csv inputs, CSV/JSON output, the
attention page, and one-line refusals when the input does not fit the run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from torchdojo.cli.app import _register_commands, app
from torchdojo.data.text import build_codec, tiny_sentiment
from torchdojo.models import ModelSpec, create_model, load_bundle, save_bundle
from torchdojo.services.predict import load_codec, predict_texts

runner = CliRunner()
_register_commands()
CLASSES = ["negative", "positive"]


def make_text_run(folder: Path, name: str, sizes: dict[str, int]) -> Path:
    """A finished text run folder as the text recipes write it: bundle, codec, summary."""
    texts = tiny_sentiment(seed=0, n_train=120, n_test=10).train_texts
    codec = build_codec("word", texts, vocab_size=120, max_length=16)
    torch.manual_seed(0)
    kwargs = {"vocab_size": codec.vocab_size, "num_classes": 2, **sizes}
    spec = ModelSpec(
        name,
        kwargs,
        input_shape=[16],
        classes=CLASSES,
        task="text-classification",
        preprocess={"tokenizer": "tokenizer.json", "max_length": 16, "pretokenize": None},
    )
    save_bundle(folder, create_model(name, **kwargs), spec)
    codec.save(folder)
    (folder / "summary.json").write_text(json.dumps({"status": "finished", "metrics": {}}))
    return folder


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    sizes = {"dim": 16, "depth": 1, "heads": 2, "max_length": 16}
    return make_text_run(tmp_path_factory.mktemp("transformer-run"), "text-transformer", sizes)


@pytest.fixture(scope="module")
def bow_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_text_run(tmp_path_factory.mktemp("bow-run"), "text-bow", {"embed_dim": 8})


def one_line(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["predict", *args])
    return result.exit_code, " ".join(result.output.split())  # undo rich's line wrapping


def test_text_option_prints_labels_probabilities_and_attention(transformer_run: Path) -> None:
    args = ["predict", str(transformer_run), "--text", "the food was great"]
    result = runner.invoke(app, [*args, "--text", "not good"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "the food was great" in text and "not good" in text
    assert "[CLS]:" in text and "food:" in text  # tokens with their weights
    assert text.count("negative (") + text.count("positive (") == 2


def test_json_output_matches_the_model(transformer_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictions.json"
    args = ["predict", str(transformer_run), "--text", "the plot was dull", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    (item,) = json.loads(out.read_text())["predictions"]
    model, spec = load_bundle(transformer_run)
    codec = load_codec(transformer_run, spec)
    batch = codec.encode(["the plot was dull"])
    ids, mask = (torch.from_numpy(batch[k]) for k in ("input_ids", "attention_mask"))
    with torch.no_grad():
        probs = model(ids, mask).softmax(1)[0]
        weights = model.token_attention(ids, mask)[0]
    assert item["label"] == CLASSES[int(probs.argmax())]
    assert item["probs"]["positive"] == pytest.approx(float(probs[1]), abs=1e-5)
    assert item["tokens"] == ["[CLS]", "the", "plot", "was", "dull"]
    assert item["attention"] == pytest.approx(weights.tolist(), abs=1e-5)
    assert sum(item["attention"]) == pytest.approx(1.0, abs=1e-4)


def test_csv_and_txt_files_of_texts(transformer_run: Path, tmp_path: Path) -> None:
    table = tmp_path / "reviews.csv"
    table.write_text('id,review\n1,"great, really great"\n2,awful\n\n3,"the staff, not bad"\n')
    lines = tmp_path / "lines.txt"
    lines.write_text("great food\n\n   \nboring film\n")
    out = tmp_path / "predictions.csv"
    result = runner.invoke(app, ["predict", str(transformer_run), str(table), "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert [r["text"] for r in rows] == ["great, really great", "awful", "the staff, not bad"]
    for row in rows:
        assert row["label"] in CLASSES
        assert float(row["prob_negative"]) + float(row["prob_positive"]) == pytest.approx(1, 1e-5)
        assert len(row["tokens"].split()) == len(row["attention"].split())
    assert [p.text for p in predict_texts(transformer_run, ["x"]).predictions] == ["x"]
    code, text = one_line(str(transformer_run), str(lines))
    assert code == 0 and "great food" in text and "boring film" in text


def test_html_page_colours_tokens_by_attention(transformer_run: Path, tmp_path: Path) -> None:
    page = tmp_path / "attention.html"
    args = [str(transformer_run), "--text", "the food was great", "--text", "dull", "--html"]
    code, _ = one_line(*args, str(page))
    assert code == 0
    html = page.read_text()
    assert html.count('class="attention"') == 2  # one block per text
    assert html.count("rgba(255,0,0,") == 5 + 2  # one coloured box per token
    assert ">food</span>" in html and "rgba(255,0,0,1.000)" in html  # the top token: opaque
    assert "http://" not in html and "https://" not in html  # works offline


def test_bag_of_words_run_has_no_attention_to_colour(bow_run: Path, tmp_path: Path) -> None:
    code, text = one_line(str(bow_run), "--text", "great food")
    assert code == 0 and "tokens (attention)" not in text and "great food" in text
    assert "negative (" in text or "positive (" in text
    code, text = one_line(str(bow_run), "--text", "great", "--html", str(tmp_path / "a.html"))
    assert code == 2 and "--html needs a model with token attention" in text


def test_inputs_that_do_not_fit_the_run_get_one_line(transformer_run: Path, tmp_path: Path) -> None:
    photo = tmp_path / "photo.png"
    photo.write_bytes(b"\x89PNG\r\n\x1a\n")
    code, text = one_line(str(transformer_run), str(photo))
    assert code == 2 and "is a text-classification run; pass --text" in text
    assert "Traceback" not in text
    code, text = one_line(str(transformer_run))
    assert code == 2 and "nothing to predict" in text
    table = tmp_path / "no_text_column.csv"
    table.write_text("id,stars\n1,5\n")
    code, text = one_line(str(transformer_run), str(table))
    assert code == 2 and "which column" in text and "no_text_column.csv" in text
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("fine\ncaf\xe9 au lait\n".encode("latin-1"))
    code, text = one_line(str(transformer_run), str(latin1))
    assert code == 2 and "line 2 is not UTF-8" in text


def test_text_for_an_image_run_gets_one_line(tmp_path: Path) -> None:
    kwargs = {"in_channels": 1, "num_classes": 10, "width": 8}
    spec = ModelSpec("mnist-cnn", kwargs, [1, 28, 28], [0.13], [0.31], [str(d) for d in range(10)])
    save_bundle(tmp_path, create_model("mnist-cnn", **kwargs), spec)
    code, text = one_line(str(tmp_path), "--text", "a sentence")
    assert code == 2 and "--text is for text runs" in text and "image classifier" in text
