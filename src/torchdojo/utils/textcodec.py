"""Turn sentences into padded id tensors with a saved ``tokenizers.Tokenizer``.

``TextCodec`` is the one place where text becomes numbers, for training (``data``), prediction
(``services``) and the web page (``serve``); it lives in ``utils`` so that all of them may use it.
Taught in lessons/13_text_as_tensors.py.

Conventions:
- ``input_ids`` and ``attention_mask`` are int64 ``(B, T)``; ``T`` is the longest encoding in the
  batch after truncation to ``max_length``; padding uses the tokenizer's pad id, mask 0.
- Truncation goes through the tokenizer, so a post-processor's special tokens (``[CLS]`` first,
  MiniLM's ``[SEP]`` last) survive it.
- A text that yields no token at all (``""``, only spaces) encodes to one unknown token
  (``[UNK]``, mask 1): every row then has a real token to pool over and no NaN from an empty mean.
- ``pretokenize="janome"`` splits Japanese text into morphemes joined by spaces before the
  tokenizer sees it (Japanese has no spaces between words).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer

from torchdojo.utils.io import atomic_write_json, atomic_write_text

PRETOKENIZERS = ("janome",)
TOKENIZER_FILE = "tokenizer.json"
CODEC_FILE = "textcodec.json"
_PAD_NAMES = ("[PAD]", "<pad>")
_UNK_NAMES = ("[UNK]", "<unk>", "[CLS]", "<s>")


class TextCodec:
    """Encode texts to ``input_ids`` and ``attention_mask`` arrays; save and load with the model.

    Taught in lessons/13_text_as_tensors.py.

    Args:
        tokenizer: A Hugging Face ``tokenizers.Tokenizer`` (word level, characters, a trained
            subword model, or a pretrained model's own). It is copied: its own padding and
            truncation settings are replaced by this codec's.
        max_length: Longest encoding kept, special tokens included.
        pretokenize: ``None``, or ``"janome"`` to split Japanese into morphemes first.
    """

    def __init__(
        self, tokenizer: Tokenizer, max_length: int, pretokenize: str | None = None
    ) -> None:
        if max_length < 1:
            raise ValueError(f"max_length={max_length} must be at least 1; try 128")
        if pretokenize is not None and pretokenize not in PRETOKENIZERS:
            raise ValueError(
                f"unknown pretokenize {pretokenize!r}; allowed: None, {', '.join(PRETOKENIZERS)}"
            )
        self.tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length)
        self.max_length = max_length
        self.pretokenize = pretokenize
        self.pad_id = _pad_id(tokenizer)
        self.empty_id = _first_id(self.tokenizer, _UNK_NAMES, default=self.pad_id)
        self._split: Callable[[str], str] | None = None

    @property
    def vocab_size(self) -> int:
        """Number of ids, special tokens included (the embedding table's row count)."""
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True))

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Encode a batch of texts to int64 ``input_ids`` and ``attention_mask``, both ``(B, T)``."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts; wrap one text as [text]")
        rows = [enc.ids or [self.empty_id] for enc in self._encode_all(texts)]
        width = max((len(r) for r in rows), default=1)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)  # (B, T)
        mask = np.zeros((len(rows), width), dtype=np.int64)  # (B, T)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = row
            mask[i, : len(row)] = 1
        return {"input_ids": ids, "attention_mask": mask}

    def tokens(self, text: str) -> list[str]:
        """The tokens of ``text`` as the model sees them (after truncation), for display."""
        encoding = self._encode_all([text])[0]
        if not encoding.ids:
            return [str(self.tokenizer.id_to_token(self.empty_id))]
        return list(encoding.tokens)

    def save(self, folder: str | Path) -> None:
        """Write ``tokenizer.json`` and ``textcodec.json`` into ``folder`` (atomically)."""
        folder = Path(folder)
        atomic_write_text(folder / TOKENIZER_FILE, self.tokenizer.to_str(pretty=True))
        atomic_write_json(folder / CODEC_FILE, self.settings())

    def settings(self) -> dict[str, Any]:
        """The codec's settings as saved in ``textcodec.json``."""
        return {"max_length": self.max_length, "pretokenize": self.pretokenize}

    @classmethod
    def load(cls, folder: str | Path) -> TextCodec:
        """Load a codec saved by :meth:`save`; names the folder when a file is missing."""
        folder = Path(folder)
        missing = [n for n in (TOKENIZER_FILE, CODEC_FILE) if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(
                f"{folder} has no {' or '.join(missing)}; a text run saves both beside its "
                "model.safetensors: point at that run folder"
            )
        settings = json.loads((folder / CODEC_FILE).read_text(encoding="utf-8"))
        tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        return cls(tokenizer, int(settings["max_length"]), settings.get("pretokenize"))

    def _encode_all(self, texts: Sequence[str]) -> list[Any]:
        if self.pretokenize is not None:
            texts = [self._pre(t) for t in texts]
        return list(self.tokenizer.encode_batch(list(texts), add_special_tokens=True))

    def _pre(self, text: str) -> str:
        if self._split is None:
            self._split = janome_splitter()
        return self._split(text)

    def __repr__(self) -> str:
        return (
            f"TextCodec(vocab_size={self.vocab_size}, max_length={self.max_length}, "
            f"pretokenize={self.pretokenize!r}, pad_id={self.pad_id})"
        )


def janome_splitter() -> Callable[[str], str]:
    """Return ``split(text) -> "morpheme morpheme ..."`` backed by janome (imported lazily)."""
    try:
        from janome.tokenizer import Tokenizer as JanomeTokenizer
    except ImportError as exc:  # pragma: no cover - janome is in the text extra
        raise ImportError(
            'Japanese morphemes need the text extra: pip install "torchdojo[text]"'
        ) from exc
    janome = JanomeTokenizer(wakati=True)

    def split(text: str) -> str:
        pieces = (str(p).strip() for p in janome.tokenize(text, wakati=True))
        return " ".join(p for p in pieces if p)

    return split


def _pad_id(tokenizer: Tokenizer) -> int:
    padding = tokenizer.padding
    if padding is not None:
        return int(padding["pad_id"])
    return _first_id(tokenizer, _PAD_NAMES, default=0)


def _first_id(tokenizer: Tokenizer, names: Sequence[str], *, default: int) -> int:
    for name in names:
        token_id = tokenizer.token_to_id(name)
        if token_id is not None:
            return int(token_id)
    return default
