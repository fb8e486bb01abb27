"""A synthetic LUNA16 in the real formats: MetaImage series, candidates and annotations.

LUNA16 is 120 GB behind a registration page, so torchdojo writes a seeded twin that the same
loaders read: ``subset0/<uid>.mhd`` + ``.raw`` (int16 HU; per-series spacing, origin and a
direction matrix, some with flipped axes), ``candidates.csv`` (LUNA16's columns, millimetres)
with many false candidates per nodule, ``annotations.csv`` with diameters, ``malignancy.csv``
and ``nodules_truth.csv`` (each nodule's kind, spiculation and malignancy: not in LUNA16).

The anatomy, in Hounsfield units: air -1000 (and -3024 outside the scanner's field of view on
some series, as real scans have), fat -100, soft tissue 20-50, lungs -850, bone 300-1000, and
vessels as branching tubes of 0.5-2.8 mm radius: their cross-sections and forks are the hard
negatives, nodule-sized and nodule-bright. Nodules are 3-30 mm (median ~8; at most 1.5 lung
half-widths, so ~21 mm in 96 x 96 slices), solid (~0-80 HU) or ground-glass (~-600 HU), round, lobulated or spiculated; malignancy follows a noisy logistic
of size and spiculation, so no single feature decides it. Everything is drawn in patient
millimetres, then blurred (partial volume) and noised.

Taught in lessons/26_ct_volumes.py. Recipes: nodule_classifier and the other lung-CT recipes.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from torchdojo.data.ct import Candidate, CtSeries, require_volume

UID_ROOT = "1.3.6.1.4.1.14519.5.2.1.6279"  # LUNA16's prefix; the tail marks it synthetic
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Nodule:
    """One drawn nodule, in patient millimetres."""

    center_xyz: tuple[float, float, float]
    diameter_mm: float
    kind: str  # "solid" | "ground-glass"
    spiculation: float  # 0 = smooth .. 1 = many long spikes
    malignant: bool


@dataclass
class _Scan:
    """A canonical (identity-direction) scan being drawn: grid, masks, objects."""

    shape: tuple[int, int, int]  # (Z, Y, X)
    spacing: np.ndarray  # (3,) x, y, z mm
    origin: np.ndarray  # (3,) x, y, z mm of voxel (0, 0, 0)
    hu: np.ndarray = field(init=False)
    lungs: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)  # centre, semi-axes
    segments: list[tuple[np.ndarray, np.ndarray, float]] = field(default_factory=list)
    forks: list[np.ndarray] = field(default_factory=list)
    nodules: list[Nodule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.hu = np.full(self.shape, -1000.0, dtype=np.float32)

    @property
    def extent(self) -> np.ndarray:
        """Field of view along x, y, z in mm."""
        return self.spacing * np.array(self.shape[::-1])

    def axes(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World x, y, z of every voxel, broadcastable to (Z, Y, X)."""
        z, y, x = (np.arange(n, dtype=np.float32) for n in self.shape)
        return (
            (self.origin[0] + x * self.spacing[0])[None, None, :],
            (self.origin[1] + y * self.spacing[1])[None, :, None],
            (self.origin[2] + z * self.spacing[2])[:, None, None],
        )

    def box(self, center: np.ndarray, radius: float) -> tuple[tuple[slice, ...], list[np.ndarray]]:
        """Voxel slices of the cube ``center +- radius`` and the world x, y, z inside it."""
        lo = np.floor((center - radius - self.origin) / self.spacing).astype(int)
        hi = np.ceil((center + radius - self.origin) / self.spacing).astype(int) + 1
        size = np.array(self.shape[::-1])
        lo, hi = np.clip(lo, 0, size), np.clip(hi, 0, size)
        index = (slice(lo[2], hi[2]), slice(lo[1], hi[1]), slice(lo[0], hi[0]))
        coords = [
            (self.origin[a] + np.arange(lo[a], hi[a]) * self.spacing[a]).astype(np.float32)
            for a in range(3)
        ]
        return index, [coords[0][None, None, :], coords[1][None, :, None], coords[2][:, None, None]]

    def inside(self, xyz: np.ndarray, margin_vox: float = 1.0) -> bool:
        """Whether ``xyz`` lies within the grid, ``margin_vox`` voxels from its faces."""
        idx = (xyz - self.origin) / self.spacing
        return bool(
            np.all(idx >= margin_vox) and np.all(idx <= np.array(self.shape[::-1]) - 1 - margin_vox)
        )

    def lung_depth(self, xyz: np.ndarray) -> float:
        """Smallest normalized ellipsoid radius of ``xyz`` over the lungs (< 1 inside one)."""
        return min(float(np.linalg.norm((xyz - c) / s)) for c, s in self.lungs)


# ---------------------------------------------------------------- anatomy


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    field_ = gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field_ / (field_.std() + 1e-6)


def _draw_body(scan: _Scan, rng: np.random.Generator) -> None:
    """Body (fat rim, soft tissue), spine, ribs and two lungs."""
    x, y, z = scan.axes()
    lx, ly, lz = scan.extent
    cx, cy, cz = scan.origin + scan.extent / 2
    ax, ay = 0.46 * lx * rng.uniform(0.95, 1.0), 0.40 * ly * rng.uniform(0.95, 1.0)
    rho = np.sqrt(((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2)  # (1, Y, X)
    texture = _smooth_noise(rng, scan.shape, 1.5)
    body = np.broadcast_to(rho < 1.0, scan.shape)
    scan.hu[body] = (35.0 + 8.0 * texture)[body]
    fat = np.broadcast_to((rho > 0.88) & (rho < 1.0), scan.shape)
    scan.hu[fat] = (-100.0 + 10.0 * texture)[fat]
    _draw_bones(scan, rng, rho, (cx, cy, ax, ay))
    for side in (-1, 1):
        center = np.array(
            [cx + side * 0.22 * lx, cy - 0.03 * ly, cz + rng.uniform(-0.05, 0.05) * lz]
        )
        semi = np.array([0.17 * lx, 0.27 * ly, 0.62 * lz]) * rng.uniform(0.92, 1.05, 3)
        scan.lungs.append((center, semi))
        inside = (
            ((x - center[0]) / semi[0]) ** 2
            + ((y - center[1]) / semi[1]) ** 2
            + ((z - center[2]) / semi[2]) ** 2
        ) < 1.0
        scan.hu[inside] = (-850.0 + 15.0 * texture)[inside]


def _draw_bones(
    scan: _Scan, rng: np.random.Generator, rho: np.ndarray, body: tuple[float, ...]
) -> None:
    """A vertebral body behind the lungs and rib arcs in the chest wall, every ~20 mm."""
    x, y, z = scan.axes()
    cx, cy, ax, ay = body
    r_spine = 0.09 * ax
    d = np.sqrt((x - cx) ** 2 + (y - (cy + 0.72 * ay)) ** 2)  # (1, Y, X)
    spine = np.broadcast_to(d < r_spine, scan.shape)
    scan.hu[spine] = 300.0 + 600.0 * np.broadcast_to(d > 0.7 * r_spine, scan.shape)[spine]
    phase = rng.uniform(0, 20.0)
    rib_z = np.abs(((z - phase) % 20.0) - 10.0) < 2.0  # (Z, 1, 1) bands 4 mm thick
    angle = np.arctan2(y - cy, x - cx)
    lateral = np.abs(np.cos(angle)) > 0.35
    ribs = rib_z & (rho > 0.8) & (rho < 0.87) & lateral
    scan.hu[ribs] = 700.0


def _draw_vessels(scan: _Scan, rng: np.random.Generator) -> None:
    """Two branching vessel trees per lung, each branch a chain of jittered segments."""
    for center, semi in scan.lungs:
        medial = -np.sign(center[0] - (scan.origin[0] + scan.extent[0] / 2))
        for tree in range(6):  # hilum trees: up, down, and out towards the periphery
            up = (-1, 1)[tree % 2]
            root = center + np.array(
                [medial * 0.6 * semi[0], rng.uniform(-0.3, 0.3) * semi[1], 0.0]
            )
            heading = np.array([-medial * rng.uniform(0.2, 0.8), rng.uniform(-0.5, 0.5), up * 1.0])
            _branch(
                scan, rng, root, heading, rng.uniform(1.6, 2.8), float(semi[:2].mean()), depth=0
            )
    for start, end, radius in scan.segments:
        _render_tube(scan, start, end, radius, rng)


def _branch(
    scan: _Scan,
    rng: np.random.Generator,
    start: np.ndarray,
    heading: np.ndarray,
    radius: float,
    scale: float,
    depth: int,
) -> None:
    heading = heading / np.linalg.norm(heading)
    length = rng.uniform(0.5, 0.9) * scale * (0.8**depth)
    point = start
    for _ in range(3):
        heading = heading + rng.normal(0, 0.2, 3)
        heading /= np.linalg.norm(heading)
        nxt = point + heading * length / 3
        if scan.lung_depth(nxt) > 0.97:
            return
        scan.segments.append((point, nxt, radius))
        point = nxt
    if depth >= 4 or radius < 0.6:
        return
    scan.forks.append(point)
    for sign in (-1, 1):
        turn = _random_perpendicular(rng, heading) * math.tan(math.radians(rng.uniform(25, 45)))
        _branch(
            scan,
            rng,
            point,
            heading + sign * turn,
            radius * rng.uniform(0.68, 0.82),
            scale,
            depth + 1,
        )


def _random_perpendicular(rng: np.random.Generator, v: np.ndarray) -> np.ndarray:
    w = np.cross(v, rng.normal(size=3))
    return w / (np.linalg.norm(w) + 1e-9)


def _render_tube(
    scan: _Scan, a: np.ndarray, b: np.ndarray, radius: float, rng: np.random.Generator
) -> None:
    """Blend a capsule of ``radius`` mm from ``a`` to ``b`` into the lungs, blood ~40 HU."""
    index, (x, y, z) = scan.box((a + b) / 2, float(np.linalg.norm(b - a)) / 2 + radius + 1.0)
    if any(s.stop <= s.start for s in index):
        return
    ab = (b - a).astype(np.float32)
    t = ((x - a[0]) * ab[0] + (y - a[1]) * ab[1] + (z - a[2]) * ab[2]) / float(ab @ ab + 1e-9)
    t = np.clip(t, 0.0, 1.0)
    dist = np.sqrt(
        (x - a[0] - t * ab[0]) ** 2 + (y - a[1] - t * ab[1]) ** 2 + (z - a[2] - t * ab[2]) ** 2
    )
    weight = np.clip(radius - dist + 0.5, 0.0, 1.0)  # 1 mm soft edge: partial volume
    region = scan.hu[index]
    lung = region < -500  # vessels show inside the lungs only
    target = 40.0 + rng.normal(0, 8)
    scan.hu[index] = np.where(lung, region + weight * (target - region), region)


# ---------------------------------------------------------------- nodules


def _draw_nodules(scan: _Scan, rng: np.random.Generator) -> None:
    count = 1 + min(int(rng.poisson(0.9)), 3)
    for _ in range(count * 20):
        if len(scan.nodules) == count:
            break
        lung_center, semi = scan.lungs[int(rng.integers(len(scan.lungs)))]
        dmax = min(30.0, 1.5 * float(semi[:2].min()))
        diameter = float(np.clip(np.exp(rng.normal(math.log(8.0), 0.55)), 3.0, max(dmax, 3.0)))
        direction = rng.normal(size=3)
        depth = rng.uniform(0.0, 0.85) ** 0.7
        center = lung_center + semi * direction / np.linalg.norm(direction) * depth
        if not scan.inside(center, margin_vox=2.0):
            continue
        if any(
            np.linalg.norm(center - np.array(n.center_xyz)) < (diameter + n.diameter_mm) / 2 + 4
            for n in scan.nodules
        ):
            continue
        scan.nodules.append(_render_nodule(scan, rng, center, diameter))


def _render_nodule(
    scan: _Scan, rng: np.random.Generator, center: np.ndarray, diameter: float
) -> Nodule:
    """A lobulated sphere, plus spikes for spiculated ones; solid or ground-glass."""
    kind = "ground-glass" if rng.random() < 0.25 and diameter >= 6.0 else "solid"
    spiculation = float(rng.beta(1.6, 2.4))
    radius = diameter / 2
    index, (x, y, z) = scan.box(center, radius * 1.9 + 1.0)
    dx, dy, dz = x - center[0], y - center[1], z - center[2]
    rho = np.sqrt(dx**2 + dy**2 + dz**2) + 1e-6
    u = [dx / rho, dy / rho, dz / rho]
    surface = np.ones_like(rho)
    for _ in range(3):  # lobulation: low-order bumps
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        cos = u[0] * v[0] + u[1] * v[1] + u[2] * v[2]
        surface = surface + (0.05 + 0.08 * spiculation) * np.cos(
            rng.integers(2, 5) * np.arccos(np.clip(cos, -1, 1))
        )
    weight = np.clip((radius * surface - rho) / 0.7 + 0.5, 0.0, 1.0)
    for _ in range(int(round(14 * spiculation**1.5))):  # spikes: thin cones out of the surface
        v = rng.normal(size=3)
        v /= np.linalg.norm(v)
        along = dx * v[0] + dy * v[1] + dz * v[2]
        across = np.sqrt(np.maximum(rho**2 - along**2, 0.0))
        reach = radius * (1.0 + rng.uniform(0.3, 0.9) * spiculation)
        width = 0.9 * (1.0 - np.clip(along / reach, 0.0, 1.0))
        spike = np.clip((width - across) / 0.5 + 0.5, 0.0, 1.0) * (along > 0) * (along < reach)
        weight = np.maximum(weight, spike)
    target = rng.uniform(-20, 80) if kind == "solid" else rng.uniform(-620, -450)
    grain = (25.0 if kind == "solid" else 40.0) * rng.standard_normal(weight.shape).astype(
        np.float32
    )
    region = scan.hu[index]
    scan.hu[index] = region + weight * (target + grain - region)
    malignant = malignancy_logit(diameter, spiculation) + rng.normal(0.0, MALIGNANCY_NOISE) > 0
    xyz = (float(center[0]), float(center[1]), float(center[2]))
    return Nodule(xyz, round(diameter, 2), kind, round(spiculation, 3), bool(malignant))


MALIGNANCY_NOISE = 0.6  # sd of the logistic's noise: a nodule is malignant when logit + noise > 0


def malignancy_logit(diameter_mm: float, spiculation: float) -> float:
    """The noise-free malignancy score the twin draws its labels from (a nodule is malignant
    when this plus N(0, ``MALIGNANCY_NOISE``) is above 0): size and spiculation, as
    radiologists weigh them. Its P(malignant) = Phi(logit / noise) is a monotone function of
    it, so this is the best possible score (the ceiling of any classifier's ROC AUC).
    """
    size_term = (diameter_mm - 10.0) / 5.0
    return 1.6 * size_term + 5.0 * (spiculation - 0.4)


def malignancy_probabilities(root: Path, candidates: Sequence[Candidate]) -> torch.Tensor | None:
    """The synthetic twin's own P(malignant) of each candidate's nodule (the nearest drawn
    nodule of its series in ``nodules_truth.csv``), or None where ``root`` has no such file
    (real data) or a series has no drawn nodule."""
    path = root / "nodules_truth.csv"
    if not path.is_file():
        return None
    truth: dict[str, list[tuple[np.ndarray, float]]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            centre = np.array([float(row[k]) for k in ("coordX", "coordY", "coordZ")])
            logit = malignancy_logit(float(row["diameter_mm"]), float(row["spiculation"]))
            truth.setdefault(row["seriesuid"], []).append((centre, logit))
    logits = []
    for c in candidates:
        drawn = truth.get(c.series_uid)
        if not drawn:
            return None
        distances = [
            float(np.linalg.norm(centre - np.asarray(c.center_xyz))) for centre, _ in drawn
        ]
        logits.append(drawn[int(np.argmin(distances))][1])
    return torch.special.ndtr(torch.tensor(logits) / MALIGNANCY_NOISE)


# ---------------------------------------------------------------- candidates


def _negatives(scan: _Scan, rng: np.random.Generator, count: int) -> list[np.ndarray]:
    """False candidates: vessels (most), forks, lung tissue, pleura, chest wall."""
    lengths = np.array([np.linalg.norm(b - a) * r**2 for a, b, r in scan.segments])
    probs = lengths / lengths.sum() if len(lengths) else None
    out: list[np.ndarray] = []
    for _ in range(count * 30):
        if len(out) == count:
            break
        kind = rng.random()
        if kind < 0.55 and probs is not None:
            a, b, r = scan.segments[int(rng.choice(len(scan.segments), p=probs))]
            point = a + rng.random() * (b - a) + rng.normal(0, 0.3 * r, 3)
        elif kind < 0.65 and scan.forks:
            point = scan.forks[int(rng.integers(len(scan.forks)))] + rng.normal(0, 0.5, 3)
        else:
            center, semi = scan.lungs[int(rng.integers(len(scan.lungs)))]
            direction = rng.normal(size=3)
            depth = rng.uniform(0.0, 0.9) if kind < 0.8 else rng.uniform(0.95, 1.08)
            point = center + semi * direction / np.linalg.norm(direction) * depth
        if not scan.inside(point):
            continue
        if any(
            np.linalg.norm(point - np.array(n.center_xyz)) < n.diameter_mm / 2 + 3
            for n in scan.nodules
        ):
            continue
        out.append(point)
    return out


def _positives(rng: np.random.Generator, nodules: list[Nodule]) -> list[np.ndarray]:
    """One candidate near each nodule's centre (sometimes two, as in LUNA16)."""
    out = []
    for n in nodules:
        for _ in range(1 + int(rng.random() < 0.15)):
            out.append(
                np.array(n.center_xyz)
                + np.clip(
                    rng.normal(0, n.diameter_mm / 16, 3), -n.diameter_mm / 5, n.diameter_mm / 5
                )
            )
    return out


# ---------------------------------------------------------------- one series on disk


def _geometry(
    k: int, rng: np.random.Generator, shape: tuple[int, int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Spacing, canonical origin and axis flips of series ``k``: identity, x+y or z flipped."""
    xy = rng.uniform(0.6, 0.9)
    spacing = np.array([xy, xy, rng.uniform(1.0, 2.5)])
    extent = spacing * np.array(shape[::-1])
    origin = np.array(
        [-extent[0] / 2, -extent[1] / 2 + rng.uniform(-20, 20), -rng.uniform(80, 300)]
    )
    flips = np.array([k % 3 == 1, k % 3 == 1, k % 3 == 2])
    return spacing, origin, flips


def _write_series(
    path: Path, scan: _Scan, flips: np.ndarray, rng: np.random.Generator, fov_padding: bool
) -> None:
    """Blur, noise and store ``scan`` as int16 MetaImage with its axes flipped per ``flips``."""
    from scipy.ndimage import gaussian_filter

    sitk = require_volume("SimpleITK")
    hu = gaussian_filter(scan.hu, sigma=0.6)
    hu += rng.normal(0, rng.uniform(15, 35), hu.shape).astype(np.float32)
    if fov_padding:  # outside the scanner's circular field of view: -3024 as real scans store
        x, y, _ = scan.axes()
        cx, cy = scan.origin[:2] + scan.extent[:2] / 2
        circle = 0.5 * 0.97 * math.hypot(*scan.extent[:2])
        hu = np.where(np.broadcast_to(np.hypot(x - cx, y - cy) > circle, hu.shape), -3024.0, hu)
    stored = np.flip(hu, axis=tuple(2 - a for a in range(3) if flips[a]))  # (Z, Y, X)
    origin = scan.origin + flips * (np.array(scan.shape[::-1]) - 1) * scan.spacing
    image = sitk.GetImageFromArray(
        np.ascontiguousarray(np.clip(np.rint(stored), -32768, 32767).astype(np.int16))
    )
    image.SetSpacing(scan.spacing.tolist())
    image.SetOrigin(origin.tolist())
    image.SetDirection(np.diag(np.where(flips, -1.0, 1.0)).ravel().tolist())
    sitk.WriteImage(image, str(path), useCompression=False)


def _make_series(
    k: int, seed: int, shape: tuple[int, int, int], negatives_per_nodule: int, subset: Path
) -> tuple[str, list[Nodule], list[np.ndarray], list[np.ndarray]]:
    """Draw series ``k`` of the set, write it under ``subset``, return its objects."""
    rng = np.random.default_rng([seed, k])
    uid = f"{UID_ROOT}.{9000 + seed}.{100001 + k}"
    spacing, origin, flips = _geometry(k, rng, shape)
    scan = _Scan(shape, spacing, origin)
    _draw_body(scan, rng)
    _draw_vessels(scan, rng)
    _draw_nodules(scan, rng)
    positives = _positives(rng, scan.nodules)
    negatives = _negatives(scan, rng, negatives_per_nodule * max(len(scan.nodules), 1))
    _write_series(subset / f"{uid}.mhd", scan, flips, rng, fov_padding=k % 2 == 0)
    return uid, scan.nodules, positives, negatives


def write_synthetic_luna(
    root: str | Path,
    *,
    n_series: int = 8,
    seed: int = 0,
    shape: tuple[int, int, int] = (48, 96, 96),
    negatives_per_nodule: int = 100,
) -> Path:
    """Write a seeded synthetic LUNA16 under ``root`` and return ``root``.

    A folder already written with the same arguments (``synthetic.json``) is reused as it is.

    Args:
        root: Output folder: ``subset0/<uid>.mhd``/``.raw``, ``candidates.csv``,
            ``annotations.csv``, ``malignancy.csv``, ``nodules_truth.csv``.
        n_series: Number of CT series (1-4 nodules each, ~1.8 on average).
        seed: Seeds everything; the same seed writes the same bytes.
        shape: Voxels (Z, Y, X) of each series.
        negatives_per_nodule: False candidates per nodule (LUNA16 has ~400; 100 keeps the
            set small while "always say no" still scores 99 % accuracy).
    """
    root = Path(root)
    params = {
        "version": FORMAT_VERSION,
        "n_series": n_series,
        "seed": seed,
        "shape": list(shape),
        "negatives_per_nodule": negatives_per_nodule,
    }
    marker = root / "synthetic.json"
    if marker.is_file() and json.loads(marker.read_text()) == params:
        return root
    marker.unlink(missing_ok=True)  # an interrupted write must not look finished
    subset = root / "subset0"
    subset.mkdir(parents=True, exist_ok=True)
    for stale in subset.glob(f"{UID_ROOT}.*"):  # series of an earlier, larger set
        stale.unlink()
    candidates, truth = [], []
    for k in range(n_series):
        uid, nodules, pos, neg = _make_series(k, seed, shape, negatives_per_nodule, subset)
        rng = np.random.default_rng([seed, k, 1])
        rows = [(uid, *p, 1) for p in pos] + [(uid, *p, 0) for p in neg]
        candidates += [rows[i] for i in rng.permutation(len(rows))]
        truth += [
            (uid, *n.center_xyz, n.diameter_mm, n.kind, n.spiculation, int(n.malignant))
            for n in nodules
        ]
    _write_tables(root, candidates, truth)
    marker.write_text(json.dumps(params))
    return root


def _write_tables(
    root: Path, candidates: Sequence[tuple[object, ...]], truth: Sequence[tuple[object, ...]]
) -> None:
    """LUNA16's two CSV files, plus malignancy and the drawn truth (not in LUNA16)."""
    xyz = ["coordX", "coordY", "coordZ"]
    _write_csv(root / "candidates.csv", ["seriesuid", *xyz, "class"], candidates)
    _write_csv(root / "annotations.csv", ["seriesuid", *xyz, "diameter_mm"], [t[:5] for t in truth])
    _write_csv(
        root / "malignancy.csv", ["seriesuid", *xyz, "malignant"], [(*t[:4], t[7]) for t in truth]
    )
    _write_csv(
        root / "nodules_truth.csv",
        ["seriesuid", *xyz, "diameter_mm", "kind", "spiculation", "malignant"],
        truth,
    )


def _write_csv(path: Path, header: list[str], rows: Sequence[tuple[object, ...]]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for row in rows:
            writer.writerow([f"{v:.6f}" if isinstance(v, float) else v for v in row])


# ---------------------------------------------------------------- DICOM out (tests, lessons)


def write_dicom_series(
    folder: str | Path, series: CtSeries, *, slope: float = 1.0, intercept: float = -1024.0
) -> list[Path]:
    """Write ``series`` as one CT DICOM file per slice (stored value = (HU - intercept) / slope).

    Files are named in a shuffled order so that a reader must sort slices by position, as real
    exports often need. The geometry (ImagePositionPatient per slice, ImageOrientationPatient,
    PixelSpacing) comes from the series' origin, direction and spacing.
    """
    pydicom = require_volume("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored = np.rint((series.hu - intercept) / slope).astype(np.int16)  # (Z, Y, X)
    series_uid = generate_uid(entropy_srcs=[series.uid, "series"])
    names = np.random.default_rng(len(series.hu)).permutation(len(series.hu))
    paths = []
    for k, pixels in enumerate(stored):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[series.uid, str(k)])
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID, ds.InstanceNumber = "CT", series_uid, k + 1
        ds.StudyInstanceUID = generate_uid(entropy_srcs=[series.uid, "study"])
        position = series.irc_to_xyz([k, 0, 0])
        ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in series.direction[:, :2].T.ravel()]
        ds.PixelSpacing = [f"{series.spacing_xyz[1]:.6f}", f"{series.spacing_xyz[0]:.6f}"]
        ds.SliceThickness = f"{series.spacing_xyz[2]:.6f}"
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:g}", f"{intercept:g}"
        ds.Rows, ds.Columns = pixels.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
        path = folder / f"slice{names[k]:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
