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
# # 20 · Semantic segmentation: Dice, IoU, upsampling, pyramid pooling, touching nuclei
#
# A classifier gives one label per image; a segmentation model gives one per *pixel*: logits
# `(B, K, H, W)` at the input's size. This lesson measures such a prediction, builds the two
# ways a network gets back to full resolution, looks inside PSPNet's pyramid pooling module,
# and shows why nuclei datasets label a third class, the *boundary*, besides background and
# nucleus. Every claim is checked.
#
# **You will learn**
# - Dice and IoU (Jaccard) by hand, and the same numbers from torchmetrics;
# - transposed convolution vs bilinear upsampling: shapes and what each learns;
# - the pyramid pooling module (PSPNet, seed 003 ch3) and ASPP (DeepLabV3), shape by shape;
# - connected components: touching nuclei merge without a boundary class, and separate with it;
# - the object metric of BBBC039: nuclei matched at IoU > 0.5, F1, splits and merges.
#
# Data: a real BBBC039 image and mask from `$TORCHDOJO_DATA/bbbc039` when present; the other
# sections use hand-made masks. Recipes: `nuclei-segmentation`, `scene-segmentation`. Seeds:
# 004 ch13 (U-Net), 003 ch3 (PSPNet).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.nn import functional as F
from torchmetrics.classification import BinaryF1Score, MulticlassJaccardIndex

from torchdojo.data.segmentation import instances_to_classes, load_bbbc039
from torchdojo.models import create_model
from torchdojo.models.segmentation import ASPP, PyramidPooling
from torchdojo.runs.segmentation import match_objects, nuclei_instances
from torchdojo.viz import start_lesson

LESSON = start_lesson("20_segmentation")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save

# %% [markdown]
# ## 1. Dice and IoU by hand
#
# For one class, let P be the predicted pixels and G the true ones.
# IoU = |P ∩ G| / |P ∪ G|; Dice = 2 |P ∩ G| / (|P| + |G|). Dice is the F1 score of the pixels
# (precision and recall of "is this pixel foreground"), and the two are tied:
# Dice = 2 IoU / (1 + IoU), so they rank predictions the same way; Dice is the larger.

# %%
target = torch.zeros(8, 8, dtype=torch.long)
target[2:6, 2:6] = 1  # a 4x4 square: 16 pixels
pred = torch.zeros(8, 8, dtype=torch.long)
pred[3:7, 2:6] = 1  # the same square shifted down by one row

inter = ((pred == 1) & (target == 1)).sum().item()  # 12
union = ((pred == 1) | (target == 1)).sum().item()  # 20
iou, dice = inter / union, 2 * inter / ((pred == 1).sum() + (target == 1).sum()).item()
print(f"IoU {iou:.3f}  Dice {dice:.3f}")
assert (inter, union) == (12, 20) and abs(dice - 2 * iou / (1 + iou)) < 1e-12

tm_iou = MulticlassJaccardIndex(2, average="none")(pred[None], target[None])  # per class
tm_dice = BinaryF1Score()(pred[None], target[None])  # Dice of the foreground = pixel F1
assert abs(tm_iou[1].item() - iou) < 1e-6 and abs(tm_dice.item() - dice) < 1e-6
print("torchmetrics agrees: IoU per class", [round(v, 3) for v in tm_iou.tolist()])

# %% [markdown]
# The mean IoU over classes (mIoU) counts the background as a class too; on BBBC039 the
# background is 86 % of the pixels, so its IoU is high whatever happens to the nuclei. That
# is why the nuclei recipe reports the *foreground* Dice and, above all, an object metric.

# %% [markdown]
# ## 2. Getting back to full resolution: transposed conv vs bilinear upsampling
#
# An encoder halves the side several times; the logits must come back to `H x W`. U-Net
# (seed 004 ch13) learns the upsampling: a 2x2 transposed convolution with stride 2 spreads
# each input pixel over a 2x2 output patch with learned weights. PSPNet and DeepLabV3
# upsample their coarse logits with fixed bilinear interpolation: no parameters.

# %%
coarse = torch.randn(1, 16, 5, 7)  # (B, C, h, w) features at 1/2 resolution
up_learned = nn.ConvTranspose2d(16, 8, kernel_size=2, stride=2)
up_fixed = F.interpolate(coarse, scale_factor=2, mode="bilinear", align_corners=False)
print(
    "transposed conv:",
    tuple(up_learned(coarse).shape),
    "params",
    sum(p.numel() for p in up_learned.parameters()),
)
print("bilinear:       ", tuple(up_fixed.shape), "params 0")
assert up_learned(coarse).shape == (1, 8, 10, 14) and up_fixed.shape == (1, 16, 10, 14)
# Output side of a transposed conv: (in - 1) * stride - 2 * padding + kernel = (5 - 1) * 2 + 2.
assert (5 - 1) * 2 + 2 == 10

# %% [markdown]
# With kernel 2 and stride 2 the 2x2 patches do not overlap, so a constant input becomes a
# tiled 2x2 pattern, not a smooth field: that is the "checkerboard" a learned upsampling can
# show. Bilinear interpolation of a constant stays constant.

# %%
with torch.no_grad():
    flat = torch.ones(1, 1, 3, 3)
    tconv = nn.ConvTranspose2d(1, 1, 2, stride=2, bias=False)
    tconv.weight.copy_(torch.tensor([[[[1.0, 0.0], [0.0, 0.5]]]]))
    tiled = tconv(flat)[0, 0]
assert torch.equal(tiled[:2, :2], torch.tensor([[1.0, 0.0], [0.0, 0.5]]))  # the kernel, tiled
assert torch.allclose(F.interpolate(flat, scale_factor=2, mode="bilinear"), torch.ones(1, 1, 6, 6))

# %% [markdown]
# A U-Net concatenates the encoder's features of the same scale to what it upsamples (the
# skip connections), so fine detail lost in pooling comes back. Ours pads its 3x3 convs, so
# any input size gives logits of that size (the paper's unpadded convs shrink the output).

# %%
unet = create_model("unet", in_channels=1, num_classes=3, width=8, depth=4).eval()
with torch.no_grad():
    logits = unet(torch.rand(1, 1, 100, 130))  # 100 and 130 are no multiples of 16: padded inside
print(
    "U-Net logits", tuple(logits.shape), f"{sum(p.numel() for p in unet.parameters()):,} parameters"
)
assert logits.shape == (1, 3, 100, 130)

# %% [markdown]
# ## 3. Pyramid pooling (PSPNet) and ASPP (DeepLabV3)
#
# A pixel's class depends on context: a round shape on a microscope slide is a nucleus. PSPNet
# average-pools the backbone's features into 1x1, 2x2, 3x3 and 6x6 grids (global, quadrant,
# ... context), reduces each to C/4 channels with a 1x1 conv, upsamples them back and
# concatenates them with the features: `(B, C, h, w) -> (B, 2C, h, w)`.

# %%
features = torch.randn(2, 320, 16, 16)  # MobileNetV2's last stage at 1/8 of a 128x128 input
ppm = PyramidPooling(320, bins=(1, 2, 3, 6))
for bins, branch in zip((1, 2, 3, 6), ppm.branches, strict=True):
    pooled = branch(features)
    print(f"bin {bins}: pooled {tuple(pooled.shape)}")
    assert pooled.shape == (2, 80, bins, bins)
assert ppm(features).shape == (2, 640, 16, 16)

# %% [markdown]
# DeepLabV3 gets context another way: 3x3 convolutions with holes (dilation r samples every
# r-th pixel, so the kernel spans 2r + 1 pixels at the cost of 9 taps), at several rates in
# parallel, plus one globally pooled branch (ASPP). The side is kept at every rate.

# %%
aspp = ASPP(320, 64, rates=(6, 12, 18))
assert aspp(features).shape == (2, 64, 16, 16)
dilated = nn.Conv2d(1, 1, 3, padding=6, dilation=6, bias=False)
assert dilated(torch.zeros(1, 1, 16, 16)).shape == (1, 1, 16, 16)
# The receptive field of one dilated 3x3 conv: 2 * 6 + 1 = 13 pixels per side.
impulse = torch.zeros(1, 1, 31, 31)
impulse[0, 0, 15, 15] = 1
with torch.no_grad():
    dilated.weight.fill_(1.0)
    reach = dilated(impulse)[0, 0].nonzero()
assert (reach.max(0).values - reach.min(0).values).tolist() == [12, 12]

# %% [markdown]
# ## 4. Why a boundary class: touching nuclei
#
# Two nuclei that touch form one blob of "nucleus" pixels: one connected component, one
# object. BBBC039's masks mark each nucleus's outer rim as a third class, *boundary*; with it
# the interiors no longer touch, so connected components of the nucleus class give one
# component per nucleus, each grown back over its rim afterwards.

# %%
yy, xx = np.mgrid[0:40, 0:60]
instances = np.zeros((40, 60), np.int32)
instances[(yy - 20) ** 2 + (xx - 20) ** 2 <= 12**2] = 1
instances[(yy - 20) ** 2 + (xx - 41) ** 2 <= 10**2] = 2  # overlaps the first: they touch
three_class = instances_to_classes(instances)  # 0 background, 1 nucleus, 2 boundary

_, without_boundary = ndimage.label(three_class > 0)  # nucleus or boundary: "foreground"
_, with_boundary = ndimage.label(three_class == 1)  # nucleus class only
print(f"components without a boundary class: {without_boundary}, with it: {with_boundary}")
assert (without_boundary, with_boundary) == (1, 2)

nuclei = nuclei_instances(three_class, min_size=5)  # components grown back into the boundary
assert nuclei.max() == 2 and ((nuclei > 0) == (instances > 0)).all()

fig, axes = plt.subplots(1, 3, figsize=(9, 2.4))
for ax, picture, title in zip(
    axes,
    (instances, three_class, nuclei),
    ("true nuclei", "3-class mask", "recovered nuclei"),
    strict=True,
):
    ax.imshow(picture, cmap="tab10", interpolation="nearest")
    ax.set_title(title)
    ax.set_axis_off()
save(fig, "touching_nuclei.png")

# %% [markdown]
# ## 5. The object metric: matching nuclei at IoU 0.5
#
# The field counts nuclei, not pixels (Caicedo et al. 2019): every predicted nucleus is
# matched one-to-one to a true one when their IoU exceeds 0.5 (above 0.5 two objects cannot
# share a match). F1 = 2TP / (2TP + FP + FN). A prediction that covers two true nuclei is a
# *merge*; a true nucleus cut in two is a *split*. A model that finds every nucleus pixel but
# no boundary scores a perfect foreground Dice and still loses nuclei: the merged blob matches
# the larger nucleus (IoU > 0.5) and the smaller one is missed, F1 = 2·1 / (2·1 + 0 + 1).

# %%
merged_prediction, _ = ndimage.label(three_class > 0)  # one blob over both nuclei
counts = match_objects(nuclei, merged_prediction)
print(counts, f"F1 {counts.f1:.2f}")
assert counts.merges == 1 and counts.tp == 1 and abs(counts.f1 - 2 / 3) < 1e-12
assert match_objects(nuclei, nuclei).f1 == 1.0

# %% [markdown]
# ## 6. A real BBBC039 image
#
# 16-bit fluorescence (12 bits used), put on a fixed log scale (ln 100 -> 0, ln 4095 -> 1):
# the same for every image, so an empty field stays dark (scaling each image by its own
# percentiles would stretch its noise into "nuclei"). The recipe's split is fixed by file
# name (sorted names, shuffled with seed 39, 70 train / 10 val / 20 test).

# %%
root = Path(os.environ.get("TORCHDOJO_DATA", "/nonexistent"))
if (root / "bbbc039").is_dir():
    val = load_bbbc039(root, "val")
    image, mask = val[0]
    true_nuclei = nuclei_instances(mask.numpy())
    fraction = torch.bincount(mask.flatten(), minlength=3).float() / mask.numel()
    print(
        f"{val.names[0]}: {true_nuclei.max()} nuclei; pixels bg/nucleus/boundary {fraction.numpy().round(3)}"
    )
    assert image.shape == (1, 520, 696) and 0 <= image.min() and image.max() <= 1
    _, merged_count = ndimage.label(mask.numpy() > 0)
    assert merged_count < true_nuclei.max()  # some nuclei touch: foreground alone merges them
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    axes[0].imshow(image[0], cmap="gray")
    axes[1].imshow(mask, cmap="viridis", interpolation="nearest")
    for ax, title in zip(
        axes, ("image (normalized)", "mask: bg / nucleus / boundary"), strict=True
    ):
        ax.set_title(title)
        ax.set_axis_off()
    save(fig, "bbbc039.png")
else:
    print("set TORCHDOJO_DATA to a folder holding bbbc039/ to see a real image")

# %% [markdown]
# ## Where next
#
# `torchdojo run nuclei-segmentation` trains the U-Net on BBBC039 with cross-entropy (the
# boundary class weighted 5x) plus a soft Dice loss and reports this object F1;
# `--set model=pspnet-mobilenetv2` or `deeplabv3-mobilenetv2` swaps in the pretrained
# MobileNetV2 models; `torchdojo run scene-segmentation` trains PSPNet on synthetic scenes.
