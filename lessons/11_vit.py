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
# # 11 · Attention and vision transformers
#
# A convolution mixes each pixel with a fixed neighbourhood. Self-attention lets every token
# look at every other token, with weights computed from the data itself. A vision
# transformer (ViT) cuts the image into patches, turns each patch into a token and lets a
# stack of attention blocks mix them; Swin keeps attention inside small windows to stay cheap.
#
# **You will learn**
# - patch embedding: a conv with kernel = stride = patch is "flatten each patch, then one
#   shared linear layer" (`torchdojo.nn.PatchEmbed`);
# - scaled dot-product attention by hand, in `torchdojo.nn.MultiHeadSelfAttention` and in
#   `F.scaled_dot_product_attention` (the same numbers), and why the 1/√d scale;
# - attention is permutation-equivariant: without position embeddings a ViT sees a bag of
#   patches;
# - the [CLS] token and the position embedding of ViT-Tiny (`create_model("vit-tiny")`);
# - Swin's windows, shifted windows and the attention mask that keeps wrapped-around tokens
#   apart;
# - parameters and FLOPs of ViT-Tiny and Swin versus ResNet-18;
# - a tiny ViT trained on digits, and one head's attention of the [CLS] token over patches.
#
# Seeds: 000 ch6-7, 002 §5 (classic networks); Dosovitskiy et al. 2020 (ViT,
# https://arxiv.org/abs/2010.11929), Liu et al. 2021 (Swin, https://arxiv.org/abs/2103.14030).

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor

from torchdojo.models import create_model, list_models
from torchdojo.models.summary import count_flops, count_params
from torchdojo.models.swin import (
    PatchMerging,
    SwinBlock,
    shifted_window_mask,
    window_partition,
    window_reverse,
)
from torchdojo.models.vit import VisionTransformer, ViTConfig
from torchdojo.nn import MultiHeadSelfAttention, PatchEmbed, TransformerBlock
from torchdojo.viz import start_lesson

LESSON = start_lesson("11_vit")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


# %% [markdown]
# ## 1. Patch embedding: an image becomes a sequence
#
# Cut a (C, H, W) image into p×p patches: N = (H/p)·(W/p) of them, each with C·p·p numbers.
# Flatten every patch and apply one shared linear layer C·p·p → D: that is a sequence of N
# tokens of width D. A conv with kernel = stride = p computes exactly this (its kernel *is*
# the linear layer's weight, reshaped), and `F.unfold` is the "cut into patches" step.

# %%
B, C, H, W, p, D = 2, 3, 32, 32, 4, 24
embed = PatchEmbed(in_channels=C, dim=D, patch_size=p)
x = torch.randn(B, C, H, W)
tokens = embed(x)  # (B, N, D)
N = (H // p) * (W // p)
print("image", tuple(x.shape), "-> tokens", tuple(tokens.shape))
assert tokens.shape == (B, N, D) and N == 64

# "Flatten each patch": (B, C, H/p, p, W/p, p) -> (B, H/p, W/p, C, p, p) -> (B, N, C*p*p).
patches = x.view(B, C, H // p, p, W // p, p).permute(0, 2, 4, 1, 3, 5).reshape(B, N, C * p * p)
assert torch.equal(F.unfold(x, kernel_size=p, stride=p).transpose(1, 2), patches)
weight = embed.proj.weight.reshape(D, C * p * p)  # the conv kernel as a (D, C*p*p) matrix
by_hand = patches @ weight.T + embed.proj.bias  # "then a shared linear layer"
err = (tokens - by_hand).abs().max().item()
print(f"max |conv - (unfold + matmul)| = {err:.1e}")
assert torch.allclose(tokens, by_hand, atol=1e-5)

# Tokens come in row-major order: token k is patch (k // 8, k % 8).
one_patch = torch.zeros(1, C, H, W)
one_patch[..., 2 * p : 3 * p, 5 * p : 6 * p] = 1.0  # patch row 2, column 5
moved = (embed(one_patch) - embed.proj.bias).abs().sum(-1)[0]  # (N,)
assert moved.nonzero().flatten().tolist() == [2 * 8 + 5]

# %% [markdown]
# ## 2. Scaled dot-product attention, three ways
#
# Each token emits a query q, a key k and a value v (one linear layer makes all three).
# Token i's output is a weighted average of the values, with weights softmax(q_i·k_j / √d)
# over j: every row of the attention matrix sums to 1. With h heads, the width D is split
# into h slices of Dh = D/h and each slice attends on its own; a final linear layer mixes the
# heads. We redo `MultiHeadSelfAttention` by hand and with PyTorch's fused
# `F.scaled_dot_product_attention` (which picks a FlashAttention-style kernel when it can).


# %%
def attention(q: Tensor, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """softmax(q kᵀ / √d) v for (..., N, d) inputs; also returns the (..., N, N) weights."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., N, N)
    weights = scores.softmax(dim=-1)
    return weights @ v, weights


B, N, D, heads = 2, 7, 16, 4
mhsa = MultiHeadSelfAttention(D, heads)
x = torch.randn(B, N, D)
q, k, v = mhsa.qkv(x).view(B, N, 3, heads, D // heads).permute(2, 0, 3, 1, 4)  # (B, h, N, Dh)
out, weights = attention(q, k, v)  # (B, h, N, Dh), (B, h, N, N)


def merge(heads_out: Tensor) -> Tensor:
    """(B, h, N, Dh) -> concatenate the heads -> output projection -> (B, N, D)."""
    return mhsa.proj(heads_out.transpose(1, 2).reshape(B, N, D))


captured: dict[str, Tensor] = {}
hook = mhsa.attn_drop.register_forward_hook(lambda m, i, o: captured.update(attn=o))
y_module = mhsa(x)
hook.remove()
y_hand = merge(out)
y_sdpa = merge(F.scaled_dot_product_attention(q, k, v))
print(
    f"max |hand - module| = {(y_hand - y_module).abs().max():.1e}, "
    f"|sdpa - module| = {(y_sdpa - y_module).abs().max():.1e}"
)
assert torch.allclose(y_hand, y_module, atol=1e-6)
assert torch.allclose(y_sdpa, y_module, atol=1e-6)
assert torch.allclose(captured["attn"], weights, atol=1e-6)  # the hook sees the weights
assert captured["attn"].shape == (B, heads, N, N)
assert torch.allclose(weights.sum(-1), torch.ones(B, heads, N)) and (weights >= 0).all()

# %% [markdown]
# **Why divide by √d?** For q and k with independent unit-variance entries, q·k is a sum of d
# products of variance 1: its variance is d. Unscaled, wide heads give huge logits, the
# softmax saturates to one-hot and its gradients vanish. Dividing by √d brings the variance
# back to 1.

# %%
d = 64
qs, ks = torch.randn(20_000, d), torch.randn(20_000, d)
dots = (qs * ks).sum(-1)
print(f"var(q·k) = {dots.var():.1f} (d = {d}), var(q·k/√d) = {(dots / math.sqrt(d)).var():.2f}")
assert 56 < dots.var() < 72 and 0.88 < (dots / math.sqrt(d)).var() < 1.12
q1, k1 = torch.randn(1, 16, d), torch.randn(1, 16, d)
peak_raw = (q1 @ k1.mT).softmax(-1).amax(-1).mean()  # mean of each row's largest weight
peak_scaled = (q1 @ k1.mT / math.sqrt(d)).softmax(-1).amax(-1).mean()
print(f"largest weight per row: unscaled {peak_raw:.2f}, scaled {peak_scaled:.2f}")
assert peak_raw > 0.7 and peak_scaled < 0.4

# %% [markdown]
# ## 3. Attention does not know where tokens are
#
# Shuffle the tokens and the outputs come out shuffled the same way: attention (and the
# token-wise MLP and LayerNorm of a transformer block) is *permutation-equivariant*. A ViT
# reads its answer from one token, so without position embeddings it would be
# *invariant*: it would classify a bag of patches and could not tell a digit from its patches
# scrambled. The learned position embedding added to each token is what breaks the symmetry.

# %%
perm = torch.randperm(N)
assert torch.allclose(mhsa(x[:, perm]), mhsa(x)[:, perm], atol=1e-6)
block = TransformerBlock(D, heads)
assert torch.allclose(block(x[:, perm]), block(x)[:, perm], atol=1e-5)


def shuffle_patches(img: Tensor, order: Tensor, p: int) -> Tensor:
    """Move the p×p patches of (B, C, H, W) images to a new row-major ``order``."""
    b, c, h, w = img.shape
    grid = img.view(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5)  # (B, h, w, C, p, p)
    grid = grid.reshape(b, -1, c, p, p)[:, order].reshape(b, h // p, w // p, c, p, p)
    return grid.permute(0, 3, 1, 4, 2, 5).reshape(b, c, h, w)


small = VisionTransformer(ViTConfig(image_size=16, patch_size=4, dim=32, depth=2, heads=4))
small.eval()
img = torch.randn(2, 3, 16, 16)
order = torch.randperm(16)
scrambled = shuffle_patches(img, order, 4)
assert torch.equal(small.patch_embed(scrambled), small.patch_embed(img)[:, order])
with torch.no_grad():
    gap_with_pos = (small(img) - small(scrambled)).abs().max().item()
    small.pos_embed.zero_()  # remove the position information
    gap_without_pos = (small(img) - small(scrambled)).abs().max().item()
print(
    f"logit change when patches are scrambled: with positions {gap_with_pos:.3f}, "
    f"without {gap_without_pos:.1e}"
)
assert gap_with_pos > 1e-3 and gap_without_pos < 1e-5

# %% [markdown]
# ## 4. ViT-Tiny: the [CLS] token and the position embedding
#
# `vit-tiny` is D = 192, 12 blocks, 3 heads, 4×4 patches on 32×32 images: 64 patch tokens.
# A learned [CLS] token is put in front (65 tokens) and a learned position embedding
# (65, 192) is added. The [CLS] token enters every image the same; it only learns about the
# image through attention, and the classifier head reads just that token at the end.
#
# Its parameters, counted by hand: per block two LayerNorms (4D), q/k/v (3D² + 3D), the output
# projection (D² + D) and the MLP D → 4D → D (8D² + 5D).

# %%
assert {"vit-tiny", "swin-mini", "resnet18"} <= set(list_models())
vit = create_model("vit-tiny", num_classes=10).eval()
cfg = vit.config
assert (cfg.dim, cfg.depth, cfg.heads, cfg.num_patches) == (192, 12, 3, 64)
assert vit.cls_token.shape == (1, 1, 192) and vit.pos_embed.shape == (1, 65, 192)

D = cfg.dim
per_block = 4 * D + (3 * D * D + 3 * D) + (D * D + D) + (8 * D * D + 5 * D)
params_by_hand = (
    (3 * 4 * 4 * D + D)  # patch embedding (a conv 3 -> D, 4x4)
    + D  # [CLS] token
    + 65 * D  # position embedding
    + cfg.depth * per_block
    + 2 * D  # final LayerNorm
    + (D * 10 + 10)  # head
)
print(f"vit-tiny parameters: {count_params(vit):,} (by hand {params_by_hand:,})")
assert count_params(vit) == params_by_hand == 5_362_762

seen: list[Tensor] = []
hooks = [
    vit.blocks[0].register_forward_pre_hook(lambda m, args: seen.append(args[0])),
    vit.blocks[0].attn.attn_drop.register_forward_hook(lambda m, i, o: seen.append(o)),
    vit.blocks[-1].register_forward_hook(lambda m, i, o: seen.append(o)),
]
two_images = torch.randn(2, 3, 32, 32)
with torch.no_grad():
    logits = vit(two_images)
for h in hooks:
    h.remove()
first_in, first_attn, last_out = seen
assert logits.shape == (2, 10)
assert first_in.shape == (2, 65, 192) and first_attn.shape == (2, 3, 65, 65)
# Before block 1 the [CLS] token is the same for both images; after the blocks it differs.
assert torch.equal(first_in[0, 0], first_in[1, 0])
assert torch.allclose(first_in[0, 0], (vit.cls_token + vit.pos_embed[:, 0])[0, 0])
assert not torch.allclose(last_out[0, 0], last_out[1, 0], atol=1e-3)

# %% [markdown]
# ## 5. Swin: attention inside (shifted) windows
#
# Global attention costs N² per layer. Swin splits the token grid into ws×ws windows and
# attends only inside each: cost N·ws². To let information cross window borders, every other
# block first rolls the grid by ws/2 (a cyclic shift). The roll wraps tokens from the bottom
# and right edges into windows with tokens from the other side of the image; an additive
# mask of −100 on those pairs sends their softmax weight to ≈ 0.
#
# `window_partition` and `window_reverse` turn a (B, R, R, D) grid into (B·windows, ws², D)
# and back.

# %%
R, ws, shift = 8, 4, 2
grid = torch.randn(2, R, R, 6)  # (B, R, R, D)
windows = window_partition(grid, ws)  # (B * 4, 16, 6)
assert windows.shape == (2 * (R // ws) ** 2, ws * ws, 6)
assert torch.equal(windows[1], grid[0, :4, 4:].reshape(16, 6))  # window 1 = top right
assert torch.equal(window_reverse(windows, ws, R, R), grid)

assert (shifted_window_mask(R, ws, 0) == 0).all()  # no shift: nothing to mask
mask = shifted_window_mask(R, ws, shift)  # (windows, ws², ws²)
# Where does each token of the rolled grid come from in the original image?
rows, cols = torch.meshgrid(torch.arange(R), torch.arange(R), indexing="ij")
origin = torch.stack([rows, cols], -1).roll((-shift, -shift), dims=(0, 1))  # (R, R, 2)
origin = window_partition(origin[None].float(), ws)  # (windows, ws², 2)
span = (origin[:, :, None] - origin[:, None, :]).abs().amax(-1)  # (windows, ws², ws²)
# Pairs that are really near each other (closer than a window) attend; wrapped pairs are masked.
assert torch.equal(mask == -100, span >= ws)
print(f"masked pairs per window: {(mask != 0).sum((1, 2)).tolist()} of {ws**4}")
assert (mask[0] == 0).all()  # the top-left window has no wrapped tokens
assert torch.exp(torch.tensor(-100.0)) < 1e-40

# %% [markdown]
# The proof in a working block: which input tokens can a `SwinBlock`'s output token depend
# on? Take the gradient of one output token with respect to all inputs. Unshifted, output
# (2, 2) sees exactly its window (rows and columns 0-3). Shifted, it sees rows and columns
# 2-5: a window that straddles the old borders. Output (0, 0) in the shifted block lands in
# a wrapped window, but thanks to the mask it sees only its true 2×2 corner, not the far
# side of the image; without the mask it would.


# %%
def receptive_field(block: SwinBlock, r: int, c: int) -> Tensor:
    """(R, R) boolean map of the input tokens that output token (r, c) depends on."""
    x = torch.randn(1, R * R, 12, requires_grad=True)
    (grad,) = torch.autograd.grad(block(x)[0, r * R + c].sum(), x)
    return grad[0].abs().sum(-1).view(R, R) > 1e-12


def square(r0: int, r1: int, c0: int, c1: int) -> Tensor:
    """(R, R) boolean map that is True on rows r0:r1 and columns c0:c1."""
    out = torch.zeros(R, R, dtype=torch.bool)
    out[r0:r1, c0:c1] = True
    return out


torch.manual_seed(0)
plain = SwinBlock(12, 3, resolution=R, window_size=ws, shift=0)
shifted = SwinBlock(12, 3, resolution=R, window_size=ws, shift=shift)
assert torch.equal(receptive_field(plain, 2, 2), square(0, 4, 0, 4))
assert torch.equal(receptive_field(shifted, 2, 2), square(2, 6, 2, 6))
assert torch.equal(receptive_field(shifted, 0, 0), square(0, 2, 0, 2))
shifted.attn_mask.zero_()  # what if we forgot the mask?
leaky = receptive_field(shifted, 0, 0)
assert leaky[7, 7] and leaky.sum() == ws * ws  # it reaches the opposite corner of the image


# Colour each token by the group it attends within: windows, and pieces of wrapped windows.
def groups(shift: int) -> Tensor:
    """(R, R) integer map: tokens with the same value attend to each other."""
    m = shifted_window_mask(R, ws, shift)  # (windows, ws², ws²)
    first_friend = (m == 0).int().argmax(-1)  # (windows, ws²): a group representative
    labels = first_friend + ws * ws * torch.arange(m.shape[0])[:, None]
    rolled = window_reverse(labels[..., None].float(), ws, R, R)[0, ..., 0]  # rolled grid
    return rolled.roll((shift, shift), dims=(0, 1))  # back to image positions


fig, axes = plt.subplots(1, 2, figsize=(7, 3.5))
for ax, s, title in zip(axes, [0, shift], ["windows", f"shifted by {shift}"], strict=True):
    g = groups(s)
    ax.imshow(torch.unique(g, return_inverse=True)[1], cmap="tab20")
    ax.set_title(f"{title}: {len(g.unique())} groups")
    ax.set_xticks([])
    ax.set_yticks([])
save(fig, "swin_windows.png")
assert len(groups(0).unique()) == 4 and len(groups(shift).unique()) == 9

# `swin-mini` stacks such blocks in three stages; `PatchMerging` between them concatenates
# each 2x2 group of tokens (4D) and projects to 2D: a pyramid of 16x16 -> 8x8 -> 4x4 tokens.
swin = create_model("swin-mini", num_classes=10).eval()
merged: list[tuple[int, ...]] = []
hooks = [
    m.register_forward_hook(lambda m, i, o: merged.append(tuple(o.shape)))
    for m in swin.modules()
    if isinstance(m, PatchMerging)
]
with torch.no_grad():
    assert swin(torch.randn(1, 3, 32, 32)).shape == (1, 10)
for h in hooks:
    h.remove()
assert merged == [(1, 64, 96), (1, 16, 192)]

# %% [markdown]
# ## 6. Parameters and FLOPs against a CNN
#
# `count_flops` runs the model once under `torch.utils.flop_counter` (a multiply-add is 2
# FLOPs; only matmuls and convolutions count). For a ViT on N tokens of width D, each block
# costs 2·N·12D² for its linear layers (q/k/v 3D², projection D², MLP 8D²) plus 4·N²·D for
# q·kᵀ and weights·v. The N² term is why halving the patch side (4× the tokens) more than
# quadruples the cost; Swin's windows keep it at N·ws² instead.


# %%
def vit_flops(n_patches: int, d: int, depth: int, patch: int, classes: int = 10) -> int:
    """Forward FLOPs of a ViT by hand (n_patches + 1 tokens in the blocks)."""
    n = n_patches + 1
    return (
        2 * n_patches * (3 * patch * patch) * d
        + depth * (24 * n * d * d + 4 * n * n * d)
        + (2 * d * classes)
    )


size = (1, 3, 32, 32)
resnet = create_model("resnet18", num_classes=10).eval()
table = {
    name: (count_params(m), count_flops(m, size))
    for name, m in [("vit-tiny", vit), ("swin-mini", swin), ("resnet18", resnet)]
}
for name, (n_params, flops) in table.items():
    print(f"{name:10s} {n_params / 1e6:5.2f} M parameters  {flops / 1e9:5.2f} GFLOPs at 32x32")
assert table["vit-tiny"][1] == vit_flops(64, 192, 12, 4)
assert table["vit-tiny"][0] < table["resnet18"][0] / 2  # half the parameters ...
assert table["vit-tiny"][1] < table["resnet18"][1]  # ... and fewer FLOPs at 32x32
assert table["swin-mini"][0] < table["vit-tiny"][0] and table["swin-mini"][1] < 0.25e9

fine = vit_flops(256, 192, 12, 2)  # 2x2 patches: 256 tokens
coarse = table["vit-tiny"][1]
print(f"2x2 instead of 4x4 patches: x{fine / coarse:.1f} FLOPs for x4 tokens")
assert fine > 4.5 * coarse
if not SMOKE:  # building the model with 2x2 patches confirms the formula
    assert count_flops(create_model("vit-tiny", patch_size=2), size) == fine

# %% [markdown]
# ## 7. Training a tiny ViT on digits
#
# scikit-learn's 8×8 digits, upsampled to 16×16 and standardized, cut into 4×4 patches
# (2×2 original pixels each): 16 tokens plus [CLS]. A two-block ViT of width 64 with 4
# heads, AdamW with a short warm-up and a cosine decay, as transformers like it.
# Transformers have no built-in notion of locality, so they are hungry for data; on 1,400
# digits they still learn well.

# %%
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16  # (N, 1, 8, 8)
images = F.interpolate(images, size=16, mode="bilinear", align_corners=False)  # (N, 1, 16, 16)
images = (images - images.mean()) / images.std()
labels = torch.tensor(digits.target)
perm = torch.randperm(len(images))
tr, te = perm[:1400], perm[1400:]

torch.manual_seed(0)
tiny = VisionTransformer(
    ViTConfig(image_size=16, patch_size=4, dim=64, depth=2, heads=4), in_channels=1
)
epochs, batch = (3 if SMOKE else 30), 32
steps = epochs * math.ceil(len(tr) / batch)
warmup = 20
optimizer = torch.optim.AdamW(tiny.parameters(), lr=3e-3, weight_decay=0.05)
schedule = torch.optim.lr_scheduler.LambdaLR(
    optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * s / steps))
)
losses = []
for _ in range(epochs):
    order = tr[torch.randperm(len(tr))]
    for i in range(0, len(order), batch):
        idx = order[i : i + batch]
        loss = F.cross_entropy(tiny(images[idx]), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
tiny.eval()
with torch.no_grad():
    acc = (tiny(images[te]).argmax(1) == labels[te]).float().mean().item()
start, end = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
print(
    f"{count_params(tiny):,} parameters, {len(losses)} steps: loss {start:.2f} -> {end:.2f}, "
    f"test accuracy {acc:.3f}"
)
assert start > 2.0 and end < 0.5 * start  # from chance (log 10 = 2.3) to well below
if not SMOKE:
    assert acc > 0.95

fig, ax = plt.subplots(figsize=(5, 3))
ax.plot(losses)
ax.set_xlabel("step")
ax.set_ylabel("training loss")
save(fig, "tiny_vit_loss.png")

# %% [markdown]
# ## 8. Where does the [CLS] token look?
#
# A forward hook on the last block's `attn.attn_drop` captures its attention weights
# (B, heads, 17, 17). Row 0 is the [CLS] token's attention; dropping its weight on itself and
# reshaping the other 16 to the 4×4 patch grid gives one map per head.

# %%
captured.clear()
hook = tiny.blocks[-1].attn.attn_drop.register_forward_hook(lambda m, i, o: captured.update(attn=o))
sample = images[te[:1]]
with torch.no_grad():
    predicted = tiny(sample).argmax(1).item()
hook.remove()
attn = captured["attn"][0]  # (heads, 17, 17)
assert attn.shape == (4, 17, 17) and torch.allclose(attn.sum(-1), torch.ones(4, 17))
cls_maps = attn[:, 0, 1:].reshape(4, 4, 4)  # (heads, 4, 4): [CLS] -> each patch
assert (cls_maps.sum((1, 2)) <= 1 + 1e-6).all()  # the rest is on the [CLS] token itself
assert (cls_maps.amax((1, 2)) > 1 / 16).all()  # not uniform: each head has favourites

fig, axes = plt.subplots(1, 5, figsize=(12, 2.8))
fig.suptitle("[CLS] attention over the 4×4 patches, last block")
axes[0].imshow(sample[0, 0], cmap="gray")
axes[0].set_title(f"label {labels[te[0]].item()}, predicted {predicted}")
for h in range(4):
    axes[h + 1].imshow(sample[0, 0], cmap="gray")
    axes[h + 1].imshow(cls_maps[h], cmap="inferno", alpha=0.6, extent=(-0.5, 15.5, 15.5, -0.5))
    axes[h + 1].set_title(f"head {h}")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
save(fig, "cls_attention.png")
print("lesson 11 done")
