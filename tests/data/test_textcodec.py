"""TextCodec: ids, padding, truncation, unknown tokens, empty strings, mixed scripts, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

from torchdojo.utils.textcodec import TextCodec

CORPUS = [
    "the movie was great",
    "the food was awful",
    "great service and great food",
    "この映画はとても良かった",
    "サービスが悪い 👎",
    "emoji make me happy 😀😀",
]


def word_tokenizer(cls_first: bool = True) -> Tokenizer:
    vocab = {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "the": 3, "movie": 4, "was": 5, "great": 6}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if cls_first:
        tok.post_processor = processors.TemplateProcessing(
            single="[CLS] $A", special_tokens=[("[CLS]", 2)]
        )
    return tok


def bpe_tokenizer() -> Tokenizer:
    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=120, special_tokens=["[PAD]", "[UNK]", "[CLS]"])
    tok.train_from_iterator(CORPUS, trainer)
    return tok


def test_encode_pads_to_longest_with_mask() -> None:
    codec = TextCodec(word_tokenizer(), max_length=16)
    out = codec.encode(["the movie", "The movie was great"])
    assert out["input_ids"].dtype == np.int64 and out["attention_mask"].dtype == np.int64
    assert out["input_ids"].shape == (2, 5)  # [CLS] + 4 words is the longest
    assert out["input_ids"][0].tolist() == [2, 3, 4, 0, 0]
    assert out["attention_mask"].tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]
    assert codec.pad_id == 0 and codec.vocab_size == 7


def test_unknown_words_map_to_unk() -> None:
    codec = TextCodec(word_tokenizer(), max_length=16)
    ids = codec.encode(["the zebra was purple"])["input_ids"][0].tolist()
    assert ids == [2, 3, 1, 5, 1]
    assert codec.tokens("the zebra") == ["[CLS]", "the", "[UNK]"]


def test_empty_string_gets_one_real_token() -> None:
    codec = TextCodec(word_tokenizer(cls_first=False), max_length=8)
    out = codec.encode(["", "   ", "great"])
    assert out["input_ids"].shape == (3, 1)
    assert out["input_ids"][:, 0].tolist() == [1, 1, 6]  # [UNK] stands in for nothing
    assert out["attention_mask"].sum(axis=1).tolist() == [1, 1, 1]
    assert codec.tokens("") == ["[UNK]"]
    with_cls = TextCodec(word_tokenizer(), max_length=8).encode([""])
    assert with_cls["input_ids"].tolist() == [[2]]  # the [CLS] template already gives a token


def test_truncation_keeps_cls_first() -> None:
    codec = TextCodec(word_tokenizer(), max_length=3)
    out = codec.encode(["the movie was great great great"])
    assert out["input_ids"].tolist() == [[2, 3, 4]]
    assert len(codec.tokens("the movie was great")) == 3


def test_mixed_scripts_round_trip(tmp_path: Path) -> None:
    codec = TextCodec(bpe_tokenizer(), max_length=64)
    texts = ["great food 😀", "この映画は良かった", "Ünïcödé 😀 映画 great", ""]
    before = codec.encode(texts)
    tokens = codec.tokens("この映画は良かった")
    assert "".join(tokens) == "この映画は良かった"  # nothing of the Japanese is lost
    assert "[UNK]" in codec.tokens("Ünïcödé")  # characters never seen in training are unknown
    codec.save(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "textcodec.json",
        "tokenizer.json",
    ]
    again = TextCodec.load(tmp_path / "run")
    after = again.encode(texts)
    np.testing.assert_array_equal(before["input_ids"], after["input_ids"])
    np.testing.assert_array_equal(before["attention_mask"], after["attention_mask"])
    assert again.max_length == 64 and again.pretokenize is None


def test_tokenizer_padding_settings_are_ignored() -> None:
    tok = word_tokenizer()
    tok.enable_padding(pad_id=0, pad_token="[PAD]", length=50)
    out = TextCodec(tok, max_length=8).encode(["the movie"])
    assert out["input_ids"].shape == (1, 3)


def test_janome_pretokenize_splits_morphemes(tmp_path: Path) -> None:
    vocab = {"[PAD]": 0, "[UNK]": 1, "映画": 2, "は": 3, "良かっ": 4, "た": 5}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    codec = TextCodec(tok, max_length=16, pretokenize="janome")
    assert codec.tokens("映画は良かった") == ["映画", "は", "良かっ", "た"]
    codec.save(tmp_path)
    assert TextCodec.load(tmp_path).pretokenize == "janome"
    plain = TextCodec(tok, max_length=16)
    assert plain.tokens("映画は良かった") == ["[UNK]"]  # no spaces: one unknown "word"


def test_load_names_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        TextCodec.load(tmp_path)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="pretokenize"):
        TextCodec(word_tokenizer(), max_length=8, pretokenize="mecab")
    with pytest.raises(ValueError, match="max_length"):
        TextCodec(word_tokenizer(), max_length=0)
    with pytest.raises(TypeError, match="list"):
        TextCodec(word_tokenizer(), max_length=8).encode("one text")  # type: ignore[arg-type]
