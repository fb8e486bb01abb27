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
# # 21 · Pose: keypoint heatmaps, part affinity fields, and grouping people
#
# Multi-person pose estimation finds every person's keypoints (nose, shoulders, wrists, ...)
# in one pass. OpenPose (Cao et al., 2017, seed 003 ch4) predicts two kinds of maps and
# then solves a small puzzle: which found keypoints belong to the same person. Every step
# is a few lines of `torch`, and every claim is checked on a case made by hand.
#
# **You will learn**
# - what a keypoint heatmap is, and how its peak gives the point back (to a fraction of a pixel);
# - what a part affinity field (PAF) is: a unit vector along each limb;
# - the line integral that scores a candidate limb: about 1 for a real limb, about 0 for a
#   pairing across people;
# - the greedy association that assembles limbs into people, on a two-person scene;
# - the two-branch, multi-stage network that predicts both maps.
#
# Data: seeded synthetic stick figures with COCO's 17 keypoints (`torchdojo.data.poses`), no
# download. Recipe: `pose-estimation`.

# %%
import matplotlib.pyplot as plt
import numpy as np
import torch

from torchdojo.data.poses import SyntheticPoses, heatmaps, pafs
from torchdojo.models import create_model
from torchdojo.nn.pose import (
    COCO_KEYPOINTS,
    COCO_SKELETON,
    connect_limbs,
    decode_poses,
    find_peaks,
    score_limbs,
)
from torchdojo.viz import start_lesson
from torchdojo.viz.pose import draw_poses, maps_figure

LESSON = start_lesson("21_pose")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
torch.manual_seed(0)

# %% [markdown]
# ## 1. The data: people as 17 keypoints
#
# A person is 17 `(x, y, v)` triples in COCO's order; `v` is 2 for a visible keypoint, 1 for
# one hidden behind someone else, 0 for one outside the image. The skeleton lists the 19
# limbs as pairs of keypoint indices. Our scenes hold 1-4 stick figures on textured
# backgrounds, each with its own size, lean, limb angles, thickness and colour.

# %%
scenes = SyntheticPoses(4, size=128, seed=0)
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2), layout="constrained")
for i, ax in enumerate(axes):
    image, target = scenes[i]
    ax.imshow(draw_poses(image, target["keypoints"], COCO_SKELETON))
    ax.set_title(f"{len(target['keypoints'])} people")
    ax.axis("off")
save(fig, "scenes.png")
image, target = scenes[0]
print(f"image {tuple(image.shape)}, keypoints {tuple(target['keypoints'].shape)}")
assert target["keypoints"].shape[1:] == (len(COCO_KEYPOINTS), 3) and len(COCO_SKELETON) == 19

# %% [markdown]
# ## 2. A keypoint heatmap
#
# The network does not regress coordinates; it paints, for each keypoint type, a map that is
# 1 at the keypoint and falls off as a Gaussian around it (the maximum over people where two
# overlap). The maps are 4 times coarser than the image, so a keypoint at pixel `x` sits at
# cell `x / 4 - 0.5`. The peak's cell gives the point back to within a cell; the
# score-weighted mean of its 3 x 3 neighbourhood on the map resized to the image refines it, and a max-pool keeps only local
# maxima (non-maximum suppression), so two people give two peaks.

# %%
two = torch.zeros(2, 17, 3)
two[0, 9] = torch.tensor([41.0, 70.0, 2])  # a left wrist
two[1, 9] = torch.tensor([98.0, 30.0, 2])  # another person's left wrist
one = heatmaps(two[:1], (32, 32), sigma=1.0, stride=4)  # (18, 32, 32): 17 keypoints + background
row, col = divmod(int(one[9].argmax()), 32)
print(f"argmax cell ({col}, {row}) -> pixel ({4 * (col + 0.5)}, {4 * (row + 0.5)})")
assert abs(4 * (col + 0.5) - 41.0) <= 2 and abs(4 * (row + 0.5) - 70.0) <= 2  # within a cell

maps = heatmaps(two, (32, 32), sigma=1.0, stride=4)  # both people: the maximum of two peaks
wrist = maps[9]

upsampled = torch.nn.functional.interpolate(maps[None, :-1], size=(128, 128), mode="bicubic")[0]
peaks = find_peaks(upsampled)[9]  # (n, 3): x, y, score
print("peaks (x, y, score):", peaks.round(decimals=2).tolist())
assert len(peaks) == 2
found = peaks[peaks[:, 0].argsort()]
assert torch.allclose(found[:, :2], two[:, 9, :2], atol=1.0)  # within a pixel
assert torch.allclose(maps[-1], 1 - maps[:-1].amax(0))  # background: 1 - max

fig, axes = plt.subplots(1, 2, figsize=(7, 3.3), layout="constrained")
axes[0].imshow(wrist, cmap="magma")
axes[0].set_title("left-wrist heatmap (32 x 32)")
axes[1].imshow(upsampled[9], cmap="magma")
axes[1].plot(*found[:, :2].T, "c+", markersize=12)
axes[1].set_title("resized to 128 x 128, peaks found")
save(fig, "heatmap.png")

# %% [markdown]
# ## 3. A part affinity field
#
# Peaks alone cannot say which wrist goes with which elbow when several people stand close.
# A PAF is a 2-channel map per limb: on the pixels within a small width of the limb it holds
# the unit vector pointing from the limb's first keypoint to its second, elsewhere 0. It
# encodes both *where* the limb is and *which way* it runs.

# %%
forearm = COCO_SKELETON.index((7, 9))  # left elbow -> left wrist
person = torch.zeros(1, 17, 3)
person[0, 7] = torch.tensor([10.0, 10.0, 2])  # elbow
person[0, 9] = torch.tensor([30.0, 10.0, 2])  # wrist, to the right
field = pafs(person, COCO_SKELETON, (40, 40), width=1.0, stride=1)[2 * forearm : 2 * forearm + 2]
assert torch.allclose(field[:, 10, 20], torch.tensor([1.0, 0.0]))  # on the limb: (1, 0)
assert field[:, 30, 20].abs().sum() == 0  # far from it: 0
assert field.norm(dim=0).max() <= 1 + 1e-6  # unit vectors or zero

# %% [markdown]
# ## 4. The line integral that scores a limb
#
# A candidate limb from keypoint `a` to keypoint `b` is scored by walking along the segment
# and averaging the dot product of the field with the segment's direction `(b - a) / |b - a|`
# (the paper's integral, sampled at 10 points). Along a real limb every sample reads the
# same direction: the score is about 1. A pairing of one person's elbow with another's wrist
# crosses empty background: most samples read 0, the score is about 0, and too few samples
# support it (dot > 0.05 on at least 80 % of them), so it is rejected. (The score also adds
# the paper's length prior, `min(0, H / (2 |b - a|) - 1)`: a limb longer than half the image
# height pays; these are short.)

# %%
people = torch.zeros(2, 17, 3)
people[:, 7] = torch.tensor([[10.0, 10.0, 2], [10.0, 50.0, 2]])  # two elbows
people[:, 9] = torch.tensor([[30.0, 10.0, 2], [30.0, 50.0, 2]])  # two wrists
both = pafs(people, COCO_SKELETON, (128, 128), width=1.0, stride=1)[2 * forearm : 2 * forearm + 2]
elbows, wrists = people[:, 7, :2], people[:, 9, :2]
loose = score_limbs(both, elbows, wrists, min_support=0.0)  # (2 elbows, 2 wrists), no cut
print("line integrals (rows: elbows, columns: wrists):\n", loose.round(decimals=3))
assert loose[0, 0] > 0.95 and loose[1, 1] > 0.95  # real limbs score ~1
assert abs(float(loose[0, 1])) < 0.25 and abs(float(loose[1, 0])) < 0.25  # cross pairs ~0
scores = score_limbs(both, elbows, wrists)  # with the support criterion
assert torch.isinf(scores[0, 1]) and torch.isinf(scores[1, 0])

fig, ax = plt.subplots(figsize=(4, 4), layout="constrained")
ys, xs = np.mgrid[0:128, 0:128]
keep = both.norm(dim=0) > 0
ax.quiver(xs[keep], ys[keep], both[0][keep], -both[1][keep], color="tab:red", scale=30)
for i, j, style in ((0, 0, "g-"), (1, 1, "g-"), (0, 1, "k--"), (1, 0, "k--")):
    ax.plot([elbows[i, 0], wrists[j, 0]], [elbows[i, 1], wrists[j, 1]], style)
ax.set(xlim=(0, 40), ylim=(60, 0), title="PAF (arrows); real limbs (green), cross pairs")
save(fig, "paf_line_integral.png")

# %% [markdown]
# ## 5. Greedy association into people
#
# With all limb scores known, OpenPose assembles people greedily. For each limb type, the
# candidate pairs are sorted by score and accepted best first, each keypoint used at most
# once (a greedy bipartite matching). Then the accepted limbs are joined along shared
# keypoints: a limb touching a person extends them, a limb touching nobody starts a new one.
# Here, two hand-made people stand side by side; their maps are the exact targets, so the
# decoder must give both back, each with only their own keypoints.

# %%
limb_scores = torch.tensor([[0.9, 0.8], [0.85, 0.1]])  # 2 elbows x 2 wrists
accepted = connect_limbs(limb_scores)  # best first, each keypoint once
print(accepted)
assert [(i, j) for i, j, _ in accepted] == [(0, 0), (1, 1)]
# Greedy is not optimal (0.8 + 0.85 > 0.9 + 0.1), but real limb scores are near 1 or near 0,
# where the two agree; the paper found it as accurate and much faster.


def stick_person(x0: float) -> torch.Tensor:
    """17 keypoints of a standing person whose hips are centred at x0 (arms out)."""
    xy = [
        (0, 20),
        (3, 17),
        (-3, 17),
        (6, 19),
        (-6, 19),
        (10, 30),
        (-10, 30),
        (18, 42),
        (-18, 42),
        (24, 52),
        (-24, 52),
        (7, 62),
        (-7, 62),
        (8, 84),
        (-8, 84),
        (9, 106),
        (-9, 106),
    ]
    points = torch.tensor([[x0 + dx, float(y), 2.0] for dx, y in xy])
    return points


scene = torch.stack([stick_person(34.0), stick_person(94.0)])  # (2, 17, 3), arms 12 px apart
heat = heatmaps(scene, (32, 32), sigma=1.0)
fields = pafs(scene, COCO_SKELETON, (32, 32), width=1.0)
keypoints, person_scores = decode_poses(heat, fields, COCO_SKELETON, image_size=(128, 128))
print(f"decoded {len(keypoints)} people, scores {person_scores.round(decimals=2).tolist()}")
assert len(keypoints) == 2
order = keypoints[:, 11, 0].argsort()  # left to right by the left hip
for decoded, truth in zip(keypoints[order], scene, strict=True):
    assert (decoded[:, 2] > 0).all()  # all 17 keypoints found
    assert torch.allclose(decoded[:, :2], truth[:, :2], atol=2.0)  # and none from the other

fig = maps_figure(
    torch.full((3, 128, 128), 0.9), heat, fields, COCO_SKELETON, COCO_KEYPOINTS, limbs=(9, 10)
)
save(fig, "two_people_maps.png")

# %% [markdown]
# ## 6. The network: two branches, refined in stages
#
# `openpose-small` is the paper's design at a CPU's size: a VGG-style backbone to 1/4 of the
# input, then stage 1 with a heatmap branch and a PAF branch, then refinement stages that
# see the features plus the previous stage's maps. The training loss is the squared error of
# both maps at *every* stage ("intermediate supervision"); `forward` returns the last
# stage. `torchdojo run pose-estimation` trains it and reports PCK@0.2 and COCO OKS AP.

# %%
model = create_model("openpose-small", width=16, stages=2, depth=1)
outputs = model.stages(torch.rand(1, 3, 128, 128))
for t, (h, f) in enumerate(outputs, 1):
    print(f"stage {t}: heatmaps {tuple(h.shape)}, PAFs {tuple(f.shape)}")
assert [tuple(h.shape) for h, _ in outputs] == [(1, 18, 32, 32)] * 2
assert all(tuple(f.shape) == (1, 38, 32, 32) for _, f in outputs)
