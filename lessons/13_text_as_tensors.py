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
# # 13 · Text as tensors
#
# A network eats numbers. Before any RNN or Transformer can read a sentence, the sentence
# must become a row of integers (token ids), rows of different lengths must share one
# rectangular tensor, and each id must become a vector. Every choice on the way (what a token
# is, what happens to words never seen, how much padding a batch carries) changes what the
# model can learn and how fast.
#
# **You will learn**
# - four kinds of tokens: characters, words, subwords trained with Hugging Face `tokenizers`
#   (BPE, Unigram), and Japanese morphemes from `janome` (Japanese has no spaces);
# - vocabularies, the `[PAD]` / `[UNK]` / `[CLS]` special tokens, and unknown words;
# - padding with an attention mask vs packing with lengths (`pack_padded_sequence`), and
#   why an LSTM needs packing;
# - length-bucketed batches: the same data with far less padding;
# - the embedding lookup: an `nn.Embedding` is a one-hot row times a matrix.
#
# Data: the UCI sentiment sentences (`$TORCHDOJO_DATA/sentiment/uci`) when present, else a
# synthetic set made in code; a few Japanese sentences written here.
#
# Recipe: `text-classifier`. Seeds: 004 ch4 (text as tensors), 000 ch8 (torchtext, which is
# discontinued: `tokenizers` + a small codec replace it), 003 ch7 (Japanese with MeCab:
# janome needs no install step).

# %%
import math
import unicodedata
from collections import Counter

import matplotlib.pyplot as plt
import numpy as np
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from torchdojo.data.text import (
    LengthBucketSampler,
    build_codec,
    load_text_dataset,
    pad_batch,
    tiny_sentiment,
)
from torchdojo.utils.textcodec import TextCodec, janome_splitter
from torchdojo.viz import start_lesson

LESSON = start_lesson("13_text_as_tensors")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save

try:
    data = load_text_dataset("uci", None)
except FileNotFoundError:
    data = tiny_sentiment(seed=0)
print(data.source)
train_texts, test_texts = data.train_texts, data.test_texts
print(f"{len(train_texts)} training and {len(test_texts)} test sentences, e.g. {train_texts[0]!r}")

# %% [markdown]
# ## 1. Characters: what a string is made of
#
# A Python string is a sequence of Unicode code points. On disk it is UTF-8 bytes: one byte
# for ASCII, three for most Japanese characters, four for an emoji. The same visible letter
# can be one code point (`é`) or two (`e` + a combining accent): NFKC normalization makes
# them equal, and also turns full-width `ＡＢＣ１２３` (common in Japanese text) into ASCII.

# %%
for s in ["a", "é", "映", "😀"]:
    print(f"{s!r}: {len(s)} code point, {len(s.encode('utf-8'))} UTF-8 bytes")
composed, decomposed = "caf\u00e9", "cafe\u0301"
assert composed != decomposed and len(decomposed) == 5
assert unicodedata.normalize("NFKC", decomposed) == composed
assert unicodedata.normalize("NFKC", "ＡＢＣ１２３") == "ABC123"

chars = Counter(c for t in train_texts for c in t)
print(f"{len(chars)} distinct characters in the training texts; the 10 most common:")
print(chars.most_common(10))

# %% [markdown]
# ## 2. Words, a vocabulary, and the unknown
#
# Split on spaces and punctuation, count, keep the most frequent words, and give each an id.
# Id 0 is `[PAD]` (filler, never a real token), 1 is `[UNK]` (any word not kept), 2 is `[CLS]`
# (a first token a Transformer can summarize the sentence into). A test sentence will hold
# words the training set never had: they all become `[UNK]`.


# %%
def unk_rate(codec: TextCodec, texts: list[str]) -> float:
    """Share of real tokens that are [UNK] (id 1) over ``texts``."""
    enc = codec.encode(texts)
    real = enc["attention_mask"].astype(bool)
    return float((enc["input_ids"][real] == 1).mean())


word = build_codec("word", train_texts, vocab_size=4000, max_length=64)
print(word)
print(word.tokens(test_texts[0]))
print(word.encode(test_texts[:1])["input_ids"])
word_unk = unk_rate(word, test_texts)
print(f"word level: {word_unk:.1%} of test tokens are [UNK]")
assert unk_rate(word, train_texts) <= word_unk  # the vocabulary was built from training text
assert word.tokens("zyxwv qqq") == ["[CLS]", "[UNK]", "[UNK]"]

# %% [markdown]
# ## 3. Subwords: trained tokenizers
#
# Byte-pair encoding (BPE) starts from characters and repeatedly merges the most frequent
# adjacent pair into a new token, until the vocabulary is full. Frequent words end up as one
# token, rare words as a few pieces, so a word never seen whole still gets tokens made of
# pieces it shares with known words. Unigram (SentencePiece's model) goes the other way:
# it starts from many candidate pieces and drops those that least help the likelihood.
# `tokenizers` trains either in a fraction of a second. Here is BPE written with the library
# directly, so the steps are visible; `build_codec("bpe", ...)` does the same with our
# special tokens and normalization.

# %%
bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
bpe.pre_tokenizer = pre_tokenizers.Whitespace()
bpe.train_from_iterator(
    [t.lower() for t in train_texts],
    trainers.BpeTrainer(
        vocab_size=1000, special_tokens=["[PAD]", "[UNK]", "[CLS]"], show_progress=False
    ),
)
print(bpe.encode("unbelievably wonderful acting").tokens)

subword = build_codec("bpe", train_texts, vocab_size=1000, max_length=64)
unseen = test_texts + ["the waiter was rude and the pasta was mediocre", "unwatchable"]
word_unk, subword_unk = unk_rate(word, unseen), unk_rate(subword, unseen)
print(f"[UNK] share of test tokens: words {word_unk:.1%}, BPE {subword_unk:.2%}")
assert subword_unk < word_unk  # pieces cover what whole words cannot
print(f"vocabularies: words {word.vocab_size}, BPE {subword.vocab_size}")
lengths_word = word.encode(test_texts)["attention_mask"].sum(1)
lengths_bpe = subword.encode(test_texts)["attention_mask"].sum(1)
assert lengths_bpe.mean() >= lengths_word.mean()  # the price: more tokens per sentence
print(
    f"mean tokens per test sentence: words {lengths_word.mean():.1f}, BPE {lengths_bpe.mean():.1f}"
)

# %% [markdown]
# ## 4. Japanese: no spaces between words
#
# A whitespace tokenizer sees a whole Japanese clause as one "word": every test sentence is
# then an unknown word. Characters work but lose word meaning; trained subwords (Unigram) learn
# frequent character runs; a morphological analyser cuts at word boundaries using a
# dictionary. `janome` is one in pure Python with its dictionary inside, so unlike MeCab it
# installs with pip alone.

# %%
japanese = [
    "売上高は前年同期比で増加しました",
    "営業利益は減少しました",
    "為替の影響で売上高は減少しました",
]
split = janome_splitter()
print(split(japanese[0]))
assert split(japanese[0]).replace(" ", "") == japanese[0]  # morphemes cover the sentence
assert "売上" in split(japanese[0]).split()

by_space = build_codec("word", japanese[:2], vocab_size=100)
by_morpheme = build_codec("janome", japanese[:2], vocab_size=100)
by_char = build_codec("char", japanese[:2], vocab_size=100)
new = japanese[2]
for name, codec in [("spaces", by_space), ("janome", by_morpheme), ("characters", by_char)]:
    print(f"{name:>10}: {codec.tokens(new)}")
assert by_space.tokens(new) == ["[CLS]", "[UNK]"]  # one unknown "word"
assert "売上" in by_morpheme.tokens(new) and "売" in by_char.tokens(new)
# 為替の影響 ("the effect of exchange rates") never occurred in the two training sentences:
# unknown for every tokenizer. Only more training text fixes that (chABSA has 1,970 sentences).
assert by_char.tokens(new).count("[UNK]") == len("為替の影響")

# %% [markdown]
# ## 5. Padding, masks and packing
#
# Sentences have different lengths; a tensor is a rectangle. Padding fills short rows with
# `[PAD]` (id 0), and the attention mask says which positions are real (1) or filler (0).
# A mean over embeddings must use the mask; an attention layer must give padding zero
# weight. An LSTM reads left to right, so its last state after padding has also read the
# padding. `pack_padded_sequence` gives it the true lengths: it stops each row at its end.

# %%
batch = pad_batch([[2, 5, 7, 9], [2, 8]], pad_id=0)
print(batch)
assert batch["input_ids"].tolist() == [[2, 5, 7, 9], [2, 8, 0, 0]]
assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]

torch.manual_seed(0)
embed, lstm = nn.Embedding(10, 8, padding_idx=0), nn.LSTM(8, 16, batch_first=True)
x = embed(batch["input_ids"])  # (B, T, D)
_, (h_padded, _) = lstm(x)  # read the padding too
packed = pack_padded_sequence(x, batch["lengths"], batch_first=True, enforce_sorted=False)
_, (h_packed, _) = lstm(packed)  # stops at each row's length
_, (h_alone, _) = lstm(embed(torch.tensor([[2, 8]])))  # the short sentence on its own
assert torch.allclose(h_packed[0, 1], h_alone[0, 0], atol=1e-6)
assert not torch.allclose(h_padded[0, 1], h_alone[0, 0], atol=1e-3)
print("packed LSTM state == the short sentence alone; unpacked state differs")

# %% [markdown]
# ## 6. Length-bucketed batches
#
# A random batch is padded to its longest sentence. Sorting by length before cutting batches
# wastes almost nothing, but a fully sorted order is the same every epoch and starts with
# all the short ones. `LengthBucketSampler` shuffles, sorts within pools of 50 batches, then
# shuffles the batches: random enough, and little padding.

# %%
lengths = word.encode(train_texts)["attention_mask"].sum(1).tolist()
rng = np.random.default_rng(0)
order = rng.permutation(len(lengths))
random_batches = [order[i : i + 32].tolist() for i in range(0, len(order), 32)]
bucketed = list(LengthBucketSampler(lengths, batch_size=32, seed=0))


def padding_share(batches: list[list[int]]) -> float:
    """Fraction of the padded tensor's cells that are padding."""
    cells = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths) / cells


random_pad, bucket_pad = padding_share(random_batches), padding_share(bucketed)
print(f"padding: random batches {random_pad:.0%}, length-bucketed {bucket_pad:.0%}")
assert bucket_pad < random_pad / 2
assert sorted(i for b in bucketed for i in b) == list(range(len(lengths)))  # every text once

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.2))
ax1.hist(lengths, bins=30, color="tab:blue")
ax1.set(title="tokens per training sentence (word level)", xlabel="tokens", ylabel="sentences")
ax2.bar(["random", "length-bucketed"], [random_pad, bucket_pad], color=["tab:red", "tab:green"])
ax2.set(title="share of the batch tensors that is padding", ylim=(0, 1))
save(fig, "lengths_and_padding.png")

# %% [markdown]
# ## 7. The embedding lookup
#
# `nn.Embedding(V, D)` holds a (V, D) matrix; looking up id `i` returns row `i`, exactly
# what multiplying a one-hot vector by the matrix would give, without building the one-hot.
# With `padding_idx=0` the `[PAD]` row starts at zero and never receives a gradient.

# %%
V, D = word.vocab_size, 16
table = nn.Embedding(V, D, padding_idx=word.pad_id)
ids = torch.from_numpy(word.encode(test_texts[:4])["input_ids"])  # (B, T)
vectors = table(ids)  # (B, T, D)
one_hot = nn.functional.one_hot(ids, V).float()  # (B, T, V)
assert torch.allclose(vectors, one_hot @ table.weight)
vectors.sum().backward()
assert table.weight.grad is not None and table.weight.grad[word.pad_id].abs().sum() == 0
print(f"ids {tuple(ids.shape)} -> vectors {tuple(vectors.shape)}; {V * D:,} parameters")

# %% [markdown]
# ## 8. Saving the codec with the model
#
# The ids only mean something with the exact vocabulary they came from. A text run saves
# `tokenizer.json` (the `tokenizers` format, readable by any language binding) and
# `textcodec.json` (max length, Japanese pre-splitting) beside `model.safetensors`, and
# `predict`, `export` and `serve` load them back.

# %%
folder = OUT / "codec"
subword.save(folder)
again = TextCodec.load(folder)
assert np.array_equal(
    again.encode(test_texts[:8])["input_ids"], subword.encode(test_texts[:8])["input_ids"]
)
print(sorted(p.name for p in folder.iterdir()), again)
print(f"{math.ceil(sum(p.stat().st_size for p in folder.iterdir()) / 1024)} KiB on disk")
print("lesson 13 done")
