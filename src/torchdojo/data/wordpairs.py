"""Training pairs for word2vec's skip-gram: vocabulary, subsampling, windows, negative table.

Mikolov et al., 2013 (https://arxiv.org/abs/1310.4546), following the reference C code
(word2vec.c): words rarer than ``min_count`` are dropped; frequent words are discarded at
random with probability ``1 - (sqrt(f / t) + 1) · t / f`` (f: the word's share of the corpus);
each center word draws a window size in 1..window, so near neighbours count more; negatives
are drawn from the unigram distribution raised to the 3/4 power, through a big table in which
each word fills a share of slots proportional to ``count^0.75``.
Taught in lessons/14_word_vectors.py; the model is :mod:`torchdojo.models.word2vec`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")  # letters/digits, with an inner apostrophe (don't)


def simple_words(text: str) -> list[str]:
    """Lowercased words of ``text``: runs of letters or digits, keeping inner apostrophes."""
    return _WORD.findall(text.lower())


def build_vocab(
    sentences: Iterable[Sequence[str]], *, min_count: int = 1, max_size: int | None = None
) -> tuple[list[str], np.ndarray]:
    """Words seen at least ``min_count`` times, most frequent first (ties alphabetical), and
    their counts."""
    counts = Counter(word for sentence in sentences for word in sentence)
    kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    kept = kept[:max_size]
    return kept, np.array([counts[w] for w in kept], dtype=np.int64)


def encode(sentences: Iterable[Sequence[str]], words: Sequence[str]) -> list[np.ndarray]:
    """Each sentence as an int64 array of word ids; words outside the vocabulary are dropped."""
    index = {w: i for i, w in enumerate(words)}
    return [np.array([index[w] for w in s if w in index], dtype=np.int64) for s in sentences]


def keep_probabilities(counts: np.ndarray, *, t: float = 1e-4) -> np.ndarray:
    """word2vec.c's chance of keeping each occurrence of a word: ``(sqrt(f/t) + 1) · t/f``, at most 1.

    With ``t = 1e-4``, a word that is 1 % of the corpus keeps about 11 % of its occurrences;
    words rarer than about ``t`` keep all of them.
    """
    f = counts / counts.sum()
    return np.minimum(1.0, (np.sqrt(f / t) + 1) * t / f)


def skipgram_pairs(
    sentences: Sequence[np.ndarray],
    *,
    window: int = 5,
    keep: np.ndarray | None = None,
    dynamic_window: bool = True,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """All (center, context) id pairs of one pass over the corpus.

    Args:
        sentences: Word-id arrays (from :func:`encode`); pairs never cross sentences.
        window: Largest distance between a center and its context words.
        keep: Per-word keep probability (:func:`keep_probabilities`); None keeps every word.
        dynamic_window: Draw each center's window in 1..window (word2vec.c), else use window.
        rng: The random generator (subsampling and window sizes).
    """
    ids = np.concatenate([*sentences, np.zeros(0, np.int64)])  # (N,)
    sid = np.repeat(np.arange(len(sentences)), [len(s) for s in sentences])  # sentence of each
    if keep is not None:
        kept = rng.random(len(ids)) < keep[ids]  # subsampling happens before windowing
        ids, sid = ids[kept], sid[kept]
    span = rng.integers(1, window + 1, len(ids)) if dynamic_window else np.full(len(ids), window)
    centers, contexts = [], []
    for d in range(1, window + 1):
        for c, o in ((slice(None, -d), slice(d, None)), (slice(d, None), slice(None, -d))):
            ok = (sid[c] == sid[o]) & (span[c] >= d)  # same sentence, inside this center's window
            centers.append(ids[c][ok])
            contexts.append(ids[o][ok])
    return np.concatenate(centers), np.concatenate(contexts)


class NegativeTable:
    """word2vec.c's table for drawing negatives with probability ∝ ``count^power``.

    Each word fills ``round(size · p)`` slots (at least one), so a uniform draw of a slot is a
    draw from ``p``; frequent words are damped by the 3/4 power and rare ones boosted.

    Args:
        counts: How often each word id occurs.
        power: The exponent; 0.75 in the paper.
        size: Number of slots.
    """

    def __init__(self, counts: np.ndarray, *, power: float = 0.75, size: int = 1_000_000) -> None:
        weights = counts.astype(np.float64) ** power
        self.probs = weights / weights.sum()
        slots = np.maximum(1, np.round(self.probs * size)).astype(np.int64)
        self.table = np.repeat(np.arange(len(counts)), slots)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
        """Word ids of the given shape, e.g. (pairs, negatives per pair)."""
        return self.table[rng.integers(0, len(self.table), shape)]
