"""Skip-gram with negative sampling: the loss and its gradient by hand, training that groups
co-occurring words, and fastText vectors for unseen words."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from torchdojo.data.wordpairs import NegativeTable, build_vocab, encode, skipgram_pairs
from torchdojo.models.word2vec import FastTextSGNS, SkipGramNS, char_ngrams, fnv1a, sgns_loss


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_sgns_loss_and_gradient_by_hand() -> None:
    v = torch.tensor([[1.0, 0.0]], requires_grad=True)  # center
    u_o = torch.tensor([[1.0, 1.0]])  # context: u·v = 1
    u_neg = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])  # negatives: u·v = 0 and -1
    loss = sgns_loss(v, u_o, u_neg)
    by_hand = -math.log(_sigmoid(1)) - math.log(_sigmoid(-0.0)) - math.log(_sigmoid(1))
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)
    loss.backward()
    # dL/dv = (σ(u_o·v) - 1) u_o + Σ_k σ(u_k·v) u_k
    grad = (_sigmoid(1) - 1) * u_o[0] + _sigmoid(0) * u_neg[0, 0] + _sigmoid(-1) * u_neg[0, 1]
    torch.testing.assert_close(v.grad[0], grad)


TOPICS = [
    ["cat", "dog", "horse", "cow", "sheep", "goat"],
    ["hammer", "saw", "drill", "wrench", "chisel", "pliers"],
    ["red", "green", "blue", "yellow", "purple", "orange"],
]


def _topic_corpus(rng: np.random.Generator) -> list[list[str]]:
    """Sentences of 6 words from one topic each: words share contexts only within a topic."""
    return [list(rng.choice(TOPICS[i % 3], size=6)) for i in range(600)]


def _train(model: torch.nn.Module, sentences: list[np.ndarray], counts: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    table = NegativeTable(counts, size=10_000)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(3):
        c, o = skipgram_pairs(sentences, window=2, rng=rng)
        order = rng.permutation(len(c))
        c, o = c[order], o[order]
        neg = table.sample((len(c), 2), rng)
        for i in range(0, len(c), 1024):
            loss = model(*(torch.from_numpy(a[i : i + 1024]) for a in (c, o, neg)))
            opt.zero_grad()
            loss.backward()
            opt.step()


def test_skipgram_groups_words_that_share_contexts() -> None:
    torch.manual_seed(0)
    sentences = _topic_corpus(np.random.default_rng(1))
    words, counts = build_vocab(sentences)
    model = SkipGramNS(len(words), 16)
    _train(model, encode(sentences, words), counts)
    unit = torch.nn.functional.normalize(model.vectors, dim=1)
    sims = unit @ unit.T
    ids = [[words.index(w) for w in topic] for topic in TOPICS[:2]]
    off_diagonal = ~torch.eye(6, dtype=torch.bool)
    within = sims[ids[0]][:, ids[0]][off_diagonal].mean()
    across = sims[ids[0]][:, ids[1]].mean()
    assert within > across + 0.5, (within, across)


def test_char_ngrams_and_hash() -> None:
    assert char_ngrams("cat", 3, 4) == ["<ca", "cat", "at>", "<cat", "cat>"]
    assert fnv1a("") == 2166136261 and fnv1a("a") == 0xE40C292C  # the published FNV-1a values


def test_fasttext_gives_unseen_words_a_related_vector() -> None:
    torch.manual_seed(0)
    sentences = _topic_corpus(np.random.default_rng(1))
    sentences += [["cats", "dogs", "horses"]] * 40 + [["hammers", "saws", "drills"]] * 40
    words, counts = build_vocab(sentences)
    model = FastTextSGNS(words, 16, buckets=4096)
    _train(model, encode(sentences, words), counts)
    unseen = model.vector("dogz")  # never seen: built from <do, dog, ogz, ...
    assert "dogz" not in words and unseen.abs().sum() > 0
    assert torch.equal(unseen, model.vector("dogz"))  # deterministic (FNV hash, no RNG)
    cos = torch.nn.functional.cosine_similarity
    assert (
        cos(unseen, model.vector("dog"), dim=0) > cos(unseen, model.vector("hammer"), dim=0) + 0.2
    )
    torch.testing.assert_close(model.vectors[words.index("dog")], model.vector("dog"))
