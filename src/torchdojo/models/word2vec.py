"""word2vec's skip-gram with negative sampling, and fastText's character n-gram word vectors.

Skip-gram (Mikolov et al., 2013, https://arxiv.org/abs/1310.4546): every word has an input
vector v (used as the word vector) and an output vector u. For a (center, context) pair and k
negatives drawn from the unigram^0.75 distribution, the loss is

    -log σ(u_context · v_center) - Σ_k log σ(-u_negative_k · v_center),

a logistic regression telling real neighbours from noise, instead of a softmax over the whole
vocabulary. fastText (Bojanowski et al., 2017, https://arxiv.org/abs/1607.04606) builds v from
the word's own vector and the vectors of its character n-grams (``<wh``, ``whe``, ...,
hashed into buckets), so a word never seen in training still gets a vector from its pieces.
The pairs and negatives come from :mod:`torchdojo.data.wordpairs`.
Taught in lessons/14_word_vectors.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sgns_loss(center: Tensor, context: Tensor, negatives: Tensor) -> Tensor:
    """Mean skip-gram negative-sampling loss.

    Args:
        center: Input vectors v of the center words, (B, D).
        context: Output vectors u of the true context words, (B, D).
        negatives: Output vectors of the negatives, (B, K, D).
    """
    positive = (center * context).sum(dim=-1)  # (B,): u_o · v_c
    negative = (negatives @ center[..., None]).squeeze(-1)  # (B, K): u_k · v_c
    return -(F.logsigmoid(positive) + F.logsigmoid(-negative).sum(dim=-1)).mean()


class SkipGramNS(nn.Module):
    """word2vec skip-gram: input and output embeddings trained with :func:`sgns_loss`.

    Initialised as in word2vec.c: input vectors uniform in ±0.5/dim, output vectors zero.
    Taught in lessons/14_word_vectors.py.

    Args:
        vocab_size: Number of words.
        dim: Width of each word vector.
    """

    def __init__(self, vocab_size: int, dim: int) -> None:
        super().__init__()
        self.in_embed = nn.Embedding(vocab_size, dim)
        self.out_embed = nn.Embedding(vocab_size, dim)
        nn.init.uniform_(self.in_embed.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.out_embed.weight)

    def forward(self, center: Tensor, context: Tensor, negatives: Tensor) -> Tensor:
        """Loss of ids ``center`` (B,), ``context`` (B,) and ``negatives`` (B, K)."""
        return sgns_loss(self.in_embed(center), self.out_embed(context), self.out_embed(negatives))

    @property
    def vectors(self) -> Tensor:
        """The word vectors (vocab_size, dim): the input embeddings, detached."""
        return self.in_embed.weight.detach()


# ----------------------------------------------------------------------------- fastText


def char_ngrams(word: str, nmin: int = 3, nmax: int = 6) -> list[str]:
    """fastText's character n-grams of ``<word>``, lengths nmin..nmax (the whole ``<word>``
    excluded: the word's own vector stands for it)."""
    marked = f"<{word}>"
    return [
        marked[i : i + n]
        for n in range(nmin, nmax + 1)
        for i in range(len(marked) - n + 1)
        if marked[i : i + n] != marked
    ]


def fnv1a(text: str) -> int:
    """32-bit FNV-1a hash of the UTF-8 bytes (fastText's n-gram hash): stable across runs,
    unlike Python's ``hash``."""
    h = 2166136261
    for byte in text.encode("utf-8"):
        h = ((h ^ byte) * 16777619) & 0xFFFFFFFF
    return h


class SubwordEmbedding(nn.Module):
    """A word's vector is the mean of its own vector (when in the vocabulary) and its hashed
    character n-gram vectors; unseen words use their n-grams alone.

    Taught in lessons/14_word_vectors.py.

    Args:
        words: The training vocabulary, in id order.
        dim: Width of each vector.
        buckets: Hash buckets for n-grams (fastText uses 2 million; collisions share a row).
        nmin: Shortest n-gram.
        nmax: Longest n-gram.
    """

    pieces: Tensor

    def __init__(
        self, words: Sequence[str], dim: int, *, buckets: int = 2**16, nmin: int = 3, nmax: int = 6
    ) -> None:
        super().__init__()
        self.words = list(words)
        self.index = {w: i for i, w in enumerate(self.words)}
        self.buckets, self.nmin, self.nmax = buckets, nmin, nmax
        self.pad = len(self.words) + buckets  # a zero row that the mean skips
        # Rows 0..V-1: words; V..V+buckets-1: n-gram buckets; then the padding row.
        self.bag = nn.EmbeddingBag(self.pad + 1, dim, mode="mean", padding_idx=self.pad)
        nn.init.uniform_(self.bag.weight, -1.0 / dim, 1.0 / dim)
        with torch.no_grad():
            self.bag.weight[self.pad].zero_()
        rows = [self.piece_ids(w) for w in self.words]
        width = max((len(r) for r in rows), default=1)
        table = [r + [self.pad] * (width - len(r)) for r in rows]
        self.register_buffer("pieces", torch.tensor(table, dtype=torch.long).view(-1, width))

    def piece_ids(self, word: str) -> list[int]:
        """Rows averaged into ``word``'s vector: its own id (if known), then its n-gram buckets."""
        own = [self.index[word]] if word in self.index else []
        grams = [
            len(self.words) + fnv1a(g) % self.buckets
            for g in char_ngrams(word, self.nmin, self.nmax)
        ]
        return own + grams

    def forward(self, word_ids: Tensor) -> Tensor:
        """Vectors (B, dim) of vocabulary ids (B,)."""
        return self.bag(self.pieces[word_ids])  # mean over each word's rows

    def vector(self, word: str) -> Tensor:
        """The vector of any word, seen in training or not (zero if it has no n-gram at all)."""
        ids = self.piece_ids(word) or [self.pad]
        return self.bag(torch.tensor([ids], device=self.bag.weight.device))[0].detach()


class FastTextSGNS(nn.Module):
    """Skip-gram with negative sampling whose center vectors are :class:`SubwordEmbedding`.

    Taught in lessons/14_word_vectors.py.

    Args:
        words: The training vocabulary, in id order.
        dim: Width of each vector.
        buckets: Hash buckets for character n-grams.
        nmin: Shortest n-gram.
        nmax: Longest n-gram.
    """

    def __init__(
        self, words: Sequence[str], dim: int, *, buckets: int = 2**16, nmin: int = 3, nmax: int = 6
    ) -> None:
        super().__init__()
        self.in_embed = SubwordEmbedding(words, dim, buckets=buckets, nmin=nmin, nmax=nmax)
        self.out_embed = nn.Embedding(len(words), dim)
        nn.init.zeros_(self.out_embed.weight)

    def forward(self, center: Tensor, context: Tensor, negatives: Tensor) -> Tensor:
        """Loss of ids ``center`` (B,), ``context`` (B,) and ``negatives`` (B, K)."""
        return sgns_loss(self.in_embed(center), self.out_embed(context), self.out_embed(negatives))

    def vector(self, word: str) -> Tensor:
        """Any word's vector, from its n-grams when it was never seen."""
        return self.in_embed.vector(word)

    @property
    def vectors(self) -> Tensor:
        """The vocabulary's vectors (vocab_size, dim)."""
        with torch.no_grad():
            return self.in_embed(
                torch.arange(len(self.in_embed.words), device=self.out_embed.weight.device)
            )
