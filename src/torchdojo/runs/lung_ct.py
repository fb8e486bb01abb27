"""The lung-CT pipeline the four CT recipes share: data, the three trainings, the chain, the report.

*Deep Learning with PyTorch* part 2 (seed ch9-14) on LUNA16: segment every slice with a 2-D
U-Net (neighbouring slices as channels), group the mask's voxels into candidate centres
(round blobs inside the mask, or its distance peaks), tell nodules from the rest with a 3-D
CNN on a chip around each centre, and score the nodules' malignancy with the same CNN
fine-tuned on nodules.
:func:`load_ct_data` reads a LUNA16 folder or writes the seeded synthetic twin
(:func:`torchdojo.data.ct.write_synthetic_luna`) into the cache; :func:`chip_setup` and
:func:`slice_setup` build what the trainer needs; :func:`analyze_series` runs the chain on one
scan and returns its :class:`ScanReport` (nodules with millimetre positions, diameters and
probabilities); :func:`scan_figure` draws a slice through each with the mask overlaid.
Metrics and FROC live in :mod:`torchdojo.runs.ct`.
"""

from __future__ import annotations

import html
import itertools
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn
from torchmetrics import Metric

from torchdojo.data.ct import (
    Annotation,
    Candidate,
    ChipAugment,
    ChipCache,
    CtSeries,
    NoduleChips,
    RatioSampler,
    find_series,
    load_series,
    nodule_mask,
    read_annotations,
    read_candidates,
    split_series,
    write_synthetic_luna,
)
from torchdojo.data.errors import DataError
from torchdojo.engine import History, Loaders, TensorLoader, make_loader
from torchdojo.models import ModelSpec, create_model, load_bundle
from torchdojo.runs.context import RunContext
from torchdojo.runs.contract import ConfigError, Setup
from torchdojo.runs.ct import (
    Detection,
    RecallDiceLoss,
    binary_metrics,
    blob_centres,
    chip_eval_step,
    froc,
    hu_to_input,
    mask_eval_step,
    peak_centres,
    pixel_metrics,
    slice_stack,
    threshold_detections,
)
from torchdojo.utils.paths import cache_dir


# -------------------------------------------------------------------------------- data
@dataclass
class CtData:
    """A LUNA16-style folder, read: series files, candidates, annotations, the series split."""

    root: Path
    series_paths: dict[str, Path]
    candidates: list[Candidate]
    annotations: list[Annotation]
    train_uids: list[str]
    val_uids: list[str]
    cache: ChipCache
    synthetic: bool

    def nodules(self, uid: str) -> list[tuple[Sequence[float], float]]:
        """``(center_xyz, diameter_mm)`` of the annotated nodules of series ``uid``."""
        return [(a.center_xyz, a.diameter_mm) for a in self.annotations if a.series_uid == uid]


def synthetic_root(n_series: int, seed: int, shape: Sequence[int]) -> Path:
    """The cached synthetic twin with these settings, written on first use."""
    name = f"luna-synthetic-n{n_series}-s{seed}-{'x'.join(map(str, shape))}"
    root = cache_dir("ct") / name
    if not (root / "candidates.csv").is_file():
        partial = root.with_name(name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        write_synthetic_luna(partial, n_series=n_series, seed=seed, shape=tuple(shape))  # type: ignore[arg-type]
        shutil.rmtree(root, ignore_errors=True)
        partial.rename(root)
    return root


def load_ct_data(
    ctx: RunContext,
    data: str,
    *,
    n_series: int,
    shape: Sequence[int],
    val_fraction: float,
    seed: int,
) -> CtData:
    """``data="synthetic"`` (the seeded twin, cached) or a LUNA16 folder; says which it used."""
    try:
        if data == "synthetic":
            root = synthetic_root(n_series, seed, shape)
            ctx.note_data(
                f"synthetic LUNA16 twin, {n_series} series of {'x'.join(map(str, shape))} "
                f"voxels (seed {seed}): {root}"
            )
        else:
            root = Path(data).expanduser()
            ctx.note_data(f"LUNA16 folder {root}", reference=False, reason="floors are synthetic")
        paths = find_series(root)
        candidates = read_candidates(root)
        annotations = [a for a in read_annotations(root) if a.series_uid in paths]
    except DataError as err:
        raise ConfigError(str(err)) from None
    if len(paths) < 2:
        raise ConfigError(f"data={data}: {len(paths)} series found; training needs at least 2")
    train, val = split_series(list(paths), val_fraction=val_fraction, seed=seed)
    cache = ChipCache(cache_dir("ct") / "chips")
    return CtData(root, paths, candidates, annotations, train, val, cache, data == "synthetic")


# ------------------------------------------------------------------- the chip classifier
@dataclass(frozen=True)
class ChipSettings:
    """How a chip classifier (nodule or malignancy) is trained."""

    chip: tuple[int, int, int] = (24, 32, 32)
    width: int = 8
    epochs: int = 4
    batch_size: int = 32
    lr: float = 0.001
    balanced: bool = True
    ratio: int = 1
    augment: bool = True
    samples_per_epoch: int = 2000
    max_val: int = 0  # held-out chips kept (all positives + random others); 0 = all
    seed: int = 0


def at_most(candidates: list[Candidate], limit: int, seed: int) -> list[Candidate]:
    """All nodules and a seeded random share of the others, ``limit`` in all (0: everything):
    LUNA16's held-out subsets hold ~100,000 candidates."""
    if limit <= 0 or len(candidates) <= limit:
        return candidates
    nodules = [c for c in candidates if c.is_nodule]
    others = [c for c in candidates if not c.is_nodule]
    keep = np.random.default_rng(seed).permutation(len(others))[: max(limit - len(nodules), 0)]
    return nodules + [others[i] for i in sorted(keep)]


def chip_setup(
    data: CtData, s: ChipSettings, *, label: Literal["nodule", "malignant"] = "nodule"
) -> Setup:
    """Chips of the training series (balanced ``ratio`` negatives per positive, or as they
    come), all candidates of the held-out series for validation; LunaModel, AdamW, cosine."""
    chosen = data.candidates
    if label == "malignant":  # malignancy is scored on nodules with a known verdict
        chosen = [c for c in chosen if c.is_nodule and c.malignant is not None]
    train = [c for c in chosen if c.series_uid in set(data.train_uids)]
    val = at_most([c for c in chosen if c.series_uid in set(data.val_uids)], s.max_val, s.seed)
    augment = ChipAugment() if s.augment else None
    common = {"series_paths": data.series_paths, "cache": data.cache, "size_irc": s.chip}
    train_set = NoduleChips(train, augment=augment, label=label, **common)  # type: ignore[arg-type]
    val_set = NoduleChips(val, label=label, **common)  # type: ignore[arg-type]
    try:
        sampler = RatioSampler(
            train_set.labels,
            ratio=s.ratio if s.balanced else 0,
            num_samples=s.samples_per_epoch,
            seed=s.seed,
        )
    except DataError as err:
        raise ConfigError(str(err)) from None
    loaders = Loaders(
        make_loader(train_set, batch_size=s.batch_size, seed=s.seed, sampler=sampler),
        make_loader(val_set, batch_size=s.batch_size, shuffle=False, seed=s.seed),
    )
    kwargs = {"in_channels": 1, "num_classes": 2, "width": s.width}
    model = create_model("luna-cnn", **kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=1e-4)
    steps = max(s.epochs * len(loaders.train), 1)  # type: ignore[arg-type]
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    classes = ["benign", "malignant"] if label == "malignant" else ["candidate", "nodule"]
    spec = ModelSpec(
        "luna-cnn",
        kwargs,
        [1, *s.chip],
        [0.0],
        [1000.0],
        classes,
        task="ct-chip-classification",
        preprocess={"hu_clip": [-1000, 1000], "normalize": "hu / 1000", "chip_irc": list(s.chip)},
    )
    return Setup(
        model, loaders, nn.CrossEntropyLoss(), optimizer, scheduler, s.epochs, classes, spec
    )


def train_chips(ctx: RunContext, setup: Setup, *, seed: int, folder: str | None = None) -> History:
    """Train a chip classifier with precision/recall/F1/AUC on the held-out chips; ``folder``
    keeps a second model's checkpoints and log apart (the end-to-end run trains three)."""
    return _fit_in(ctx, setup, binary_metrics(), chip_eval_step, "val_auc", seed, folder)


def _fit_in(
    ctx: RunContext,
    setup: Setup,
    metrics: Mapping[str, Metric],
    eval_step: Any,
    monitor: str,
    seed: int,
    folder: str | None,
) -> History:
    """``ctx.fit`` with checkpoints and logs under ``run_dir/folder`` when ``folder`` is given."""
    where = (
        {}
        if folder is None
        else {
            "checkpoint_dir": ctx.run_dir / folder / "checkpoints",
            "log_dir": ctx.run_dir / folder,
        }
    )
    return ctx.fit(
        setup,
        metrics=metrics,
        eval_step=eval_step,
        seed=seed,
        monitor=monitor,
        **where,  # type: ignore[arg-type]
    )


# the 8 mirror images of a (.., D, H, W) chip: every subset of its axes (the training flips)
FLIPS = tuple(dims for k in range(4) for dims in itertools.combinations((-1, -2, -3), k))


@torch.inference_mode()
def flip_average(model: nn.Module, chips: Tensor, *, flips: bool = True) -> Tensor:
    """Softmax probabilities ``(B, classes)`` of ``chips`` (B, 1, D, H, W), averaged over the
    8 mirror images when ``flips`` (test-time augmentation: 8 forward passes; the training
    flips every axis, so each mirror image is a chip the model has learned to read)."""
    views = FLIPS if flips else ((),)
    total = sum(model(chips.flip(dims) if dims else chips).softmax(1) for dims in views)
    return total / len(views)  # type: ignore[operator]


@torch.inference_mode()
def predict_chips(
    model: nn.Module,
    loader: Iterable[tuple[Tensor, Tensor]],
    *,
    radius: int = 2,
    flips: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Positive-class probabilities (averaged over the 8 mirror images when ``flips``), labels,
    and the intensity floor's score (each chip's mean HU / 1000 in its central (2r+1)^3 block)
    of every batch of ``loader``."""
    model.eval()
    probs, labels, centre = [], [], []
    for chips, y in loader:
        probs.append(flip_average(model, chips, flips=flips)[:, 1])
        labels.append(y)
        d, h, w = (n // 2 for n in chips.shape[-3:])
        block = chips[
            ...,
            d - radius : d + radius + 1,
            h - radius : h + radius + 1,
            w - radius : w + radius + 1,
        ]  # (B, 1, 2r+1, 2r+1, 2r+1)
        centre.append(block.flatten(1).mean(1))
    return torch.cat(probs), torch.cat(labels), torch.cat(centre)


def init_from_bundle(model: nn.Module, folder: str | Path) -> int:
    """Copy every weight but the head's from the model saved in ``folder`` (fine-tuning the
    nodule classifier into the malignancy model, as the book does); returns how many tensors."""
    try:
        source, _ = load_bundle(folder)
    except FileNotFoundError as err:
        raise ConfigError(str(err)) from None
    own = model.state_dict()
    body = {
        k: v
        for k, v in source.state_dict().items()
        if not k.startswith("head.") and k in own and own[k].shape == v.shape
    }
    if not body:
        raise ConfigError(f"{folder}: its model shares no weights with this one (same width?)")
    model.load_state_dict(body, strict=False)
    return len(body)


# ------------------------------------------------------------------- the slice segmenter
@dataclass(frozen=True)
class SliceSettings:
    """How the slice U-Net is trained."""

    context: int = 3
    crop: int = 64
    per_nodule: int = 8
    random_crops: int = 16
    width: int = 8
    depth: int = 3
    epochs: int = 6
    batch_size: int = 16
    lr: float = 0.002
    fn_weight: float = 8.0
    max_val_slices: int = 48
    seed: int = 0


def _nodule_voxels(series: CtSeries, annotations: Sequence[Annotation]) -> list[np.ndarray]:
    return [
        series.xyz_to_irc(a.center_xyz, rounded=True)
        for a in annotations
        if a.series_uid == series.uid
    ]


def slice_crops(
    series: CtSeries, annotations: Sequence[Annotation], s: SliceSettings, rng: np.random.Generator
) -> tuple[Tensor, Tensor]:
    """Training crops ``(N, 2c+1, crop, crop)`` and masks ``(N, 1, crop, crop)`` of one series:
    ``per_nodule`` around each nodule (random offsets), ``random_crops`` anywhere."""
    volume = hu_to_input(series.hu)  # (Z, Y, X)
    mask = torch.from_numpy(nodule_mask(series, annotations))  # (Z, Y, X)
    Z, Y, X = volume.shape
    side = min(s.crop, Y, X)
    spots = []
    for irc in _nodule_voxels(series, annotations):
        for _ in range(s.per_nodule):
            jitter = rng.integers(-side // 4, side // 4 + 1, 2)
            spots.append((irc[0] + rng.integers(-1, 2), irc[1] + jitter[0], irc[2] + jitter[1]))
    spots += [(rng.integers(Z), rng.integers(Y), rng.integers(X)) for _ in range(s.random_crops)]
    xs, ys = [], []
    for z, cy, cx in spots:
        z = int(np.clip(z, 0, Z - 1))
        y0 = int(np.clip(cy - side // 2, 0, Y - side))
        x0 = int(np.clip(cx - side // 2, 0, X - side))
        patch = volume[:, y0 : y0 + side, x0 : x0 + side]  # (Z, side, side)
        xs.append(slice_stack(patch, z, s.context))  # (2c+1, side, side)
        ys.append(mask[z, y0 : y0 + side, x0 : x0 + side][None].float())
    return torch.stack(xs), torch.stack(ys)


def val_slices(
    series: CtSeries, annotations: Sequence[Annotation], s: SliceSettings, rng: np.random.Generator
) -> tuple[Tensor, Tensor]:
    """Whole slices of a held-out series: every slice through a nodule and as many others."""
    volume = hu_to_input(series.hu)
    mask = torch.from_numpy(nodule_mask(series, annotations))
    with_nodule = mask.flatten(1).any(1).nonzero().flatten().tolist()
    others = [z for z in range(len(volume)) if z not in set(with_nodule)]
    picked = with_nodule + rng.permutation(others)[: len(with_nodule) or 1].tolist()
    xs = [slice_stack(volume, int(z), s.context) for z in picked]
    return torch.stack(xs), mask[picked][:, None].float()


def slice_setup(data: CtData, s: SliceSettings) -> Setup:
    """Crops of the training series, whole slices of the held-out ones; the slice U-Net with
    the recall-weighted Dice loss, AdamW and a one-cycle schedule."""
    rng = np.random.default_rng(s.seed)
    parts: dict[str, list[tuple[Tensor, Tensor]]] = {"train": [], "val": []}
    for split, uids in (("train", data.train_uids), ("val", data.val_uids)):
        for uid in uids:
            series = load_series(data.series_paths[uid])
            make = slice_crops if split == "train" else val_slices
            parts[split].append(make(series, data.annotations, s, rng))
    x_val = torch.cat([x for x, _ in parts["val"]])[: s.max_val_slices]
    y_val = torch.cat([y for _, y in parts["val"]])[: s.max_val_slices]
    loaders = Loaders(
        TensorLoader(
            torch.cat([x for x, _ in parts["train"]]),
            torch.cat([y for _, y in parts["train"]]),
            batch_size=s.batch_size,
            seed=s.seed,
        ),
        TensorLoader(x_val, y_val, batch_size=s.batch_size, shuffle=False),
    )
    kwargs = {
        "in_channels": 2 * s.context + 1,
        "num_classes": 1,
        "width": s.width,
        "depth": s.depth,
    }
    model = create_model("unet", **kwargs)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=1e-4)
    steps = max(s.epochs * len(loaders.train), 8)  # type: ignore[arg-type]
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=s.lr, total_steps=steps)
    spec = ModelSpec(
        "unet",
        kwargs,
        [2 * s.context + 1, s.crop, s.crop],
        [],
        [],
        ["nodule"],
        task="ct-slice-segmentation",
        preprocess={"hu_clip": [-1000, 1000], "normalize": "hu / 1000", "context": s.context},
    )
    loss = RecallDiceLoss(s.fn_weight)
    return Setup(model, loaders, loss, optimizer, scheduler, s.epochs, ["nodule"], spec)


def train_slices(ctx: RunContext, setup: Setup, *, seed: int, folder: str | None = None) -> History:
    """Train the slice U-Net with pixel precision, recall and Dice on the held-out slices."""
    return _fit_in(ctx, setup, pixel_metrics(), mask_eval_step, "val_dice", seed, folder)


# ------------------------------------------------------------------------- the chain
@torch.inference_mode()
def segment_volume(model: nn.Module, hu: np.ndarray, *, context: int, batch: int = 8) -> np.ndarray:
    """The nodule probability of every voxel (Z, Y, X), one slice stack at a time."""
    model.eval()
    volume = hu_to_input(hu)
    out = []
    for start in range(0, len(volume), batch):
        stacks = torch.stack(
            [slice_stack(volume, z, context) for z in range(start, min(start + batch, len(volume)))]
        )  # (b, 2c+1, Y, X)
        out.append(torch.sigmoid(model(stacks))[:, 0])  # (b, Y, X)
    return torch.cat(out).numpy()


@dataclass
class Finding:
    """One candidate of the chain: position (mm and voxels), size and the two probabilities."""

    center_xyz: tuple[float, float, float]
    center_irc: tuple[int, int, int]
    diameter_mm: float
    nodule_prob: float
    malignancy_prob: float | None = None


@dataclass
class ScanReport:
    """What the chain found in one scan: every candidate, and which it calls nodules."""

    uid: str
    findings: list[Finding] = field(default_factory=list)
    nodule_threshold: float = 0.5

    @property
    def nodules(self) -> list[Finding]:
        """The findings at or above the nodule threshold, most probable first."""
        found = [f for f in self.findings if f.nodule_prob >= self.nodule_threshold]
        return sorted(found, key=lambda f: -f.nodule_prob)

    def detections(self) -> list[Detection]:
        """Every finding as a FROC detection scored by its nodule probability."""
        return [Detection(f.center_xyz, f.nodule_prob) for f in self.findings]


@torch.inference_mode()
def chip_probs(
    model: nn.Module,
    series: CtSeries,
    cache: ChipCache,
    centers_xyz: Sequence[Sequence[float]],
    chip: Sequence[int],
    *,
    flips: bool = False,
) -> list[float]:
    """The classifier's positive probability for a chip around each centre (averaged over
    the chip's 8 mirror images when ``flips``, as :func:`flip_average`)."""
    model.eval()
    if not centers_xyz:
        return []
    chips = torch.stack(
        [torch.from_numpy(cache.get(series, c, chip) / 1000.0).float()[None] for c in centers_xyz]
    )  # (N, 1, D, H, W)
    return [float(p) for b in chips.split(32) for p in flip_average(model, b, flips=flips)[:, 1]]


@dataclass(frozen=True)
class ChainSettings:
    """Thresholds of the chain."""

    context: int = 3
    chip: tuple[int, int, int] = (24, 32, 32)
    mask_threshold: float = 0.5
    min_radius_mm: float = 2.0  # grouping "peaks": mask points at least this deep
    nodule_threshold: float = 0.5
    flips: bool = False  # classifier and malignancy: average over the chip's 8 mirror images
    grouping: Literal["blobs", "peaks"] = "peaks"  # blob_centres in the mask, or its depth peaks


def analyze_series(
    series: CtSeries,
    segmenter: nn.Module,
    classifier: nn.Module,
    malignancy: nn.Module | None,
    cache: ChipCache,
    s: ChainSettings,
) -> tuple[ScanReport, np.ndarray]:
    """Segmentation -> grouping -> nodule classification -> malignancy on one scan; returns
    the report and the voxel probabilities (for the figures)."""
    probs = segment_volume(segmenter, series.hu, context=s.context)
    mask = probs > s.mask_threshold
    if s.grouping == "blobs":
        blobs = blob_centres(series.hu, series.spacing_xyz, mask)
    else:
        blobs = peak_centres(mask, series.spacing_xyz, min_radius_mm=s.min_radius_mm)
    centers = [tuple(float(v) for v in series.irc_to_xyz(b.center_irc)) for b in blobs]
    nodule = chip_probs(classifier, series, cache, centers, s.chip, flips=s.flips)
    report = ScanReport(series.uid, nodule_threshold=s.nodule_threshold)
    for blob, xyz, p in zip(blobs, centers, nodule, strict=True):
        irc = tuple(int(round(v)) for v in blob.center_irc)
        diameter = 2 * blob.mean  # peaks: the inscribed ball's; blobs: the best scale's
        report.findings.append(Finding(xyz, irc, diameter, p))  # type: ignore[arg-type]
    if malignancy is not None:
        called = report.nodules
        where = [f.center_xyz for f in called]
        verdicts = chip_probs(malignancy, series, cache, where, s.chip, flips=s.flips)
        for finding, p in zip(called, verdicts, strict=True):
            finding.malignancy_prob = p
    return report, probs


# ------------------------------------------------------------------------ the report
def report_table(reports: Sequence[ScanReport], limit: int = 40) -> str:
    """The nodules the chain reports, one HTML row each (escaped)."""
    rows = []
    for r in reports:
        for f in r.nodules:
            mal = "" if f.malignancy_prob is None else f"{f.malignancy_prob:.2f}"
            xyz = ", ".join(f"{v:.1f}" for v in f.center_xyz)
            rows.append(
                f"<tr><td>{html.escape(r.uid[-12:])}</td><td>{xyz}</td>"
                f"<td>{f.diameter_mm:.1f}</td><td>{f.nodule_prob:.2f}</td><td>{mal}</td></tr>"
            )
    head = (
        "<tr><th>series</th><th>centre x, y, z (mm)</th><th>diameter (mm)</th>"
        "<th>P(nodule)</th><th>P(malignant)</th></tr>"
    )
    return f"<table>{head}{''.join(rows[:limit])}</table>"


def rows_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A small escaped HTML table (the results tables of the CT recipes)."""
    cells = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f"<table><tr>{head}</tr>{cells}</table>"


def _cell(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def scan_figure(
    series: CtSeries,
    probs: np.ndarray,
    report: ScanReport,
    truth: Sequence[tuple[Sequence[float], float]],
    *,
    limit: int = 4,
) -> Figure:
    """A slice through each reported nodule (or true nodule when none is reported): HU in
    grey, the segmentation in red, true nodules ringed in green, findings labelled."""
    picks = [f.center_irc[0] for f in report.nodules[:limit]]
    picks = picks or [int(series.xyz_to_irc(c, rounded=True)[0]) for c, _ in truth[:limit]]
    picks = picks or [series.shape[0] // 2]
    fig = Figure(figsize=(3.2 * len(picks), 3.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(picks)))
    for ax, z in zip(axes, picks, strict=True):
        z = int(np.clip(z, 0, series.shape[0] - 1))
        ax.imshow(np.clip(series.hu[z], -1000, 400), cmap="gray")
        ax.imshow(np.ma.masked_less(probs[z], 0.5), cmap="autumn", alpha=0.5, vmin=0, vmax=1)
        for center, diameter in truth:
            irc = series.xyz_to_irc(center)
            if abs(irc[0] - z) * series.spacing_xyz[2] <= diameter / 2:
                radius = diameter / 2 / series.spacing_xyz[0]
                ax.add_patch(_ring(irc[2], irc[1], radius))
        for f in report.nodules:
            if f.center_irc[0] == z:
                text = f"{f.nodule_prob:.2f}" + (
                    "" if f.malignancy_prob is None else f" / m {f.malignancy_prob:.2f}"
                )
                ax.annotate(text, (f.center_irc[2], f.center_irc[1]), color="yellow", fontsize=7)
        ax.set_title(f"{report.uid[-8:]} slice {z}", fontsize=8)
        ax.axis("off")
    return fig


def _ring(x: float, y: float, radius: float) -> object:
    from matplotlib.patches import Circle

    return Circle((x, y), radius + 2, fill=False, edgecolor="lime", linewidth=1)


# ----------------------------------------------------------------------- detection rows
Scan = tuple[Sequence[Detection], Sequence[tuple[Sequence[float], float]]]


def detection_scores(per_scan: Sequence[Scan]) -> dict[str, float]:
    """FROC score, sensitivity with every detection kept, and false positives per scan."""
    score, fps, sens = froc(per_scan)
    return {"froc": score, "sensitivity": float(sens[0]), "fps_per_scan": float(fps[0])}


def threshold_scan(series: CtSeries) -> list[Detection]:
    """The intensity-threshold detector's detections of one scan (score: compactness)."""
    return [
        Detection(tuple(float(v) for v in series.irc_to_xyz(c.center_irc)), c.mean)  # type: ignore[arg-type]
        for c in threshold_detections(series.hu, series.spacing_xyz)
    ]


def segmentation_scan(
    series: CtSeries, segmenter: nn.Module, s: ChainSettings
) -> tuple[list[Detection], np.ndarray]:
    """The segmentation's candidates of one scan (mask peaks), scored by their depth in mm."""
    probs = segment_volume(segmenter, series.hu, context=s.context)
    blobs = peak_centres(
        probs > s.mask_threshold, series.spacing_xyz, min_radius_mm=s.min_radius_mm
    )
    found = [
        Detection(tuple(float(v) for v in series.irc_to_xyz(b.center_irc)), b.mean)  # type: ignore[arg-type]
        for b in blobs
    ]
    return found, probs


__all__ = [
    "ChainSettings",
    "ChipSettings",
    "CtData",
    "Finding",
    "ScanReport",
    "Scan",
    "SliceSettings",
    "analyze_series",
    "at_most",
    "chip_probs",
    "chip_setup",
    "detection_scores",
    "flip_average",
    "init_from_bundle",
    "segmentation_scan",
    "threshold_scan",
    "load_ct_data",
    "predict_chips",
    "report_table",
    "rows_table",
    "scan_figure",
    "segment_volume",
    "slice_crops",
    "slice_setup",
    "synthetic_root",
    "train_chips",
    "train_slices",
    "val_slices",
]
