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
# # 12 · Classic CNNs, from LeNet to MobileNetV2
#
# Twenty years of image classifiers, one idea each. We build every network from torchdojo's
# own zoo (`torchdojo.models`, written from scratch for 32×32 images) and prove each idea with
# a measurement instead of a slogan. None of the models is trained here except the smallest;
# the trained accuracies come from a recipe.
#
# **You will learn**
# - LeNet-5 (1998): conv and pooling output sizes layer by layer, parameters and FLOPs by hand;
# - AlexNet (2012) and VGG (2014): two stacked 3×3 convs see a 5×5 window with 18C² instead
#   of 25C² weights, shown with a gradient probe;
# - NiN (2013): a 1×1 conv is a Linear layer applied at every pixel; global average pooling
#   replaces the big fully connected head;
# - GoogLeNet (2014): the Inception block concatenates its branches on channels;
# - ResNet (2015): at init, the shortcut keeps the gradient of a deep stack in check; CIFAR
#   vs ImageNet stem;
# - DenseNet (2016): every layer adds `growth_rate` channels;
# - MobileNetV2 (2018): a depthwise-separable conv costs 1/k² + 1/C_out of a full conv;
# - parameters, FLOPs and CPU speed of the whole zoo at 32×32, and a LeNet-5 that learns.
#
# Recipes: `cifar10-zoo` (trained accuracies under equal CPU time budgets).
# Seeds: 000 ch6 (classic networks), 002 §5 (classic CNNs and model evaluation), 004 ch8,
# 001 ch9-11.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import Tensor, nn

from torchdojo.models import create_model, list_models
from torchdojo.models.densenet import dense_block, transition
from torchdojo.models.summary import count_flops, count_params
from torchdojo.nn import BasicBlock, ConvBnAct, InvertedResidual, Residual
from torchdojo.viz import start_lesson

LESSON = start_lesson("12_cnn_zoo")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


def out_size(h: int, k: int, p: int = 0, s: int = 1) -> int:
    """Output height of a convolution or pooling (lesson 09): ⌊(H + 2p − k) / s⌋ + 1."""
    return (h + 2 * p - k) // s + 1


# The zoo in chapter order, by registry name; every one is built with `create_model(name)`.
ZOO = [
    "lenet5",
    "alexnet",
    "vgg11",
    "vgg16",
    "nin",
    "googlenet",
    "resnet18",
    "resnet34",
    "densenet",
    "mobilenet-v2",
]
assert set(ZOO) <= set(list_models())
print("registered models:", ", ".join(list_models()))

# %% [markdown]
# ## 1. LeNet-5 (1998): convolution and pooling shrink the image
#
# Two stages of 5×5 conv (no padding) + 2×2 average pooling, then three linear layers. On the
# paper's 32×32 field (`padding=0`; the default `padding=2` turns a 28×28 MNIST digit into
# it) the size goes 32 → 28 → 14 → 10 → 5, so the head sees 16·5·5 = 400 numbers. We check
# every layer against the output-size formula of lesson 09.

# %%
lenet = create_model("lenet5", padding=0)  # 1 input channel, sigmoid as in the paper
x = torch.zeros(1, 1, 32, 32)  # (B, C, H, W)
expected = {  # layer index in `features` -> (C, H, W) after it
    0: (6, out_size(32, 5), out_size(32, 5)),  # conv 5x5: 28
    2: (6, out_size(28, 2, s=2), out_size(28, 2, s=2)),  # avg-pool 2x2: 14
    3: (16, out_size(14, 5), out_size(14, 5)),  # conv 5x5: 10
    5: (16, out_size(10, 2, s=2), out_size(10, 2, s=2)),  # avg-pool 2x2: 5
}
for i, layer in enumerate(lenet.features):
    x = layer(x)
    print(f"{i}: {type(layer).__name__:10s} -> {tuple(x.shape[1:])}")
    if i in expected:
        assert x.shape[1:] == expected[i], (i, x.shape)
assert [shape for _, shape in sorted(expected.items())] == [
    (6, 28, 28),
    (6, 14, 14),
    (16, 10, 10),
    (16, 5, 5),
]
assert lenet.head(x).shape == (1, 10) and x.flatten(1).shape == (1, 400)

# Parameters: a conv has out·in·k·k + out, a linear layer out·in + out; pooling has none.
by_hand = (6 * 1 * 25 + 6) + (16 * 6 * 25 + 16) + (120 * 400 + 120) + (84 * 120 + 84) + 850
# FLOPs: 2 per multiply-add, for every output element (convs, linears; pooling is not counted).
flops_by_hand = 2 * (28 * 28 * 6 * 1 * 25 + 10 * 10 * 16 * 6 * 25 + 400 * 120 + 120 * 84 + 84 * 10)
print(f"LeNet-5: {count_params(lenet):,} parameters, {count_flops(lenet, (1, 1, 32, 32)):,} FLOPs")
assert count_params(lenet) == by_hand == 61_706
assert count_flops(lenet, (1, 1, 32, 32)) == flops_by_hand == 833_040

# %% [markdown]
# ## 2. AlexNet (2012) and VGG (2014): deeper, and made of 3×3 convs
#
# AlexNet showed that a much deeper and wider LeNet, with ReLU, dropout and GPUs, wins
# ImageNet. Most of its parameters sit in the fully connected head, not in the convs (our
# 32×32 variant keeps two 1024-wide hidden layers). VGG then made the network a repetition
# of one block: 3×3 convs and 2×2 max-pools.
#
# Why 3×3? Two stacked 3×3 convs see a 5×5 window of the input, like one 5×5 conv, but with
# 2·9·C² weights instead of 25·C² (and an extra ReLU in between). Three of them see 7×7 with
# 27·C² instead of 49·C².

# %%
alexnet = create_model("alexnet")
head_share = count_params(alexnet.head) / count_params(alexnet)
print(f"AlexNet: {count_params(alexnet):,} parameters, {head_share:.0%} of them in the head")
assert count_params(alexnet) == 7_506_762 and head_share > 0.6

vgg = create_model("vgg16")
pair = vgg.features[14:16]  # stage 5: two ConvBnAct(512 -> 512, 3x3)
c = 512
assert all(isinstance(m, ConvBnAct) for m in pair)
two_3x3 = sum(block[0].weight.numel() for block in pair)  # block[0] is the conv (no bias)
one_5x5 = nn.Conv2d(c, c, 5, bias=False).weight.numel()
print(f"two 3x3 convs: {two_3x3:,} weights | one 5x5 conv: {one_5x5:,} ({two_3x3 / one_5x5:.2f}x)")
assert two_3x3 == 2 * 9 * c**2 and one_5x5 == 25 * c**2


# %% [markdown]
# **The receptive field, measured.** Which input pixels can change one output pixel? Exactly
# those with a nonzero gradient. Take VGG's first two conv-BN-ReLU layers (eval mode, so
# batch norm does not mix pixels through the batch statistics), backpropagate from one output
# pixel, and look where the input gradient is not zero: a 5×5 square centred on it.


# %%
def receptive_field(net: nn.Module, in_channels: int, size: int = 15) -> Tensor:
    """Boolean (size, size) mask of input pixels that reach the centre output pixel."""
    x = torch.randn(1, in_channels, size, size, requires_grad=True)
    y = net(x)  # (1, C, size, size): "same" padding keeps the size
    y[0, :, size // 2, size // 2].sum().backward()
    return x.grad[0].abs().sum(0) > 0  # (size, size)


def square(side: int, size: int = 15) -> Tensor:
    """Boolean mask of a centred side x side square."""
    mask = torch.zeros(size, size, dtype=torch.bool)
    lo = size // 2 - side // 2
    mask[lo : lo + side, lo : lo + side] = True
    return mask


vgg_pair = vgg.features[0:2].eval()  # ConvBnAct(3 -> 64), ConvBnAct(64 -> 64)
three_3x3 = nn.Sequential(*(nn.Conv2d(3, 3, 3, padding=1) for _ in range(3)))
masks = {
    "one 3x3 conv": receptive_field(vgg.features[0:1].eval(), 3),
    "two 3x3 (VGG)": receptive_field(vgg_pair, 3),
    "one 5x5 conv": receptive_field(nn.Conv2d(3, 8, 5, padding=2), 3),
    "three 3x3": receptive_field(three_3x3, 3),
}
for name, mask in masks.items():
    rows, cols = mask.nonzero().T
    height, width = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
    print(f"{name:14s}: {int(mask.sum()):2d} input pixels in a {height}x{width} box")
assert torch.equal(masks["one 3x3 conv"], square(3))
assert torch.equal(masks["two 3x3 (VGG)"], square(5))
assert torch.equal(masks["two 3x3 (VGG)"], masks["one 5x5 conv"])
assert torch.equal(masks["three 3x3"], square(7))

fig, axes = plt.subplots(1, 4, figsize=(11, 3))
for ax, (name, mask) in zip(axes, masks.items(), strict=True):
    ax.imshow(mask, cmap="Greens")
    ax.set_title(name)
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("input pixels with a nonzero gradient for the centre output pixel")
save(fig, "receptive_fields.png")

# %% [markdown]
# ## 3. NiN (2013): a 1×1 conv is a per-pixel Linear layer
#
# Network in Network follows each conv with two 1×1 convs. A 1×1 conv mixes channels and
# never looks at neighbours: it is the same `nn.Linear(C_in, C_out)` applied to the channel
# vector of every pixel, a small MLP sliding over the image. NiN also drops the fully
# connected head: its last conv outputs one channel per class and global average pooling
# turns each channel into a logit. That is why it has ~8× fewer parameters than AlexNet.

# %%
nin = create_model("nin")
one_by_one = nin.features[0][2]  # the first 1x1 conv of the first NiN block
assert isinstance(one_by_one, nn.Conv2d) and one_by_one.kernel_size == (1, 1)
linear = nn.Linear(96, 96)
with torch.no_grad():
    linear.weight.copy_(one_by_one.weight[:, :, 0, 0])  # (out, in, 1, 1) -> (out, in)
    linear.bias.copy_(one_by_one.bias)
    feat = torch.randn(2, 96, 8, 8)  # (B, C, H, W)
    by_conv = one_by_one(feat)
    by_linear = linear(feat.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)  # Linear on (B, H, W, C)
print("max |1x1 conv - per-pixel Linear| =", f"{(by_conv - by_linear).abs().max():.1e}")
assert torch.allclose(by_conv, by_linear, atol=1e-5)
assert not any(isinstance(m, nn.Linear) for m in nin.modules()), "no fully connected layer"
print(f"NiN: {count_params(nin):,} parameters vs AlexNet's {count_params(alexnet):,}")
assert count_params(nin) < count_params(alexnet) / 7

# %% [markdown]
# ## 4. GoogLeNet (2014): Inception concatenates branches on channels
#
# Which kernel size is right? GoogLeNet does not choose: an Inception block runs a 1×1, a
# 3×3, a 5×5 conv and a 3×3 max-pool side by side (all "same" padding) and concatenates
# the four results on the channel axis. The 1×1 convs in front of the 3×3 and 5×5 ones
# shrink the channels first (NiN's idea), which keeps the big kernels cheap.

# %%
googlenet = create_model("googlenet").eval()
block = googlenet.inception3[0]  # Inception 3a: 192 -> 64 + 128 + 32 + 32
x = torch.randn(1, 192, 16, 16)
with torch.no_grad():
    branches = [block.branch1(x), block.branch3(x), block.branch5(x), block.branch_pool(x)]
    y = block(x)
widths = [b.shape[1] for b in branches]
print("Inception 3a branch widths", widths, "-> output", tuple(y.shape[1:]))
assert widths == [64, 128, 32, 32] and y.shape == (1, sum(widths), 16, 16) == (1, 256, 16, 16)
assert torch.equal(y, torch.cat(branches, dim=1)) and block.out_channels == 256

# The 5x5 branch with its 1x1 reduction (192 -> 16 -> 32) vs a direct 5x5 conv (192 -> 32).
reduced = count_params(block.branch5[0][0]) + count_params(block.branch5[1][0])
direct = nn.Conv2d(192, 32, 5, bias=False).weight.numel()
print(f"5x5 branch: {reduced:,} weights with the 1x1 reduction, {direct:,} without")
assert reduced == 192 * 16 + 16 * 25 * 32 and direct / reduced > 9

# %% [markdown]
# ## 5. ResNet (2015): shortcuts let the gradient through a deep stack
#
# Deeper plain nets trained *worse*, even on their training set. ResNet's block computes
# `relu(x + f(x))`: if `f` has nothing useful to add, the block can stay close to the
# identity, and the backward pass always has the shortcut's direct path.
#
# A measurement at init: 16 `BasicBlock`s (32 conv layers), and a plain stack built from
# the *same* conv and BN modules with the shortcut left out. We backpropagate a random
# loss and compare the gradient norm of each block's first conv weight. The textbook story
# is vanishing gradients; with batch norm in every layer the plain stack's gradient instead
# *explodes* towards the input (Yang et al., 2019, "A Mean Field Theory of Batch
# Normalization"). Either way, in the plain stack the early layers' gradient is set by the
# depth, not the data; with shortcuts it stays within a small factor of the last layer's.

# %%
torch.manual_seed(0)
depth = 16
blocks = [BasicBlock(16, 16) for _ in range(depth)]  # train mode: BN uses batch statistics
plain = nn.Sequential(
    *(nn.Sequential(b.conv1, b.bn1, nn.ReLU(), b.conv2, b.bn2, nn.ReLU()) for b in blocks)
)
residual = nn.Sequential(*blocks)
x = torch.randn(16, 16, 16, 16)  # (B, C, H, W)
direction = torch.randn(16, 16, 16, 16)  # a fixed random loss: <net(x), direction>
grad_norms = {}
for name, net in [("plain", plain), ("residual", residual)]:
    net.zero_grad()
    (net(x) * direction).mean().backward()
    grad_norms[name] = np.array([b.conv1.weight.grad.norm().item() for b in blocks])
ratio = {name: g[0] / g[-1] for name, g in grad_norms.items()}
print("gradient norm, first block / last block:", {k: f"{v:.1f}" for k, v in ratio.items()})
assert ratio["plain"] > 10 * ratio["residual"]
assert ratio["residual"] < 30, "with shortcuts the early layers get a comparable gradient"

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, g in grad_norms.items():
    ax.semilogy(range(1, depth + 1), g, "o-", label=name)
ax.set(xlabel="block (1 = next to the input)", ylabel="‖∂loss/∂conv1.weight‖")
ax.set_title(f"{depth} blocks at init: gradient per block")
ax.legend()
save(fig, "resnet_gradients.png")

# %% [markdown]
# **Stems.** ImageNet ResNets open with a 7×7 stride-2 conv and a stride-2 max-pool: a
# 224×224 image is 56×56 before the first block and 7×7 at the end. On 32×32 CIFAR images
# that stem leaves 8×8 at once and 1×1 at the end, so `stem="cifar"` uses one 3×3 conv and
# no pooling instead.

# %%
sizes = {}  # stem -> (side after the stem, side after layer4) for a 32x32 input
with torch.no_grad():
    for stem in ("cifar", "imagenet"):
        net = create_model("resnet18", stem=stem).eval()
        h = net.stem(torch.zeros(1, 3, 32, 32))
        side = h.shape[-1]
        for stage in (net.layer1, net.layer2, net.layer3, net.layer4):
            h = stage(h)
        sizes[stem] = (side, h.shape[-1])
    side_224 = net.stem(torch.zeros(1, 3, 224, 224)).shape[-1]  # the ImageNet stem on 224x224
print("side after stem / after layer4 at 32x32:", sizes, "| ImageNet stem at 224:", side_224)
assert sizes == {"cifar": (32, 4), "imagenet": (8, 1)}
assert side_224 == out_size(out_size(224, 7, p=3, s=2), 3, p=1, s=2) == 56

# %% [markdown]
# ## 6. DenseNet (2016): concatenate instead of add
#
# A dense layer does not add its output to its input, it appends it: each layer sees every
# earlier layer's features and contributes `growth_rate` new channels. After L layers a
# block holds C + L·growth_rate channels; a transition (1×1 conv + 2×2 average pool) halves
# the channels and the resolution between blocks.

# %%
growth = 32
dense = dense_block(64, num_layers=4, growth_rate=growth).eval()
x = torch.randn(1, 64, 8, 8)
channels = [x.shape[1]]
with torch.no_grad():
    h = x
    for layer in dense:
        h = layer(h)
        channels.append(h.shape[1])
    t = transition(h.shape[1], h.shape[1] // 2)(h)
print("channels through the block:", channels, "| after the transition:", tuple(t.shape[1:]))
assert channels == [64 + i * growth for i in range(5)]
assert torch.equal(h[:, :64], x), "the block's input is kept verbatim in its output"
assert t.shape == (1, 96, 4, 4)

densenet = create_model("densenet")
with torch.no_grad():
    final = densenet.features(torch.zeros(1, 3, 32, 32))
# 64 -> +128 = 192 -> /2 = 96 -> 224 -> 112 -> 240 -> 120 -> 248
assert final.shape == (1, 248, 4, 4)

# %% [markdown]
# ## 7. MobileNetV2 (2018): depthwise-separable convs
#
# A full k×k conv from C_in to C_out channels costs H·W·C_in·C_out·k² multiply-adds. Split it
# in two: a *depthwise* k×k conv (`groups=C_in`, each channel filtered on its own,
# H·W·C_in·k²) then a *pointwise* 1×1 conv that mixes channels (H·W·C_in·C_out). The ratio
# is 1/C_out + 1/k²: about 1/8 for 3×3. MobileNetV2 wraps this in an *inverted residual*:
# 1×1 expand (×6), 3×3 depthwise, 1×1 linear projection back to a narrow width, with a
# shortcut when the shape is kept.

# %%
c_in, c_out, k = 64, 128, 3
full = nn.Conv2d(c_in, c_out, k, padding=1, bias=False)
separable = nn.Sequential(
    nn.Conv2d(c_in, c_in, k, padding=1, groups=c_in, bias=False),  # depthwise
    nn.Conv2d(c_in, c_out, 1, bias=False),  # pointwise
)
flops_full = count_flops(full, (1, c_in, 16, 16))
flops_sep = count_flops(separable, (1, c_in, 16, 16))
theory = 1 / k**2 + 1 / c_out
print(f"separable / full FLOPs = {flops_sep / flops_full:.4f} (1/k² + 1/C_out = {theory:.4f})")
assert abs(flops_sep / flops_full - theory) < 1e-3 * theory
assert flops_full == 2 * 16 * 16 * c_in * c_out * k * k

mobilenet = create_model("mobilenet-v2")
inverted = [m for m in mobilenet.features if isinstance(m, (InvertedResidual, Residual))]
with_shortcut = [m for m in inverted if isinstance(m, Residual)]
depthwise = [m for m in mobilenet.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
print(f"MobileNetV2: {len(inverted)} inverted residual blocks, {len(with_shortcut)} with shortcut")
assert len(inverted) == 17 and len(with_shortcut) == 10
assert len(depthwise) == 17 and all(m.groups == m.in_channels == m.out_channels for m in depthwise)

# %% [markdown]
# ## 8. The zoo side by side
#
# Parameters and FLOPs at one 32×32 RGB image (CIFAR-10, 10 classes). We build the models on
# the `meta` device (structure only, no memory, lesson 09), which is enough for both counts:
# `count_flops` runs the model under `torch.utils.flop_counter.FlopCounterMode`. Parameters
# and FLOPs do not rank models the same way: linear layers own parameters, convolutions at
# high resolution own FLOPs. In full mode we also time a forward pass on the CPU: FLOPs do not
# predict speed either. Depthwise convs do few FLOPs per byte they read, so on a CPU
# MobileNetV2 usually runs no faster than nets with several times its FLOPs.

# %%
KWARGS = {"lenet5": {"in_channels": 3, "padding": 0, "activation": "relu"}}  # as cifar10-zoo
rows = []
for name in ZOO:
    with torch.device("meta"):
        model = create_model(name, **KWARGS.get(name, {}))
    rows.append(
        {"model": name, "params": count_params(model), "flops": count_flops(model, (1, 3, 32, 32))}
    )


def samples_per_s(name: str, batch: int = 32, repeats: int = 3) -> float:
    """Forward-pass throughput of a freshly built model on the CPU (eval, inference mode).

    The fastest of ``repeats`` timed passes counts: other processes only ever slow one down.
    """
    model = create_model(name, **KWARGS.get(name, {})).eval()
    x = torch.randn(batch, 3, 32, 32)
    best = float("inf")
    with torch.inference_mode():
        model(x)  # warm-up
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            best = min(best, time.perf_counter() - start)
    return batch / best


if not SMOKE:
    for row in rows:
        row["samples_per_s"] = samples_per_s(row["model"])

print(f"{'model':14s}{'params':>12s}{'GFLOPs':>9s}{'samples/s':>11s}")
for r in rows:
    speed = f"{r['samples_per_s']:11.0f}" if "samples_per_s" in r else f"{'-':>11s}"
    print(f"{r['model']:14s}{r['params']:12,d}{r['flops'] / 1e9:9.3f}{speed}")

table = {r["model"]: r for r in rows}
assert table["lenet5"]["params"] == 62_006 and table["resnet18"]["params"] == 11_173_962
modern = [r for r in rows if r["model"] != "lenet5"]
assert min(modern, key=lambda r: r["flops"])["model"] == "mobilenet-v2"
assert max(rows, key=lambda r: r["params"])["model"] == "resnet34"
# DenseNet has 10x fewer parameters than AlexNet but needs more FLOPs.
assert table["densenet"]["params"] * 9 < table["alexnet"]["params"]
assert table["densenet"]["flops"] > table["alexnet"]["flops"]
if not SMOKE:
    # 1800x fewer FLOPs; the margin is wide because the machine may be busy with other work.
    assert table["lenet5"]["samples_per_s"] > 5 * table["resnet34"]["samples_per_s"]

panels = [("params", "parameters"), ("flops", "FLOPs / image (32x32)")]
if not SMOKE:
    panels.append(("samples_per_s", "CPU forward samples / s"))
fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
for ax, (key, title) in zip(axes[0], panels, strict=True):
    ax.bar([r["model"] for r in rows], [r[key] for r in rows], color="tab:blue")
    ax.set(title=title, yscale="log")
    ax.tick_params(axis="x", rotation=60)
save(fig, "zoo_cost.png")

# %% [markdown]
# ## 9. Training one: LeNet-5 on digits
#
# Training the big ones takes minutes per model even on CIFAR-10 subsets; that is the
# `cifar10-zoo` recipe's job. `torchdojo run cifar10-zoo` trains LeNet-5, VGG-11,
# ResNet-18, MobileNetV2 and ViT-Tiny under equal CPU time budgets and writes the table
# above with a test-accuracy column (`--set models=...` for a subset).
#
# Here we train LeNet-5 (ReLU version) on scikit-learn's 8×8 digits, upsampled to 28×28 and
# padded to LeNet's 32×32 field, for a few dozen steps: the loss must fall.

# %%
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16  # (N, 1, 8, 8)
images = F.pad(F.interpolate(images, size=28, mode="bilinear"), (2, 2, 2, 2))  # (N, 1, 32, 32)
labels = torch.tensor(digits.target)
torch.manual_seed(0)  # this cell gives the same result whatever ran before it
perm = torch.randperm(len(images))
tr, te = perm[:1400], perm[1400:]
assert images.shape[1:] == (1, 32, 32)

lenet = create_model("lenet5", padding=0, activation="relu")
optimizer = torch.optim.Adam(lenet.parameters(), lr=2e-3)
steps = 60 if SMOKE else 400
losses = []
for _ in range(steps):
    idx = tr[torch.randint(len(tr), (64,))]
    loss = F.cross_entropy(lenet(images[idx]), labels[idx])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
with torch.no_grad():
    acc = (lenet(images[te]).argmax(1) == labels[te]).float().mean().item()
first, last = np.mean(losses[:5]), np.mean(losses[-10:])
print(f"LeNet-5 on digits: loss {first:.2f} -> {last:.2f} in {steps} steps, test acc {acc:.3f}")
assert last < 0.5 * first, "the loss falls"
assert acc > (0.5 if SMOKE else 0.95)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(losses)
ax.set(xlabel="step", ylabel="cross-entropy", title="LeNet-5 on 32x32 digits")
save(fig, "lenet_digits_loss.png")
print("lesson 12 done")
