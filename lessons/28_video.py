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
# # 28 · Video: clips as tensors, 3-D and (2+1)-D convolutions, and why motion needs time
#
# A video clip is a stack of frames: one more axis than an image. PyTorch's 3-D layers read
# it as (B, C, T, H, W). This lesson builds action clips from real MNIST digits, writes them
# as `.mp4` files and reads them back, samples frames the way ECO does, and shows what a model
# that *averages* its frames can never learn.
#
# **You will learn**
# - the shapes and parameter counts of 3-D and (2+1)-D convolutions;
# - ECO's frame sampling: one frame per segment, random in training, centre in evaluation;
# - reading and writing video files with PyAV (`torchvision.io.read_video` is deprecated);
# - why "left" and "right" have the same average frame, so a frame-averaging model is at
#   chance on them (asserted), and what ECO-Lite's 3-D head adds.
#
# Data: MNIST test digits from `$TORCHDOJO_DATA/MNIST` when present, else synthetic bars.
# Recipe: `video-actions`. Seed: 003 ch9 (ECO; PyTorchVideo is gone, see docs/crosswalk.md).

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from torchdojo.data import mnist
from torchdojo.data.video import (
    MOTION_CLASSES,
    motion_path,
    read_video,
    render_clip,
    segment_indices,
    write_video,
)
from torchdojo.models import create_model
from torchdojo.models.video import Conv2Plus1d
from torchdojo.viz import start_lesson

LESSON = start_lesson("28_video")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save

# %% [markdown]
# ## 1. A clip is a 5-D batch
#
# One digit, nine actions. Each action is a path of poses (centre, angle, scale) over
# T = 24 frames; `render_clip` draws the digit at every pose with one `grid_sample`.

# %%
root = Path(os.environ.get("TORCHDOJO_DATA", "/nonexistent"))
if (root / "MNIST" / "raw").is_dir():
    digits = mnist.load_idx_split(root, "test").x[:16]  # (16, 1, 28, 28) uint8, real digits
else:
    digits = mnist.synthetic_digits("test", n=16).x
digit = digits[0, 0]  # (28, 28)
T, SIZE = 24, 64
clips = torch.stack(
    [
        render_clip(digit, motion_path(a, T, np.random.default_rng(0)), size=SIZE)
        for a in MOTION_CLASSES
    ]
)  # (9, T, H, W)
batch = clips.unsqueeze(1)  # (B, C, T, H, W) = (9, 1, 24, 64, 64): what Conv3d reads
assert batch.shape == (9, 1, T, SIZE, SIZE)

montage = clips[:, ::5]  # (9, 5, H, W): every 5th frame of each action
montage = montage.permute(0, 2, 1, 3).reshape(9 * SIZE, 5 * SIZE)  # rows: actions, cols: time
fig, ax = plt.subplots(figsize=(4, 6.5), layout="constrained")
ax.imshow(montage, cmap="gray", vmin=0, vmax=255)
ax.set_yticks([SIZE * (i + 0.5) for i in range(9)], MOTION_CLASSES)
ax.set_xticks([SIZE * (i + 0.5) for i in range(5)], [f"t={t}" for t in range(0, T, 5)])
save(fig, "actions.png")

# %% [markdown]
# ## 2. 3-D and (2+1)-D convolutions
#
# A 3x3x3 `Conv3d` slides over time as well as space: 27 · C_in · C_out weights. R(2+1)D
# factors it into a 1x3x3 spatial and a 3x1x1 temporal convolution with a ReLU between, and
# picks the middle width so the pair has about the same weights: one more nonlinearity for
# the same budget. Strides work per axis: (1, 2, 2) halves space and keeps time.

# %%
x = torch.randn(2, 16, 8, 32, 32)  # (B, C, T, H, W)
full = nn.Conv3d(16, 32, kernel_size=3, padding=1, bias=False)
factored = Conv2Plus1d(16, 32)
n_full = sum(p.numel() for p in full.parameters())
n_factored = sum(p.numel() for p in factored.parameters())
assert n_full == 27 * 16 * 32
assert abs(n_factored - n_full) / n_full < 0.05
assert full(x).shape == factored(x).shape == (2, 32, 8, 32, 32)
strided = nn.Conv3d(16, 32, kernel_size=3, stride=(1, 2, 2), padding=1)
assert strided(x).shape == (2, 32, 8, 16, 16)  # time kept, space halved
frame_conv = nn.Conv2d(16, 32, 3, padding=1, bias=False)  # what ECO's 2-D part does per frame
assert sum(p.numel() for p in frame_conv.parameters()) * 3 == n_full
print(f"Conv3d 3x3x3: {n_full:,} weights; (2+1)-D: {n_factored:,}; Conv2d 3x3: {n_full // 3:,}")

# %% [markdown]
# ## 3. ECO's frame sampling
#
# A clip is split into N equal segments and one frame is taken from each: at random in
# training (a cheap augmentation that still spans the whole action), the centre frame in
# evaluation. With 24 frames and 8 segments the centres are 1, 4, ..., 22: symmetric, so a
# clip played backwards gives the same frames in reverse order.

# %%
centre = segment_indices(T, 8, train=False)[0]  # (8,)
drawn = segment_indices(T, 8, train=True, generator=torch.Generator().manual_seed(0), batch=4)
assert centre.tolist() == [1, 4, 7, 10, 13, 16, 19, 22]
assert ((drawn // 3) == torch.arange(8)).all()  # one frame from each segment of 3
fig, ax = plt.subplots(figsize=(8, 2.2))
for row, picks in enumerate([centre, *drawn]):
    ax.scatter(picks, [row] * 8, s=30, c="k" if row == 0 else "tab:blue")
for edge in range(0, T + 1, 3):
    ax.axvline(edge - 0.5, color="0.8", lw=0.8)
ax.set(
    xlabel="frame",
    yticks=range(5),
    yticklabels=["eval", "train 1", "train 2", "train 3", "train 4"],
)
ax.set_title("one frame per segment: centre in evaluation, random in training")
save(fig, "sampling.png")

# %% [markdown]
# ## 4. Video files with PyAV
#
# Clips travel as compressed files. `write_video` encodes H.264 (yuv420p, one thread,
# lossless `qp=0`: whatever bytes the encoder writes, the decoded frames are the same on every
# run, so the weights are too) and `read_video` decodes any file FFmpeg reads into
# (C, T, H, W). The only error left is the grey <-> YUV conversion, at most one grey level.

# %%
path = write_video(OUT / "right.mp4", clips[0], fps=12)
back = read_video(path, channels=1)  # (1, T, H, W) uint8
error = (back[0].float() - clips[0].float()).abs().mean()
print(
    f"{path.name}: {path.stat().st_size:,} bytes for {clips[0].numel():,} pixels; error {error:.2f}"
)
assert back.shape == (1, T, SIZE, SIZE) and error < 1

# %% [markdown]
# ## 5. Why motion needs time
#
# "left" is "right" played backwards: the same frames, another order. So their *average
# frames are identical*, and any model that averages over frames (features pooled per frame,
# then a mean over time) gives a clip and its reversal the same logits. On a test set where
# every clip appears beside its reversal, it is right on exactly one of each pair: 50 %, chance,
# whatever it learned. ECO-Lite stacks the frames' feature maps in time and a 3-D convolution
# reads their order.

# %%
right = clips[MOTION_CLASSES.index("right")].float()  # (T, H, W)
left = render_clip(digit, motion_path("left", T, np.random.default_rng(0)), size=SIZE).float()
assert torch.equal(left, right.flip(0)) and torch.equal(left.mean(0), right.mean(0))


def left_right_clips(
    n: int, seed: int, size: int, frames: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` pairs: a digit moving right and the same clip reversed (left); (2n, 1, T, H, W)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        pose = motion_path("right", frames, rng)
        out.append(render_clip(digits[i % len(digits), 0], pose, size=size))
    right_clips = torch.stack(out).unsqueeze(1).float() / 255  # (n, 1, T, H, W)
    x = torch.cat([right_clips, right_clips.flip(2)])  # (2n, 1, T, H, W): right, then left
    y = torch.cat([torch.zeros(n), torch.ones(n)]).long()
    return x, y


def train(name: str, x: torch.Tensor, y: torch.Tensor, steps: int) -> nn.Module:
    torch.manual_seed(0)
    model = create_model(name, num_classes=2, width=8, width_3d=16, dropout=0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(len(x), (16,), generator=g)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


size, frames = (32, 6) if SMOKE else (48, 8)
x_train, y_train = left_right_clips(16 if SMOKE else 64, 0, size, frames)
x_test, y_test = left_right_clips(8 if SMOKE else 32, 1, size, frames)
accuracy = {}
for name in ("frame-average", "eco-lite"):
    model = train(name, x_train, y_train, steps=10 if SMOKE else 150)
    with torch.no_grad():
        logits = model(x_test)  # (2n, 2)
        reversed_logits = model(x_test.flip(2))
    accuracy[name] = float((logits.argmax(1) == y_test).float().mean())
    if name == "frame-average":  # a clip and its reversal: the same logits, one of them right
        assert torch.allclose(logits, reversed_logits, atol=1e-5)
        assert accuracy[name] == 0.5
print({k: round(v, 3) for k, v in accuracy.items()})
if not SMOKE:  # 150 steps: ECO-Lite reads the direction (1.0 when measured)
    assert accuracy["eco-lite"] >= 0.9

# %% [markdown]
# The full recipe, `torchdojo run video-actions`, trains ECO-Lite and the frame-average
# baseline on the nine motion classes (1,800 training clips of MNIST training digits, 900 test
# clips of MNIST *test* digits). The baseline tells the families apart (horizontal, vertical,
# rotation, zoom: their frames differ) but not the classes within a family; its
# `family_acc_frame_average` sits at `family_chance` while ECO-Lite reads the direction.
