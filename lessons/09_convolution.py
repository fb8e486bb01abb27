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
# # 09 · Images and convolution
#
# An image is a (C, H, W) tensor. A convolution slides a small kernel over it and takes a
# weighted sum at every position. Hand-made kernels find edges; a conv layer *learns* its
# kernels from data.
#
# **You will learn**
# - Sobel and Laplacian edge detection with OpenCV, and the very same kernels as an
#   `nn.Conv2d` (identical numbers, including the border handling);
# - the output-size formula (H + 2p − k) / s + 1, parameters of a conv layer, pooling;
# - a conv layer that learns the Sobel kernel back from examples;
# - the filters and feature maps of a small CNN trained on digits;
# - sizing classic CNNs (AlexNet, VGG-16, ResNet-18) on the `meta` device.
#
# Seeds: 002 §5 (image processing and CNNs, classic CNNs), 001 ch9, 004 ch8, 000 ch7.

# %%


import cv2
import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from sklearn.datasets import load_digits, load_sample_image
from torch import Tensor, nn

from torchdojo.viz import start_lesson

LESSON = start_lesson("09_convolution")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


# %% [markdown]
# ## 1. Edges with OpenCV
#
# scikit-learn ships two photos offline. We take one to grey levels in [0, 1].
# Sobel-x responds to changes from left to right (vertical edges), Sobel-y to horizontal
# ones; the Laplacian (a second derivative) responds to edges in every direction.

# %%
photo = load_sample_image("china.jpg")  # (H, W, 3) uint8, RGB
gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255  # (H, W)
if SMOKE:
    gray = np.ascontiguousarray(gray[::2, ::2])
sobel_x = cv2.Sobel(gray, cv2.CV_64F, 1, 0, ksize=3)
sobel_y = cv2.Sobel(gray, cv2.CV_64F, 0, 1, ksize=3)
laplacian = cv2.Laplacian(gray, cv2.CV_64F)  # ksize=1: the 4-neighbour kernel
magnitude = np.hypot(sobel_x, sobel_y)
print("image", gray.shape, "| strongest Sobel edge", round(magnitude.max(), 3))
assert sobel_x.shape == gray.shape and magnitude.max() > 1.0

fig, axes = plt.subplots(1, 4, figsize=(14, 3))
for ax, img, title in zip(
    axes,
    [gray, np.abs(sobel_x), np.abs(sobel_y), np.abs(laplacian)],
    ["grey", "|Sobel x|", "|Sobel y|", "|Laplacian|"],
    strict=True,
):
    ax.imshow(img, cmap="gray", vmax=np.percentile(img, 99))
    ax.set_title(title)
    ax.axis("off")
save(fig, "opencv_edges.png")

# %% [markdown]
# ## 2. The same kernels as a conv layer
#
# `nn.Conv2d` computes a cross-correlation (no kernel flip), exactly like OpenCV's filters.
# OpenCV pads by reflection without repeating the edge pixel (`BORDER_REFLECT_101`), which
# is PyTorch's `padding_mode="reflect"`. Put the three kernels in one conv layer with three
# output channels: the results match OpenCV's to floating-point precision.

# %%
SOBEL_X = [[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]
SOBEL_Y = [[-1.0, -2.0, -1.0], [0.0, 0.0, 0.0], [1.0, 2.0, 1.0]]
LAPLACE = [[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]]
conv = nn.Conv2d(1, 3, kernel_size=3, padding=1, padding_mode="reflect", bias=False).double()
with torch.no_grad():
    conv.weight.copy_(torch.tensor([[SOBEL_X], [SOBEL_Y], [LAPLACE]]))  # (out=3, in=1, 3, 3)
    edges = conv(torch.from_numpy(gray)[None, None])[0].numpy()  # (3, H, W)
names = ["Sobel x", "Sobel y", "Laplacian"]
for ours, theirs, name in zip(edges, [sobel_x, sobel_y, laplacian], names, strict=True):
    err = np.abs(ours - theirs).max()
    print(f"{name}: max |conv2d - OpenCV| = {err:.1e}")
    assert np.allclose(ours, theirs, atol=1e-12)

# Zero padding (the Conv2d default) differs from OpenCV only on the border.
sobel_w = conv.weight[:1].detach()  # (1, 1, 3, 3)
zero_pad = F.conv2d(torch.from_numpy(gray)[None, None], sobel_w, padding=1)[0, 0].numpy()
assert np.allclose(zero_pad[1:-1, 1:-1], sobel_x[1:-1, 1:-1])
assert not np.allclose(zero_pad[:, 0], sobel_x[:, 0])

# %% [markdown]
# ## 3. Shapes and parameters
#
# For input size H, kernel k, padding p, stride s, dilation d the output size is
# ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1. A conv layer has out·in·k·k weights and `out` biases,
# whatever the image size. Max-pooling 2×2 halves H and W and has no parameters.


# %%
def out_size(h: int, k: int, p: int = 0, s: int = 1, d: int = 1) -> int:
    """Output height of a convolution."""
    return (h + 2 * p - d * (k - 1) - 1) // s + 1


x = torch.randn(2, 3, 32, 32)  # (B, C, H, W)
for k, p, s, d in [(3, 1, 1, 1), (5, 0, 1, 1), (3, 1, 2, 1), (7, 3, 2, 1), (3, 2, 1, 2)]:
    layer = nn.Conv2d(3, 8, kernel_size=k, padding=p, stride=s, dilation=d)
    y = layer(x)
    assert y.shape == (2, 8, out_size(32, k, p, s, d), out_size(32, k, p, s, d))
    assert sum(q.numel() for q in layer.parameters()) == 8 * 3 * k * k + 8
assert nn.MaxPool2d(2)(x).shape == (2, 3, 16, 16)
assert nn.Conv2d(3, 8, 3, padding="same")(x).shape[-2:] == (32, 32)

# %% [markdown]
# ## 4. A conv layer learns the Sobel kernel back
#
# Training a conv layer is regression on its kernel. Show a fresh 3×3 conv layer some
# images and their Sobel-x response, minimize the MSE, and its weights become the Sobel
# kernel. We use white-noise images: their pixels are independent, so the loss is a round
# bowl and plain SGD gets there in a few dozen steps. (On the photo, neighbouring pixels are
# strongly correlated: the bowl is a narrow valley and it takes far longer, the same story
# as unscaled inputs in lesson 07.)

# %%
noise = torch.randn(8, 1, 32, 32)  # (B, 1, H, W)
target = F.conv2d(noise, torch.tensor([[SOBEL_X]]))  # valid conv: (B, 1, 30, 30)
torch.manual_seed(0)
student = nn.Conv2d(1, 1, 3, bias=False)
optimizer = torch.optim.SGD(student.parameters(), lr=0.2)
for _ in range(30 if SMOKE else 100):
    loss = F.mse_loss(student(noise), target)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
learned = student.weight.detach()[0, 0]
print("learned kernel:\n", learned.numpy().round(2))
assert torch.allclose(learned, torch.tensor(SOBEL_X), atol=1e-3)

# %% [markdown]
# ## 5. What a small CNN learns on digits
#
# scikit-learn's digits are 8×8. Eight 3×3 filters, ReLU, 2×2 max-pool, a linear head. After
# training, each filter responds to a stroke direction; its feature map lights up where
# that stroke is.

# %%
digits = load_digits()
images = torch.tensor(digits.images, dtype=torch.float32).unsqueeze(1) / 16  # (N, 1, 8, 8)
labels = torch.tensor(digits.target)
perm = torch.randperm(len(images))
tr, te = perm[:1400], perm[1400:]


class DigitCNN(nn.Module):
    """conv(1->8, 3x3) -> ReLU -> max-pool -> linear(8*4*4 -> 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x: Tensor) -> Tensor:
        maps = torch.relu(self.conv(x))  # (B, 8, 8, 8)
        return self.head(self.pool(maps).flatten(1))  # (B, 8, 4, 4) -> (B, 128) -> (B, 10)


torch.manual_seed(0)
model = DigitCNN()
initial_filters = model.conv.weight.detach().clone()
optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
for _ in range(10 if SMOKE else 30):
    for i in range(0, len(tr), 64):
        idx = tr[i : i + 64]
        loss = F.cross_entropy(model(images[idx]), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
with torch.no_grad():
    acc = (model(images[te]).argmax(1) == labels[te]).float().mean().item()
print(f"digit CNN test accuracy {acc:.3f}")
assert acc > 0.9
filters = model.conv.weight.detach()  # (8, 1, 3, 3)
assert (filters - initial_filters).abs().mean() > 0.05, "training moved the filters"

sample = images[te[:1]]
with torch.no_grad():
    maps = torch.relu(model.conv(sample))[0]  # (8, 8, 8): one map per filter
assert maps.shape == (8, 8, 8) and (maps >= 0).all()
fig, axes = plt.subplots(2, 9, figsize=(11, 2.8))
axes[0, 0].imshow(sample[0, 0], cmap="gray")
axes[0, 0].set_title("input")
axes[1, 0].axis("off")
for k in range(8):
    axes[0, k + 1].imshow(filters[k, 0], cmap="RdBu")
    axes[0, k + 1].set_title(f"filter {k}")
    axes[1, k + 1].imshow(maps[k], cmap="viridis")
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
save(fig, "filters_and_feature_maps.png")

# %% [markdown]
# ## 6. Classic CNNs, sized without building them
#
# On the `meta` device torchvision builds a model's structure but allocates no memory, so
# we can count VGG-16's parameters instantly. Since torchvision 0.13 pretrained weights
# are chosen with `weights=...` (for example `weights="IMAGENET1K_V1"`), not
# `pretrained=True`.

# %%
with torch.device("meta"):
    sizes = {
        name: sum(p.numel() for p in getattr(torchvision.models, name)(weights=None).parameters())
        for name in ("alexnet", "vgg16", "resnet18")
    }
print({k: f"{v:,}" for k, v in sizes.items()})
assert sizes == {"alexnet": 61_100_840, "vgg16": 138_357_544, "resnet18": 11_689_512}
print("lesson 09 done")
