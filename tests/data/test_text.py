"""Text datasets (own CSV/TSV/folders, malformed files, splits), tokenizers and batches."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from torchdojo.data.text import (
    TOKENIZERS,
    LengthBucketSampler,
    TextDataError,
    TextLoader,
    build_codec,
    collate_text,
    load_text_dataset,
    stratified_split,
    tiny_sentiment,
)


def write_csv(path: Path, rows: list[tuple[str, str]], header: str = "review,sentiment") -> Path:
    lines = [header] + [f'"{t}",{lab}' for t, lab in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sentences(n: int) -> list[tuple[str, str]]:
    return [
        (f"sentence number {i} is {'fine' if i % 3 else 'bad'}", "pos" if i % 3 else "neg")
        for i in range(n)
    ]


# ------------------------------------------------------------------ own files


def test_csv_columns_found_and_split_stratified(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "reviews.csv", sentences(100))
    splits = load_text_dataset(str(path), None, seed=3)
    assert splits.classes == ["neg", "pos"]
    assert len(splits.train_texts) + len(splits.test_texts) == 100
    assert Counter(splits.test_labels) == {0: 7, 1: 13}  # 20 % of 34 and of 66
    assert not set(splits.train_texts) & set(splits.test_texts)
    again = load_text_dataset(str(path), None, seed=3)
    assert again.test_texts == splits.test_texts  # same seed, same split
    other = load_text_dataset(str(path), None, seed=4)
    assert other.test_texts != splits.test_texts


def test_csv_quotes_commas_and_named_columns(tmp_path: Path) -> None:
    path = tmp_path / "q.csv"
    body = 'id,body,y\n1,"good, really ""good""",1\n2,"bad\nover two lines",0\n'
    path.write_text(body + "".join(f"{i},text {i},{i % 2}\n" for i in range(3, 20)))
    with pytest.raises(
        TextDataError, match=r"cannot tell.*first row: .id., .body., .y.;.*text_column="
    ):
        load_text_dataset(str(path), None)
    splits = load_text_dataset(str(path), None, text_column="body", label_column="y")
    every = splits.train_texts + splits.test_texts
    assert 'good, really "good"' in every and "bad\nover two lines" in every


def test_tsv_and_text_folder(tmp_path: Path) -> None:
    tsv = tmp_path / "data.tsv"
    rows = "".join(f'say "{i}" now\t{i % 2}\n' for i in range(30))
    tsv.write_text("text\tlabel\n" + rows, encoding="utf-8")
    splits = load_text_dataset(str(tsv), None)
    assert splits.classes == ["0", "1"] and len(splits.test_texts) == 6
    assert any('"' in t for t in splits.train_texts)  # TSV: quotes are text
    for name in ("happy", "sad"):
        (tmp_path / "folder" / name).mkdir(parents=True)
        for i in range(10):
            (tmp_path / "folder" / name / f"{i}.txt").write_text(f"{name} text {i}\n")
    folder = load_text_dataset(str(tmp_path / "folder"), None)
    assert folder.classes == ["happy", "sad"] and Counter(folder.test_labels) == {0: 2, 1: 2}


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", r"bad\.csv is empty"),
        (b"text,label\n", r"bad\.csv has a header but no rows"),
        (b"text,label\nok,1\nfine,0\n,1\n", r"bad\.csv line 4 has an empty text"),
        (b"text,label\nok,1\ncaf\xe9 au lait,0\n", r"bad\.csv line 3 is not UTF-8 \(byte 0xe9\)"),
        (b"words,label\nok,1\n", r"cannot tell which column of .*bad\.csv holds the text"),
        (b"text,label\nok,1\nnolabel\n", r"bad\.csv line 3 has 1 fields"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(TextDataError, match=match) as info:
        load_text_dataset(str(path), None)
    assert "\n" not in str(info.value)  # one line
    assert isinstance(info.value, ValueError)


def test_missing_named_data_says_where(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"sentiment/uci.*TORCHDOJO_DATA"):
        load_text_dataset("uci", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"sentiment/chabsa/train\.tsv"):
        load_text_dataset("chabsa", tmp_path)
    with pytest.raises(ValueError, match=r"unknown text dataset 'nope'.*uci, uci-amazon"):
        load_text_dataset("nope", tmp_path)


def test_uci_layout_from_written_files(tmp_path: Path) -> None:
    folder = tmp_path / "sentiment" / "uci"
    folder.mkdir(parents=True)
    for name in ("amazon_cells", "imdb", "yelp"):
        lines = [f"{name} says {i}\u0085 really.  \t{i % 2}" for i in range(50)]
        (folder / f"{name}_labelled.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    splits = load_text_dataset("uci", tmp_path, seed=1)
    assert len(splits.train_texts) == 120 and len(splits.test_texts) == 30
    per_source = Counter(
        (t.split()[0], y) for t, y in zip(splits.test_texts, splits.test_labels, strict=True)
    )
    assert set(per_source.values()) == {5}  # 20 % of each (source, label) group
    assert all("\u0085" in t for t in splits.test_texts)  # NEL is not a line end
    assert len(load_text_dataset("uci-yelp", tmp_path).test_texts) == 10


def test_duplicates_stay_on_one_side() -> None:
    texts = ["a", "b", "a", "c", "d", "a", "e", "f", "g", "h"]
    train, test = stratified_split(texts, ["x"] * 10, test_fraction=0.3, seed=0)
    sides = {texts[i] for i in test}
    assert not sides & {texts[i] for i in train}
    assert sorted(train + test) == list(range(10))


def test_text_tiny_is_not_one_word_separable() -> None:
    splits = tiny_sentiment(seed=0)
    assert len(splits.train_texts) == 480 and len(set(splits.train_texts)) == 480
    assert splits.train_texts == tiny_sentiment(seed=0).train_texts
    words = {w for t in splits.train_texts for w in t.split()}
    best = 0.0
    for word in words:  # the best one-word rule "label = (word in text)" or its negation
        has = np.array([word in t.split() for t in splits.train_texts])
        acc = float((has == np.array(splits.train_labels)).mean())
        best = max(best, acc, 1 - acc)
    assert 0.55 < best < 0.8


# ----------------------------------------------------------------- tokenizers


@pytest.mark.parametrize("kind", TOKENIZERS)
def test_every_tokenizer_kind(kind: str, tmp_path: Path) -> None:
    texts = tiny_sentiment(seed=0).train_texts + ["映画はとても良かった", "サービスが悪かった"]
    codec = build_codec(kind, texts, vocab_size=300, max_length=32)
    assert codec.tokenizer.token_to_id("[PAD]") == 0 and codec.pad_id == 0
    assert codec.tokenizer.token_to_id("[UNK]") == 1
    out = codec.encode(["The movie was GREAT", "", "zzz qqq 🙂"])
    assert (out["input_ids"][:, 0] == 2).all()  # [CLS] first
    assert out["attention_mask"].sum(1).min() >= 1
    assert 1 in out["input_ids"][2]  # never-seen characters or words are [UNK]
    assert codec.vocab_size <= 300
    codec.save(tmp_path)
    again = type(codec).load(tmp_path)
    np.testing.assert_array_equal(
        again.encode(["映画 was great"])["input_ids"], codec.encode(["映画 was great"])["input_ids"]
    )


def test_janome_tokenizer_splits_japanese() -> None:
    texts = ["売上高は増加しました", "利益は減少しました", "売上高は減少しました"]
    codec = build_codec("janome", texts, vocab_size=100)
    assert codec.pretokenize == "janome"
    assert codec.tokens("売上高は増加しました")[1:] == [
        "売上",
        "高",
        "は",
        "増加",
        "し",
        "まし",
        "た",
    ]
    assert build_codec("word", texts).tokens("売上高は増加しました")[1:] == ["売上高は増加しました"]


# -------------------------------------------------------------------- batches


def test_length_buckets_are_deterministic_and_tight() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, size=1000).tolist()
    sampler = LengthBucketSampler(lengths, batch_size=16, seed=5, pool_batches=10)
    first = list(sampler)
    assert first == list(LengthBucketSampler(lengths, batch_size=16, seed=5, pool_batches=10))
    assert sorted(i for b in first for i in b) == list(range(1000)) and len(first) == len(sampler)
    sampler.set_epoch(1)
    assert list(sampler) != first
    padded = sum(len(b) * max(lengths[i] for i in b) for b in first)
    random_batches = [list(range(i, min(i + 16, 1000))) for i in range(0, 1000, 16)]
    padded_random = sum(len(b) * max(lengths[i] for i in b) for b in random_batches)
    assert padded < 0.7 * padded_random  # bucketing cuts the padding


def test_text_loader_and_packing() -> None:
    splits = tiny_sentiment(seed=0)
    codec = build_codec("word", splits.train_texts, max_length=64)
    loader = TextLoader(codec.encode(splits.train_texts), splits.train_labels, batch_size=32)
    batches = list(loader)
    assert len(batches) == len(loader) and sum(len(b["labels"]) for b in batches) == 480
    for b in batches:
        assert b["attention_mask"][:, -1].any()  # cut to the batch's longest text
    loader.set_start(3)
    assert len(list(loader)) == len(batches) - 3
    batch = collate_text([([2, 5, 6], 1), ([2], 0)], pad_id=0)
    assert batch["input_ids"].tolist() == [[2, 5, 6], [2, 0, 0]]
    assert batch["lengths"].tolist() == [3, 1] and batch["labels"].tolist() == [1, 0]
    emb = torch.nn.Embedding(10, 4)(batch["input_ids"])
    packed = pack_padded_sequence(emb, batch["lengths"], batch_first=True, enforce_sorted=False)
    assert int(packed.batch_sizes.sum()) == 4  # only the 4 real tokens are fed to an RNN


# ------------------------------------------------------------------ real data


def test_real_uci_and_chabsa(real_data: Path) -> None:
    uci = load_text_dataset("uci", real_data)
    assert len(uci.train_texts) + len(uci.test_texts) == 3000
    assert len(uci.test_texts) == 600 and Counter(uci.test_labels) == {0: 300, 1: 300}
    chabsa = load_text_dataset("chabsa", real_data)
    assert (len(chabsa.train_texts), len(chabsa.test_texts)) == (1970, 843)
    assert Counter(chabsa.test_labels) == {1: 501, 0: 342}


@pytest.mark.parametrize("kind", ["word", "char", "bpe", "unigram"])
def test_tokenizer_training_is_reproducible(kind: str) -> None:
    texts = tiny_sentiment(seed=2).train_texts + ["rare # $ % & chars", "映画は良かった"]
    first = build_codec(kind, texts, vocab_size=150).tokenizer.to_str()
    assert all(
        build_codec(kind, texts, vocab_size=150).tokenizer.to_str() == first for _ in range(3)
    )
