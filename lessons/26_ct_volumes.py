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
# # 26 · CT volumes as tensors: Hounsfield units, spacing, millimetres and voxels
#
# A CT scan is a 3-D array of X-ray attenuation in **Hounsfield units** (HU), plus the
# geometry that places every voxel in the patient: an origin, a voxel size that is rarely a
# cube, and a direction matrix. Nodule positions in LUNA16 are given in millimetres, the
# network sees voxels, so converting between the two, correctly, is the first job.
#
# **You will learn**
# - what the HU scale means (air -1000, water 0, lung ~-850, bone 400+) and why we clip it;
# - voxel spacing: a 5 mm nodule is 7 voxels across but only 3 slices deep;
# - millimetres <-> (index, row, col) with a rotated, mirrored direction matrix, both ways,
#   checked against SimpleITK; and the book's formula that only works for symmetric matrices;
# - reading the same series as MetaImage (`.mhd`/`.raw`) and as DICOM (RescaleSlope/Intercept);
# - candidates, the imbalance (~100 false candidates per nodule) and a chip cache.
#
# Data: a synthetic LUNA16 written by `write_synthetic_luna` in LUNA16's own formats (the real
# set is 120 GB behind a registration page; the same code reads it). Recipes:
# `nodule-classifier`, `lung-ct-end-to-end`. Seed: 004 ch10-11 (see docs/crosswalk.md).

# %%
import matplotlib.pyplot as plt
import numpy as np
import SimpleITK as sitk
from matplotlib.patches import Circle

from torchdojo.data.ct import (
    ChipCache,
    CtSeries,
    clip_hu,
    find_series,
    irc_to_xyz,
    load_dicom_series,
    load_series,
    read_annotations,
    read_candidates,
    write_synthetic_luna,
    xyz_to_irc,
)
from torchdojo.data.ct_synthetic import write_dicom_series
from torchdojo.viz import start_lesson

LESSON = start_lesson("26_ct_volumes")
SMOKE, OUT, save = LESSON.smoke, LESSON.out, LESSON.save
SHAPE = (24, 64, 64) if SMOKE else (48, 96, 96)  # (Z, Y, X) voxels per series
NEGATIVES = 40 if SMOKE else 100  # false candidates per nodule (LUNA16: ~400)

root = write_synthetic_luna(
    OUT / "luna", n_series=2 if SMOKE else 4, seed=0, shape=SHAPE, negatives_per_nodule=NEGATIVES
)
paths = find_series(root)
print(
    f"{len(paths)} series under {root}:", *[p.relative_to(root) for p in paths.values()], sep="\n  "
)

# %% [markdown]
# ## 1. Hounsfield units
#
# HU rescales attenuation so that water is 0 and air is -1000. A histogram of one series shows
# the tissues as peaks: air outside the body, the lungs (air with a little tissue), soft tissue
# and fat, and a tail of bone. Scanners store a value such as -3024 outside their circular field
# of view; the book clips everything to -1000..1000 so that those, and metal, do not dominate.

# %%
uid0, path0 = next(iter(paths.items()))
series = load_series(path0)
hu = series.hu  # (Z, Y, X) float32
print(f"shape {series.shape}, HU range {hu.min():.0f} .. {hu.max():.0f}")
assert hu.min() == -3024  # outside the field of view on this series, as real scans store it
clipped = clip_hu(hu)
assert clipped.min() == -1000 and clipped.max() <= 1000

bands = {
    "air": (-1100, -950),
    "lung": (-950, -700),
    "fat": (-200, -50),
    "soft tissue": (-50, 100),
    "bone": (300, 1000),
}
share = {name: float(((clipped >= lo) & (clipped < hi)).mean()) for name, (lo, hi) in bands.items()}
print({k: f"{v:.1%}" for k, v in share.items()})
assert share["lung"] > 0.1 and share["soft tissue"] > 0.1 and share["air"] > 0.05
assert 0 < share["bone"] < 0.05  # bone is there, and rare

fig, ax = plt.subplots(figsize=(8, 2.6))
ax.hist(clipped.ravel(), bins=200, log=True, color="0.3")
for name, (lo, hi) in bands.items():
    ax.axvspan(lo, hi, alpha=0.15)
    ax.text((lo + hi) / 2, ax.get_ylim()[1] * 0.3, name, ha="center", fontsize=8)
ax.set(xlabel="HU (clipped to -1000..1000)", ylabel="voxels", title="one CT series")
save(fig, "hu_histogram.png")

# %% [markdown]
# ## 2. Spacing: voxels are not cubes
#
# `spacing_xyz` is the size of a voxel in millimetres along x (columns), y (rows) and z
# (slices). Slices are typically 1-2.5 mm apart while pixels are 0.6-0.9 mm, so the same
# nodule spans more pixels across than slices deep. Any size in millimetres must be divided
# by the spacing *of its axis*.

# %%
sx, sy, sz = series.spacing_xyz
print(
    f"spacing x {sx:.2f} y {sy:.2f} z {sz:.2f} mm; field of view {np.array(series.shape[::-1]) * series.spacing_xyz} mm"
)
assert sz > sx == sy
nodule_mm = 5.0
across, deep = nodule_mm / sx, nodule_mm / sz
print(f"a {nodule_mm} mm nodule: {across:.1f} voxels across, {deep:.1f} slices deep")
assert across > deep

# %% [markdown]
# ## 3. Millimetres <-> voxels
#
# A voxel (index, row, col) = (z, y, x) sits at `xyz = origin + D @ (cri * spacing)`, where
# `cri` is the same index reversed to (col, row, index) and `D`'s columns are the patient
# directions of the three index axes. The inverse solves for `cri`. Here `D` is a 37° rotation
# about a tilted axis times a mirror: we convert both ways and compare with SimpleITK.

# %%
axis = np.array([1.0, 2.0, 3.0]) / np.sqrt(14.0)
k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
angle = np.radians(37.0)
rotation = np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)  # Rodrigues
D = rotation @ np.diag([-1.0, 1.0, 1.0])  # rotated and mirrored
origin, spacing = np.array([-120.5, 33.0, -301.25]), np.array([0.7, 0.8, 2.5])
assert np.allclose(D @ D.T, np.eye(3)) and not np.allclose(D, D.T)

irc = np.array([[10.0, 20.0, 30.0], [0.0, 0.0, 0.0], [3.5, 7.25, 1.0]])
xyz = irc_to_xyz(irc, origin, spacing, D)
back = xyz_to_irc(xyz, origin, spacing, D)
assert np.allclose(back, irc, atol=1e-9)  # voxels -> mm -> voxels

image = sitk.Image(40, 30, 20, sitk.sitkInt16)  # sitk sizes are (x, y, z)
image.SetOrigin(origin.tolist())
image.SetSpacing(spacing.tolist())
image.SetDirection(D.ravel().tolist())
for p_irc, p_xyz in zip(irc, xyz, strict=True):
    itk_xyz = image.TransformContinuousIndexToPhysicalPoint(p_irc[::-1].tolist())
    itk_cri = image.TransformPhysicalPointToContinuousIndex(p_xyz.tolist())
    assert np.allclose(p_xyz, itk_xyz) and np.allclose(p_irc, itk_cri[::-1])
print("voxel (10, 20, 30) is at", np.round(xyz[0], 3), "mm: SimpleITK agrees both ways")

# The book's xyz2irc computes (xyz - origin) @ inv(D): that is D^-T, not D^-1.
book = ((xyz[0] - origin) @ np.linalg.inv(D) / spacing)[::-1]
print("book's formula with this D:", np.round(book, 2), "instead of", irc[0])
assert not np.allclose(book, irc[0], atol=0.5)
flip = np.diag([-1.0, -1.0, 1.0])  # LUNA16-style: flips only, a symmetric matrix
xyz_flip = irc_to_xyz(irc[0], origin, spacing, flip)
assert np.allclose(((xyz_flip - origin) @ np.linalg.inv(flip) / spacing)[::-1], irc[0])

# %% [markdown]
# ## 4. A nodule, found from its millimetres
#
# `annotations.csv` gives each nodule's centre in millimetres and its diameter. We convert the
# centre to a voxel of its own series (some synthetic series have flipped x and y, or a flipped
# z, exactly to catch a conversion that ignores the direction), and draw the slice with a
# circle of the nodule's diameter, converted to pixels with that series' spacing.

# %%
annotations = sorted(read_annotations(root), key=lambda a: -a.diameter_mm)
fig, axes = plt.subplots(1, 3, figsize=(11, 3.9), layout="constrained")
for ax, nodule in zip(axes, annotations, strict=False):
    s = load_series(paths[nodule.series_uid])
    i, r, c = s.xyz_to_irc(nodule.center_xyz, rounded=True)
    centre_hu = float(s.hu[i, r - 1 : r + 2, c - 1 : c + 2].mean())
    assert centre_hu > -700, (nodule, centre_hu)  # lung is ~-850: the voxel is on the nodule
    ax.imshow(clip_hu(s.hu[i]), cmap="gray", vmin=-1000, vmax=400)
    ax.add_patch(
        Circle((c, r), nodule.diameter_mm / 2 / s.spacing_xyz[0] + 2, fill=False, color="tab:red")
    )
    flips = "".join(a for a, v in zip("xyz", np.diag(s.direction), strict=True) if v < 0) or "none"
    ax.set_title(f"{nodule.diameter_mm:.1f} mm, slice {i}, flipped: {flips}", fontsize=9)
    ax.axis("off")
for ax in axes[len(annotations) :]:
    ax.remove()  # fewer nodules than panels in a small set
save(fig, "nodule_slices.png")

# %% [markdown]
# ## 5. The same series as DICOM
#
# Scanners write one DICOM file per slice. Each stores integers and says how to turn them into
# HU (`HU = stored * RescaleSlope + RescaleIntercept`), where the slice sits
# (ImagePositionPatient) and how it is oriented (ImageOrientationPatient). The reader sorts the
# slices along the slice normal, not by file name: we write them shuffled.

# %%
small = CtSeries(hu[:6, :40, :40].copy(), series.origin_xyz, series.spacing_xyz, rotation, uid0)
files = write_dicom_series(OUT / "dicom", small, slope=1.0, intercept=-1024.0)
from_dicom = load_dicom_series(OUT / "dicom")
print(f"{len(files)} DICOM files, first file on disk: {files[0].name}; stored value = HU + 1024")
assert np.array_equal(from_dicom.hu, small.hu)
assert np.allclose(from_dicom.direction, rotation, atol=1e-5)
assert np.allclose(from_dicom.origin_xyz, small.origin_xyz, atol=1e-4)

# DICOM's slice axis is always row x column, a right-handed frame. Our mirrored D is
# left-handed: written and read back, the slices come in the opposite order, and every voxel
# is still at the same millimetres.
mirrored = CtSeries(small.hu, small.origin_xyz, small.spacing_xyz, D, uid0)
write_dicom_series(OUT / "dicom_mirrored", mirrored)
flipped = load_dicom_series(OUT / "dicom_mirrored")
assert np.array_equal(flipped.hu, mirrored.hu[::-1])
assert np.allclose(flipped.irc_to_xyz([0, 7, 9]), mirrored.irc_to_xyz([5, 7, 9]), atol=1e-4)


# %% [markdown]
# ## 6. Candidates: the imbalance, and chips from a cache
#
# LUNA16's `candidates.csv` lists 551,065 points that a detector found suspicious; 1,351 are
# nodules. Most false ones are vessels, whose cross-sections look like nodules in one slice.
# Training cuts a chip (32 x 48 x 48 voxels in the book) around each candidate; decoding a
# whole series for every chip is slow, so chips are cached on disk, keyed by the source file's
# size and modification time so that a changed volume is re-read.

# %%
candidates = read_candidates(root)
nodules = [c for c in candidates if c.is_nodule]
print(
    f"{len(candidates)} candidates, {len(nodules)} nodules: {len(candidates) / len(nodules):.0f} per nodule"
)
assert len(candidates) > 30 * len(nodules)
always_no = 1 - len(nodules) / len(candidates)
print(f"a classifier that always says 'no nodule' is {always_no:.1%} accurate")  # lesson 27

cache = ChipCache(OUT / "chips")
size = (16, 24, 24)
chips = np.stack([cache.get(paths[c.series_uid], c.center_xyz, size) for c in candidates])
centre_hu = chips[:, 7:9, 11:13, 11:13].mean(axis=(1, 2, 3))  # (N,) the 2x2x2 centre
label = np.array([c.is_nodule for c in candidates])
assert cache.misses == len(candidates) and cache.hits == 0
cache.get(paths[nodules[0].series_uid], nodules[0].center_xyz, size)
assert cache.hits == 1  # the second time comes from disk

# A threshold on the centre's HU: set low enough to catch every nodule, it also fires on
# the vessels and the chest wall. Intensity alone does not separate them.
threshold = centre_hu[label].min()
false_alarms = int((centre_hu[~label] >= threshold).sum())
print(
    f"threshold {threshold:.0f} HU finds all {label.sum()} nodules and {false_alarms} false candidates"
)
assert false_alarms >= 1  # lesson 27 measures how far intensity gets

# The hardest false candidate: bright at the centre, lung around it (a vessel, usually).
contrast = np.where(label, -np.inf, centre_hu - chips[:, 6:10, 6:18, 6:18].mean(axis=(1, 2, 3)))
vessel = candidates[int(contrast.argmax())]
fig, axes = plt.subplots(2, 4, figsize=(10, 5), layout="constrained")
for row, (cand, name) in enumerate([(nodules[0], "nodule"), (vessel, "false candidate")]):
    chip = cache.get(paths[cand.series_uid], cand.center_xyz, size)  # (D, H, W)
    for ax, z in zip(axes[row], (2, 6, 8, 12), strict=True):
        ax.imshow(chip[z], cmap="gray", vmin=-1000, vmax=400)
        ax.set_title(f"{name}, slice {z - 8:+d}", fontsize=8)
        ax.axis("off")
save(fig, "chips.png")
cache.close()
